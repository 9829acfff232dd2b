"""Load test of ``slowfast-deploy serve``: N concurrent clients sending tensors, beside ``bench``.

    python tools/load_serve.py --model slowfast.onnx --clients 8 --max-batch 8 --seconds 60 \
        --out docs/measurements/serve_load.json

In one run, on this machine: ``slowfast-deploy bench`` of the model at ``--max-batch``, then
the server (``--max-batch``, ``--max-wait-ms``) with ``--clients`` threads, each sending one
clip ``[1, 1, 3, 32, 224, 224]`` at a time with ``tritonclient.http`` (binary tensors) and
waiting for the answer. Reported: clips/s, p50/p90/p99 request latency, the batch sizes the
model ran (from ``/metrics``), and the ratio to ``bench``'s clips/s (the mean of a bench
before and one after the load). The clients run on the same CPU as the server (they cost it
a little). ``--max-wait-ms`` should be small beside one model call: with as many clients as
``--max-batch``, every answer sends its client's next request at the same moment, and a
batch dispatched before they all arrive runs short.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_bench(model: str, batch: int, loop: int, threads: int | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "slowfast_deploy", "-q", "bench", "--model", model,
               "--batchsize", str(batch), "--loop", str(loop), "--warmup", "1",
               "--summary", str(summary)]  # fmt: skip
        if threads:
            cmd += ["--threads", str(threads)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return json.loads(summary.read_text())


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def batch_sizes(metrics: str) -> dict[str, float]:
    sizes = {}
    for line in metrics.splitlines():
        if line.startswith(("slowfast_batch_size_sum", "slowfast_batch_size_count")):
            key, value = line.rsplit(" ", 1)
            sizes[key] = float(value)
    count = sizes.get("slowfast_batch_size_count", 0)
    return {
        "model_calls": count,
        "mean_batch": sizes.get("slowfast_batch_size_sum", 0) / max(1, count),
    }


def run_load(args: argparse.Namespace) -> dict:
    import urllib.request

    import tritonclient.http as httpclient

    port = free_port()
    cmd = [sys.executable, "-m", "slowfast_deploy", "-q", "serve", "--model", args.model,
           "--port", str(port), "--name", "m", "--max-batch", str(args.max_batch),
           "--max-wait-ms", str(args.max_wait_ms),
           "--max-queue", str(4 * args.clients)]  # fmt: skip
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    server = subprocess.Popen(cmd)
    try:
        url = f"127.0.0.1:{port}"
        client = httpclient.InferenceServerClient(url, network_timeout=600)
        deadline = time.monotonic() + 300
        while True:
            try:
                if client.is_server_ready():
                    break
            except Exception:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.5)
        clip = np.random.default_rng(0).standard_normal((1, 1, 3, 32, 224, 224), dtype=np.float32)
        latencies: list[float] = []
        done = threading.Event()
        measuring = threading.Event()
        lock = threading.Lock()
        failures = [0]

        def worker() -> None:
            c = httpclient.InferenceServerClient(url, network_timeout=600)
            inp = httpclient.InferInput("video", list(clip.shape), "FP32")
            inp.set_data_from_numpy(clip, binary_data=True)
            while not done.is_set():
                t0 = time.perf_counter()
                try:
                    c.infer("m", [inp])
                except Exception:
                    failures[0] += 1
                    continue
                elapsed = time.perf_counter() - t0
                if measuring.is_set() and not done.is_set():
                    with lock:
                        latencies.append(elapsed)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.clients)]
        for t in threads:
            t.start()
        time.sleep(args.warmup_s)
        with urllib.request.urlopen(f"http://{url}/metrics") as r:
            before = batch_sizes(r.read().decode())
        measuring.set()
        t0 = time.perf_counter()
        time.sleep(args.seconds)
        with lock:
            count = len(latencies)
            snapshot = list(latencies)
        wall = time.perf_counter() - t0
        with urllib.request.urlopen(f"http://{url}/metrics") as r:
            after = batch_sizes(r.read().decode())
        done.set()
        for t in threads:
            t.join(600)
        calls = after["model_calls"] - before["model_calls"]
        clips_in_calls = (
            after["mean_batch"] * after["model_calls"]
            - before["mean_batch"] * before["model_calls"]
        )
        return {
            "clients": args.clients,
            "requests": count,
            "seconds": round(wall, 2),
            "throughput": count / wall,
            "latency_ms": {
                "p50": 1e3 * percentile(snapshot, 50),
                "p90": 1e3 * percentile(snapshot, 90),
                "p99": 1e3 * percentile(snapshot, 99),
                "mean": 1e3 * float(np.mean(snapshot)) if snapshot else None,
            },
            "model_calls": calls,
            "mean_batch": clips_in_calls / calls if calls else None,
            "failures": failures[0],
        }
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(120)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--max-wait-ms", type=float, default=50.0)
    p.add_argument("--seconds", type=float, default=60.0, help="measured time under load")
    p.add_argument("--warmup-s", type=float, default=10.0, help="load before measuring")
    p.add_argument("--bench-loop", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    # bench before and after the load: on a shared machine the two show how much the CPU
    # available changed during the run; the ratio uses their mean
    before = run_bench(args.model, args.max_batch, args.bench_loop, args.threads)["rows"][0]
    load = run_load(args)
    after = run_bench(args.model, args.max_batch, args.bench_loop, args.threads)["rows"][0]
    row = dict(before)
    row["throughput"] = (before["throughput"] + after["throughput"]) / 2
    result = {
        "command": " ".join(["python", "tools/load_serve.py", *sys.argv[1:]]),
        "cpu": cpu_name(),
        "model": args.model,
        "max_batch": args.max_batch,
        "max_wait_ms": args.max_wait_ms,
        "bench": {
            "batchsize": row["batchsize"],
            "throughput": row["throughput"],
            "latency_ms": row["latency"],
            "backend": row["backend"],
            "throughput_before": before["throughput"],
            "throughput_after": after["throughput"],
            "latency_ms_after": after["latency"],
        },
        "serve": load,
        "serve_vs_bench": load["throughput"] / row["throughput"],
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Live capacity: how many real-time camera streams one machine watches with one model.

    python tools/bench_live.py --model slowfast.onnx [--threads T] [--seconds 30]
        [--max-streams 16] [--window 64 --stride 16] [--max-batch 4]
        [--out docs/measurements/live_capacity.json]

In one run, on loopback only:

1. ``bench`` of the model at ``--max-batch`` (``runtime.benchmark.bench_models``): clips/s.
   The model-bound ceiling is that divided by the windows one stream makes per second
   (30 fps / stride): the streams the model could score if decoding and the rest were free.
2. N generated 30 fps 340x256 H.264 streams (FFmpeg's ``testsrc2``, each sent in real time by
   its own FFmpeg as MPEG-TS over TCP, ``-c copy``, looped), watched for ``--seconds`` with
   the default latency budget, for N = 1, 2, ... until a run drops windows or its p99 latency
   exceeds ``--p99-max`` (1 s): the last N that passed is the capacity.
3. 2x overload: streams asking for twice what the model scores (2 x the ceiling, at least
   2): p99 latency, drops, and the p99 of each half and each minute of the run (latency must
   not grow), and the RSS every 10 s (memory must stay flat).

Prints a table and writes every figure, the CPU (``lscpu``'s model name), the versions and
the exact command to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from slowfast_deploy.live import Source, watch
from slowfast_deploy.runtime import ModelConfig
from slowfast_deploy.runtime.benchmark import bench_models
from slowfast_deploy.timeline.windows import WindowPlan

FPS = 30
SIZE = "340x256"


def lscpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            return value.strip()
    return platform.processor() or platform.machine()


def listening(port: int) -> bool:
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        return any(
            f[1] == wanted and f[3] == "0A" for f in (x.split() for x in table.readlines()[1:])
        )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_video(path: Path, seconds: int) -> Path:
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc2=size={SIZE}:rate={FPS}", "-t", str(seconds), "-c:v", "libx264",
         "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(FPS), "-bf", "0", str(path)],
        check=True,
    )  # fmt: skip
    return path


class Senders:
    """N FFmpeg processes, each sending the video in real time (looped) to one client."""

    def __init__(self, video: Path, n: int) -> None:
        self.ports = [free_port() for _ in range(n)]
        self.procs = [
            subprocess.Popen(
                [
                    "ffmpeg",
                    "-loglevel",
                    "error",
                    "-re",
                    "-stream_loop",
                    "-1",
                    "-i",
                    str(video),
                    "-c",
                    "copy",
                    "-f",
                    "mpegts",
                    f"tcp://127.0.0.1:{port}?listen=1",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for port in self.ports
        ]
        deadline = time.monotonic() + 30
        while not all(listening(p) for p in self.ports):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                self.stop()
                raise RuntimeError("the FFmpeg senders did not start listening")
            time.sleep(0.05)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def watch_run(
    backend: Any,
    video: Path,
    n: int,
    args: argparse.Namespace,
    plan: WindowPlan,
    *,
    seconds: float | None = None,
) -> dict[str, Any]:
    """N streams for ``seconds`` (default ``args.seconds``): windows, drops and latency over
    all of them, the RSS every 10 s and the p99 latency per minute (flat over a long run?)."""
    seconds = args.seconds if seconds is None else seconds
    senders = Senders(video, n)
    sources = [
        Source(f"tcp://127.0.0.1:{p}", f"s{i}", "network") for i, p in enumerate(senders.ports)
    ]
    session = watch(
        sources,
        backend,
        plan=plan,
        max_batch=args.max_batch,
        max_latency_s=args.max_latency,
        reconnect=False,
    )
    timer = threading.Timer(seconds, session.stop)
    rss: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(10.0):
            rss.append((round(time.time() - t0, 1), round(rss_mb(), 1)))

    sampler = threading.Thread(target=sample, daemon=True)
    latencies: list[tuple[float, float]] = []  # (emit wall, latency)
    final: dict[str, dict[str, Any]] = {}
    lost: list[str] = []
    t0 = time.time()
    try:
        timer.start()
        sampler.start()
        for typed in session:
            event = typed.to_dict()
            kind = event["event"]
            if kind == "window":
                latencies.append((event["emit_wall"], event["latency_s"]))
            elif kind == "stats" and event["final"]:
                final[event["stream"]] = event
            elif kind in ("stream_lost", "stream_ended", "stream_failed"):
                lost.append(f"{event['stream']}: {event.get('message', kind)}")
    finally:
        timer.cancel()
        done.set()
        senders.stop()
    wall = time.time() - t0
    lat = np.array([x[1] for x in latencies]) if latencies else np.zeros(0)
    half = len(lat) // 2
    windows = sum(s["windows"] for s in final.values())
    dropped = sum(s["dropped"] for s in final.values())
    row = {
        "streams": n,
        "seconds": round(wall, 1),
        "windows": windows,
        "dropped": dropped,
        "windows_per_s": round(windows / wall, 3),
        "latency_p50_s": round(float(np.percentile(lat, 50)), 3) if lat.size else None,
        "latency_p99_s": round(float(np.percentile(lat, 99)), 3) if lat.size else None,
        "p99_first_half_s": round(float(np.percentile(lat[:half], 99)), 3) if half else None,
        "p99_second_half_s": round(float(np.percentile(lat[half:], 99)), 3) if half else None,
        "min_windows_per_stream": min((s["windows"] for s in final.values()), default=0),
        "rss_mb_every_10_s": rss,
        "p99_by_minute_s": [
            round(float(np.percentile(m, 99)), 3)
            for m in (
                np.array([x[1] for x in latencies if k * 60 <= x[0] - t0 < (k + 1) * 60])
                for k in range(int(wall // 60) + 1)
            )
            if m.size
        ],
        "lost": lost,
    }
    row["sustained"] = (
        dropped == 0
        and not lost
        and row["latency_p99_s"] is not None
        and row["latency_p99_s"] <= args.p99_max
    )
    print(
        f"  {n} streams: {windows} windows ({row['windows_per_s']}/s), dropped {dropped}, "
        f"p50 {row['latency_p50_s']} s, p99 {row['latency_p99_s']} s"
        f"{' LOST ' + '; '.join(lost) if lost else ''} -> "
        f"{'sustained' if row['sustained'] else 'not sustained'}",
        flush=True,
    )
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--backend", default=None)
    p.add_argument("--precision", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seconds", type=float, default=30.0, help="per watch run")
    p.add_argument("--max-streams", type=int, default=16)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--stride", type=int, default=16)
    p.add_argument("--max-batch", type=int, default=4)
    p.add_argument("--max-latency", type=float, default=1.0, help="the watch's latency budget")
    p.add_argument("--p99-max", type=float, default=1.0, help="sustained: p99 at most this")
    p.add_argument("--bench-loop", type=int, default=10)
    p.add_argument("--no-overload", action="store_true")
    p.add_argument(
        "--overload-seconds", type=float, default=None, help="a longer 2x-overload run (soak)"
    )
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()

    plan = WindowPlan(args.window, args.stride)
    load_before = [round(x, 2) for x in os.getloadavg()]  # other jobs on the same cores
    config = ModelConfig(
        args.model, backend=args.backend, precision=args.precision, threads=args.threads
    )
    print(f"bench {args.model} at batch {args.max_batch} ...", flush=True)
    (row,) = bench_models(
        [args.model + (f"@{args.backend}" if args.backend else "")],
        batchsizes=[args.max_batch],
        loop=args.bench_loop,
        warmup=2,
        threads=args.threads,
    )
    per_stream = FPS / args.stride  # windows per second of one 30 fps stream
    ceiling = row.throughput / per_stream
    print(f"  {row.throughput:.3f} clips/s: model-bound ceiling {ceiling:.2f} streams", flush=True)

    backend = config.open()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "camera.mp4", 10)
        capacity = 0
        for n in range(1, args.max_streams + 1):
            result = watch_run(backend, video, n, args, plan)
            runs.append(result)
            if not result["sustained"]:
                break
            capacity = n
        overload = None
        if not args.no_overload:
            n_over = max(2, math.ceil(2 * ceiling))
            print(f"2x overload: {n_over} streams", flush=True)
            overload = watch_run(backend, video, n_over, args, plan, seconds=args.overload_seconds)
    backend.close()
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "cpu": lscpu_model(),
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "model": args.model,
        "backend": row.backend,
        "precision": row.precision,
        "threads": args.threads,
        "window": args.window,
        "stride": args.stride,
        "stream": f"{SIZE} H.264 at {FPS} fps, MPEG-TS over TCP (loopback), real time",
        "max_batch": args.max_batch,
        "bench_clips_per_s": round(row.throughput, 3),
        "windows_per_stream_s": per_stream,
        "ceiling_streams": round(ceiling, 2),
        "sustained_streams": capacity,
        "ratio_to_ceiling": round(capacity / ceiling, 3) if ceiling else None,
        "overload_streams": overload["streams"] if overload else None,
        # windows/s the watch scored over bench's clips/s: how much of the model it used
        "model_share_used": round(
            max(r["windows_per_s"] for r in [*runs, *([overload] if overload else [])])
            / row.throughput,
            3,
        ),
        "p99_max_s": args.p99_max,
        "runs": runs,
        "overload": overload,
        "peak_rss_mb": round(peak_rss_mb, 1),
        "versions": {"python": platform.python_version(), **row.to_dict().get("versions", {})},
    }
    print(
        f"\n| CPU | model | bench clips/s | ceiling (streams) | sustained | ratio | "
        f"p99 at capacity | 2x overload p99, drops |\n|---|---|---|---|---|---|---|---|\n"
        f"| {summary['cpu']} ({summary['cores']} cores) | {Path(args.model).name} | "
        f"{summary['bench_clips_per_s']} | {summary['ceiling_streams']} | {capacity} | "
        f"{summary['ratio_to_ceiling']} | "
        f"{runs[capacity - 1]['latency_p99_s'] if capacity else '-'} s | "
        f"{overload['latency_p99_s'] if overload else '-'} s, "
        f"{overload['dropped'] if overload else '-'} |"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

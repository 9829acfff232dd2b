"""Every output of the CLI and the server on the golden videos, normalised, to diff a refactor.

    python tools/snapshot_outputs.py snapshot OUT_DIR [--golden DIR] [--threads 2] [--only PARTS]
    python tools/snapshot_outputs.py compare BEFORE AFTER

``snapshot`` runs the commands through ``python -m slowfast_deploy`` (the code on
``PYTHONPATH``, else the installed package) with the golden random-weight checkpoint (torch
backend) and writes what they write into OUT_DIR:

=====================  ===========================================================
``preprocess/``        ``bin/{i}.bin``, ``kinetics400.info``, ``bin_sources.jsonl`` (8 videos)
``infer/``             ``result/{i}_0.bin``, ``result_summary.json`` (8 .bin files)
``evaluate/``          streaming: ``results.jsonl``, ``summary.json`` (its ``.summary.json``),
                       ``streaming.stdout.json`` (``--format json``); offline
                       (``--result-dir``): ``offline.stdout.json``
``predict.json``       ``predict --format json`` (8 videos)
``timeline.json``      ``timeline`` JSON of 2 videos (``test.avi``: pts out of order)
``watch.jsonl``        ``watch`` events of 2 files (not ``--realtime``), ``--max-batch 1``,
                       grouped by stream (each stream's own order kept: the order between
                       streams depends on threads)
``serve/``             ``serve`` answers: v2 metadata, KServe v2 ``infer`` (JSON, binary),
                       ``/v1/predict`` and ``/v1/timeline`` on 2 videos, bad requests; per
                       request ``NAME.json`` (status, content type, body) and, for a binary
                       answer, ``NAME.body`` (its bytes)
``commands.json``      each command and its exit status
=====================  ===========================================================

Normalised in every text output (the value becomes ``"<normalised>"``, wherever the key is,
at any depth; text-level, so the rest of each file stays byte for byte): the keys of
``NORMALISED_KEYS`` below (timings, throughputs, wall clocks, latencies). The scratch
directory and the golden directory are written ``<TMP>`` and ``<GOLDEN>``, serve's port
``<PORT>``. Stdout of ``infer`` (timings only) and every stderr are not kept.

``compare`` prints one line per file (``same``, ``differs`` with the first differing line or
byte offset, ``only in ...``) and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

# ../shared/golden beside the checkout (or beside a worktree's folder of worktrees)
GOLDEN = next(
    (d for d in (p / "shared/golden" for p in Path(__file__).resolve().parents[2:4]) if d.is_dir()),
    Path(__file__).resolve().parents[2] / "shared/golden",
)
CHECKPOINT = "slowfast_r50_8x8x1_random_seed0.pth"
VIDEOS = (
    "demo.mp4",
    "test.mp4",
    "test.avi",
    "rawvideo_part_0.mp4",
    "syn_landscape_340x256_30fps_120f.mp4",
    "syn_portrait_256x340_25fps_100f.mp4",
    "syn_short_48f_340x256_30fps.mp4",
    "syn_odd_321x241_24fps_90f_mpeg4.mp4",
)
TIMELINE_VIDEOS = ("test.avi", "syn_short_48f_340x256_30fps.mp4")
WATCH_VIDEOS = ("test.avi", "syn_landscape_340x256_30fps_120f.mp4")
SERVE_VIDEOS = ("test.avi", "syn_short_48f_340x256_30fps.mp4")
MODEL_NAME = "slowfast"
PARTS = ("offline", "predict", "timeline", "watch", "serve")
PLACEHOLDER = "<normalised>"

# Keys whose values are timings, rates or clocks (replaced whatever their type):
NORMALISED_KEYS = (
    # evaluate records / predict info: {"decode": ms, "preprocess": ms, "infer": ms}
    "timing_ms",
    # infer's result_summary.json
    "compute_time_ms",
    "throughput",
    # evaluate's summary "this_run"
    "startup_s",
    "wall_s",
    "videos_per_s",
    "steady_videos_per_s",
    "model_s",
    "model_only_videos_per_s",
    # timeline JSON: {"wall_s", "decode_s", "preprocess_s", "model_s"}
    "timing",
    "decode_s",
    "preprocess_s",
    # watch events and serve's stream descriptions
    "arrival_wall",
    "emit_wall",
    "latency_s",
    "wall",
    "last_event_wall",
    "down_s",
    "period_s",
    "windows_per_s",
    "latency_p50_s",
    "latency_p99_s",
    # anything that names a process
    "pid",
)
_KEYS = "|".join(re.escape(k) for k in NORMALISED_KEYS)
_OBJECT = re.compile(rf'"({_KEYS})"(\s*:\s*)\{{[^{{}}]*\}}')  # a flat {...} value
_SCALAR = re.compile(
    rf'"({_KEYS})"(\s*:\s*)(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|null|true|false|"(?:[^"\\]|\\.)*")'
)
_SERVE_HEADERS = ("content-type", "inference-header-content-length", "retry-after")


def normalise(text: str, replace: dict[str, str]) -> str:
    """``text`` with the values of ``NORMALISED_KEYS`` and the paths of ``replace`` masked."""
    for old, new in replace.items():
        text = text.replace(old, new)
    text = _OBJECT.sub(rf'"\1"\2"{PLACEHOLDER}"', text)
    return _SCALAR.sub(rf'"\1"\2"{PLACEHOLDER}"', text)


class Snapshot:
    def __init__(self, out: Path, golden: Path, threads: int) -> None:
        self.out = out
        self.golden = golden.resolve()
        self.threads = threads
        self.tmp = Path(tempfile.mkdtemp(prefix="snapshot-"))
        self.replace = {str(self.tmp): "<TMP>", str(self.golden): "<GOLDEN>"}
        self.commands: list[dict[str, Any]] = []
        self.model = str(self.golden / CHECKPOINT)
        self.videos = self.golden / "videos"

    # ---- helpers
    def write(self, name: str, data: str | bytes) -> None:
        path = self.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(normalise(data, self.replace), encoding="utf-8")
        else:
            path.write_bytes(data)

    def copy(self, src: Path, name: str) -> None:
        data = src.read_bytes()
        try:
            self.write(name, data.decode("utf-8"))
        except UnicodeDecodeError:
            self.write(name, data)

    def copy_tree(self, src: Path, name: str, skip: Sequence[str] = (".lock",)) -> None:
        for path in sorted(src.rglob("*")):
            if path.is_file() and not path.name.endswith(tuple(skip)):
                self.copy(path, f"{name}/{path.relative_to(src)}")

    def cli(self, label: str, *args: str) -> str:
        """Run ``slowfast-deploy ARGS`` in the scratch directory; its stdout."""
        argv = [sys.executable, "-m", "slowfast_deploy", "-q", *args]
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=self.tmp, capture_output=True, text=True, check=False)
        print(f"  {label}: exit {proc.returncode} ({time.perf_counter() - t0:.0f} s)", flush=True)
        if proc.returncode not in (0, 3):
            sys.stderr.write(proc.stderr[-4000:])
        self.commands.append(
            {
                "label": label,
                "argv": [normalise(a, self.replace) for a in ["slowfast-deploy", "-q", *args]],
                "exit": proc.returncode,
            }
        )
        return proc.stdout

    def model_args(self) -> list[str]:
        return ["--model", self.model, "--backend", "torch", "--threads", str(self.threads)]

    # ---- the commands
    def run(self, parts: Sequence[str] = PARTS) -> None:
        try:
            if "offline" in parts:
                self.offline()
            elif "serve" in parts:
                self.preprocess()  # serve's binary infer sends two of the .bin files
            for part in ("predict", "timeline", "watch", "serve"):
                if part in parts:
                    getattr(self, part)()
        finally:
            self.write("commands.json", json.dumps(self.commands, indent=2) + "\n")
            shutil.rmtree(self.tmp, ignore_errors=True)

    def preprocess(self) -> Path:
        ann = self.tmp / "ann.txt"
        manifest = {e["video"]: e for e in json.loads((self.golden / "manifest.json").read_text())}
        ann.write_text("".join(f"{v} {manifest[v]['top1']}\n" for v in VIDEOS))
        self.copy(ann, "ann.txt")
        pre = self.tmp / "pre"
        self.cli(
            "preprocess",
            "preprocess", "--video-dir", str(self.videos), "--ann-file", str(ann),
            "--save-dir", str(pre), "--num-workers", "1",
        )  # fmt: skip
        self.copy_tree(pre, "preprocess")
        return ann

    def offline(self) -> None:
        ann = self.preprocess()
        pre = self.tmp / "pre"
        inf = self.tmp / "inf"
        self.cli(
            "infer",
            "infer", *self.model_args(), "--input", str(pre / "bin"), "--output", str(inf),
        )  # fmt: skip
        self.copy_tree(inf, "infer")
        stdout = self.cli(
            "evaluate offline",
            "evaluate", "--result-dir", str(inf / "result"),
            "--label-file", str(pre / "kinetics400.info"), "--format", "json",
        )  # fmt: skip
        self.write("evaluate/offline.stdout.json", stdout)
        results = self.tmp / "results.jsonl"
        stdout = self.cli(
            "evaluate",
            "evaluate", "--video-dir", str(self.videos), "--ann-file", str(ann),
            *self.model_args(), "--num-workers", "1", "--output", str(results),
            "--format", "json",
        )  # fmt: skip
        self.write("evaluate/streaming.stdout.json", stdout)
        self.copy(results, "evaluate/results.jsonl")
        self.copy(results.with_name(results.name + ".summary.json"), "evaluate/summary.json")

    def predict(self) -> None:
        stdout = self.cli(
            "predict",
            "predict", *(str(self.videos / v) for v in VIDEOS), *self.model_args(),
            "--num-workers", "1", "--format", "json",
        )  # fmt: skip
        self.write("predict.json", stdout)

    def timeline(self) -> None:
        out = self.tmp / "timeline.json"
        self.cli(
            "timeline",
            "timeline", *(str(self.videos / v) for v in TIMELINE_VIDEOS), *self.model_args(),
            "--format", "json", "--out", str(out),
        )  # fmt: skip
        self.copy(out, "timeline.json")

    def watch(self) -> None:
        events = self.tmp / "watch.jsonl"
        self.cli(
            "watch",
            "watch", *(str(self.videos / v) for v in WATCH_VIDEOS), *self.model_args(),
            "--max-batch", "1", "--events", str(events),
        )  # fmt: skip
        lines = events.read_text(encoding="utf-8").splitlines(keepends=True)
        order = {v: i for i, v in enumerate(str(self.videos / v) for v in WATCH_VIDEOS)}

        def stream_of(line: str) -> int:
            stream = json.loads(line).get("stream")
            return order.get(stream, len(order))

        self.write("watch.jsonl", "".join(sorted(lines, key=stream_of)))  # stable sort

    # ---- serve
    def serve(self) -> None:
        port = free_port()
        argv = [
            sys.executable, "-m", "slowfast_deploy", "-q", "serve", *self.model_args(),
            "--name", MODEL_NAME, "--host", "127.0.0.1", "--port", str(port),
            "--num-workers", "1", "--drain-timeout", "10",
        ]  # fmt: skip
        shown = [normalise(a, self.replace) for a in argv[2:]]
        shown[shown.index("--port") + 1] = "<PORT>"  # a free port, another each run
        self.commands.append({"label": "serve", "argv": shown})
        log = open(self.tmp / "serve.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(argv, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT)
        t0 = time.perf_counter()
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
                wait_ready(client, proc)
                print(f"  serve: ready ({time.perf_counter() - t0:.0f} s)", flush=True)
                self.serve_requests(client)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            log.close()
            self.commands[-1]["exit"] = code
            print(f"  serve: exit {code} ({time.perf_counter() - t0:.0f} s)", flush=True)

    def record(self, name: str, response: httpx.Response) -> None:
        headers = {h: response.headers[h] for h in _SERVE_HEADERS if h in response.headers}
        entry: dict[str, Any] = {"status": response.status_code, "headers": headers}
        body = response.content
        split = response.headers.get("inference-header-content-length")
        if split is not None:  # KServe binary: JSON header, then the tensor's bytes
            entry["body"] = json.loads(body[: int(split)])
            self.write(f"serve/{name}.body", body[int(split) :])
        else:
            try:
                entry["body"] = json.loads(body)
            except ValueError:
                entry["body"] = body.decode("utf-8", errors="replace")
        self.write(f"serve/{name}.json", json.dumps(entry, indent=2, ensure_ascii=False) + "\n")

    def serve_requests(self, client: httpx.Client) -> None:
        infer = f"/v2/models/{MODEL_NAME}/infer"
        for name, path in (
            ("v2", "/v2"),
            ("health_ready", "/v2/health/ready"),
            ("model_metadata", f"/v2/models/{MODEL_NAME}"),
            ("model_ready", f"/v2/models/{MODEL_NAME}/ready"),
            ("model_config", f"/v2/models/{MODEL_NAME}/config"),
            ("info", "/v1/info"),
            ("streams", "/v1/streams"),
        ):
            self.record(name, client.get(path))

        # KServe v2 infer, JSON in and out: a deterministic pattern in -1 .. 1 (short in JSON,
        # and of the scale of normalised frames: the scores do not saturate)
        shape = [1, 1, 3, 32, 224, 224]
        count = 3 * 32 * 224 * 224
        data = [((i * 7919) % 9 - 4) / 4 for i in range(count)]
        request = {"id": "json-1", "inputs": [tensor("video", "FP32", shape, data=data)]}
        self.record("infer_json", client.post(infer, json=request))

        # KServe v2 infer, binary in and out: the preprocess .bin files of two videos
        clips = b"".join(
            (self.tmp / "pre" / "bin" / f"{VIDEOS.index(v)}.bin").read_bytes() for v in SERVE_VIDEOS
        )
        header = {
            "id": "binary-2",
            "inputs": [
                tensor(
                    "video", "FP32", [2, *shape[1:]], parameters={"binary_data_size": len(clips)}
                )
            ],
            "outputs": [{"name": "class", "parameters": {"binary_data": True}}],
        }
        head = json.dumps(header).encode()
        self.record(
            "infer_binary",
            client.post(
                infer,
                content=head + clips,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Inference-Header-Content-Length": str(len(head)),
                },
            ),
        )

        for i, video in enumerate(SERVE_VIDEOS):
            with open(self.videos / video, "rb") as f:
                files = {"video": (video, f.read(), "application/octet-stream")}
            self.record(f"predict_{i}", client.post("/v1/predict?views=1&topk=5", files=files))
            # test.avi: 4 windows of 64; the short one: 2 windows of 32
            fmt, window, stride = (("json", 64, 32), ("srt", 32, 16))[i % 2]
            url = f"/v1/timeline?window={window}&stride={stride}&smooth=1&topk=3&format={fmt}"
            self.record(f"timeline_{i}_{fmt}", client.post(url, files=files))

        small = [0.0]
        bad = {
            "wrong_input": tensor("clip", "FP32", [1], data=small),
            "wrong_datatype": tensor("video", "INT8", [1], data=[0]),
            "wrong_shape": tensor("video", "FP32", [1, 2], data=[0.0, 0.0]),
            "bad_tensor": tensor("video", "FP32", shape, data=small),
        }
        for name, inp in bad.items():
            self.record(f"error_{name}", client.post(infer, json={"inputs": [inp]}))
        self.record(
            "error_bad_json",
            client.post(infer, content=b"{not json", headers={"Content-Type": "application/json"}),
        )
        self.record(
            "error_unknown_model",
            client.post("/v2/models/nope/infer", json={"inputs": [bad["wrong_input"]]}),
        )
        self.record("error_not_found", client.get("/nope"))
        self.record("error_method", client.get("/v1/predict"))
        empty = {"video": ("empty.mp4", b"", "application/octet-stream")}
        self.record("error_views", client.post("/v1/predict?views=7", files=empty))
        self.record("error_empty_upload", client.post("/v1/predict", files=empty))
        self.record("error_no_video", client.post("/v1/predict", files={"other": ("a.txt", b"x")}))
        self.record(
            "error_forbidden_path", client.post("/v1/predict", json={"path": "/etc/hostname"})
        )
        self.record(
            "error_unsupported_media",
            client.post("/v1/predict", content=b"abc", headers={"Content-Type": "text/plain"}),
        )
        self.record("error_timeline_window", client.post("/v1/timeline?window=10", files=empty))


def tensor(
    name: str,
    datatype: str,
    shape: list[int],
    *,
    data: list[Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    t: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
    if data is not None:
        t["data"] = data
    if parameters is not None:
        t["parameters"] = parameters
    return t


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(client: httpx.Client, proc: subprocess.Popen[bytes], timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode} before it was ready")
        try:
            if client.get("/v2/health/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError("serve was not ready in time")


# ---- compare
def first_difference(a: bytes, b: bytes) -> str:
    try:
        ta, tb = a.decode("utf-8"), b.decode("utf-8")
    except UnicodeDecodeError:
        at = next(
            (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
        )
        return f"first differing byte at offset {at} (sizes {len(a)} and {len(b)})"
    la, lb = ta.splitlines(), tb.splitlines()
    for n, (x, y) in enumerate(zip(la, lb, strict=False), start=1):
        if x != y:
            return f"line {n}: {clip(x)!r} != {clip(y)!r}"
    n = min(len(la), len(lb)) + 1
    return f"line {n}: one file ends ({len(la)} and {len(lb)} lines)"


def clip(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[:width] + "..."


def compare(before: Path, after: Path) -> int:
    names = sorted(
        {str(p.relative_to(d)) for d in (before, after) for p in d.rglob("*") if p.is_file()}
    )
    differ = 0
    for name in names:
        a, b = before / name, after / name
        if not a.is_file() or not b.is_file():
            print(f"{name}: only in {before if a.is_file() else after}")
            differ += 1
            continue
        da, db = a.read_bytes(), b.read_bytes()
        if da == db:
            print(f"{name}: same")
        else:
            print(f"{name}: differs, {first_difference(da, db)}")
            differ += 1
    print(f"{len(names) - differ} same, {differ} differ")
    return 1 if differ else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("snapshot", help="run every command, write the normalised outputs")
    s.add_argument("out", type=Path)
    s.add_argument("--golden", type=Path, default=GOLDEN)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument(
        "--only",
        type=lambda text: text.split(","),
        default=list(PARTS),
        metavar="PART,...",
        help=f"some of {','.join(PARTS)} (default: all; offline is preprocess, infer and "
        "evaluate; serve alone also runs preprocess)",
    )
    c = sub.add_parser("compare", help="compare two snapshots; exit 1 on any difference")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "compare":
        return compare(args.before, args.after)
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty")
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"snapshot of {os.environ.get('PYTHONPATH') or 'the installed package'} -> {args.out}")
    unknown = set(args.only) - set(PARTS)
    if unknown:
        parser.error(f"--only: unknown parts {sorted(unknown)}; choose from {PARTS}")
    Snapshot(args.out.resolve(), args.golden, args.threads).run(args.only)
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

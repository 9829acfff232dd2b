"""Local vs Ray engine, end to end, in one run; then a two-node loopback cluster.

    python tools/bench_engines.py --model slowfast_int8.xml --video-dir DIR --ann-file LIST \
        [--threads 2] [--num-workers 1] [--repeat 5] [--two-node] [--out bench_engines.json]

Each engine evaluates the same list with the same model, batch size and threads. Start-up
(Ray, model load) is excluded from the throughput and reported apart: throughput is taken
between the first and the last video's result. A sampler thread reads the whole process
tree every 0.2 s (psutil): peak RSS of the driver and of the tree, CPU seconds of the
decoders, the model and, for Ray, of Ray's own processes (GCS, raylet, agents, idle
workers). ``--repeat R`` lists every video R times (distinct keys), so a few files make a
list of the required length. Ray is loopback only here (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import psutil

from slowfast_deploy.engine.base import EngineOptions
from slowfast_deploy.engine.decode import VideoJob
from slowfast_deploy.engine.jobs import jobs_from_list
from slowfast_deploy.evaluation.run import EvaluationRun
from slowfast_deploy.runtime import ModelConfig


class TreeSampler(threading.Thread):
    """Peak RSS and last CPU times of this process and all its descendants."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.me = psutil.Process()
        self.peak_driver = self.peak_total = 0
        self.cpu: dict[int, tuple[str, float]] = {}  # pid -> (role, user+system seconds)
        times = self.me.cpu_times()
        self.driver_before = times.user + times.system  # the driver outlives each measurement
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            total = 0
            for proc in [self.me, *self.me.children(recursive=True)]:
                try:
                    with proc.oneshot():
                        rss = proc.memory_info().rss
                        times = proc.cpu_times()
                        role = _role(proc)
                except psutil.Error:
                    continue
                total += rss
                if proc.pid == self.me.pid:
                    self.peak_driver = max(self.peak_driver, rss)
                self.cpu[proc.pid] = (role, times.user + times.system)
            self.peak_total = max(self.peak_total, total)
            self._done.wait(0.2)

    def stop(self) -> dict[str, Any]:
        self._done.set()
        self.join()
        by_role: dict[str, float] = {}
        for pid, (role, seconds) in self.cpu.items():
            spent = seconds - self.driver_before if pid == self.me.pid else seconds
            by_role[role] = by_role.get(role, 0.0) + spent
        return {
            "peak_rss_driver_mb": round(self.peak_driver / 2**20),
            "peak_rss_total_mb": round(self.peak_total / 2**20),
            "cpu_s_by_role": {k: round(v, 2) for k, v in sorted(by_role.items())},
        }


def _role(proc: psutil.Process) -> str:
    name = proc.name()
    cmd = " ".join(proc.cmdline())
    if proc.pid == os.getpid():
        return "driver (local: the model too)"
    if "DecodeStage" in name or "DecodeStage" in cmd:
        return "ray decode actors"
    if "ModelStage" in name or "ModelStage" in cmd:
        return "ray model actors"
    if "resource_tracker" in cmd:
        return "other"
    if "_child_main" in cmd or "multiprocessing" in cmd:
        return "decoder processes"
    return "ray itself (gcs, raylet, agents, idle workers)" if "ray" in cmd else "other"


def measure(
    engine: str,
    jobs: list[VideoJob],
    model: ModelConfig,
    args: argparse.Namespace,
    *,
    model_actors: int = 1,
) -> dict[str, Any]:
    sampler = TreeSampler()
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        run = EvaluationRun(
            jobs,
            model=model,
            output=Path(tmp) / "r.jsonl",
            engine=EngineOptions(
                engine=engine,  # type: ignore[arg-type]
                batchsize=args.batchsize,
                num_workers=args.num_workers,
                model_actors=model_actors,
            ),
        )
        with run:
            for _ in run.records():
                pass
            summary = run.finish().to_dict()
    resources = sampler.stop()
    this = summary["this_run"]
    return {
        "engine": engine,
        "videos": this["videos"],
        "failed": summary["num_failed"],
        "startup_s": this["startup_s"],
        "first_result_s": round(run.timing.get("first_result_s", 0.0), 3),
        "steady_videos_per_s": this["steady_videos_per_s"],
        "videos_per_s_with_startup": this["videos_per_s"],
        "videos_per_node": summary["videos_per_node"],
        "num_workers": args.num_workers,
        "model_actors": model_actors,
        **resources,
    }


def two_node(jobs: list[VideoJob], model: ModelConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Two loopback nodes of 2 logical CPUs each; 2 decoders and 2 model actors, so that both
    nodes can work (on one machine they share its cores: this shows scale-out works, not
    its speed)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "node_ip_address": "127.0.0.1"}
    )
    try:
        cluster.add_node(num_cpus=2, node_ip_address="127.0.0.1")
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
        spread = argparse.Namespace(**{**vars(args), "num_workers": max(2, args.num_workers)})
        result = measure("ray", jobs, model, spread, model_actors=2)
        result["nodes"] = len([n for n in ray.nodes() if n.get("Alive")])
        return result
    finally:
        ray.shutdown()
        cluster.shutdown()


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    notable = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    wanted = [f for f in notable if f in flags]
    return f"{fields.get('Model name', '?').strip()} ({os.cpu_count()} CPUs; {' '.join(wanted)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--video-dir", required=True, type=Path)
    parser.add_argument("--ann-file", required=True, type=Path)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batchsize", type=int, default=1)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--two-node", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench_engines.json"))
    args = parser.parse_args()

    base = jobs_from_list(args.video_dir, args.ann_file)
    jobs = [
        VideoJob(f"{r * len(base) + i}:{job.path}", job.path, job.label)
        for r in range(args.repeat)
        for i, job in enumerate(base)
    ]
    model = ModelConfig(args.model, threads=args.threads)
    report: dict[str, Any] = {
        "cpu": cpu_name(),
        "model": args.model,
        "num_videos": len(jobs),
        "threads": args.threads,
        "num_workers": args.num_workers,
        "batchsize": args.batchsize,
        "runs": [],
    }
    for engine in ("local", "ray"):
        result = measure(engine, jobs, model, args)
        report["runs"].append(result)
        print(json.dumps(result), flush=True)
    local, ray_run = report["runs"]
    report["ray_over_local"] = round(
        ray_run["steady_videos_per_s"] / local["steady_videos_per_s"], 3
    )
    if args.two_node:
        report["two_node"] = two_node(jobs, model, args)
        print(json.dumps(report["two_node"]), flush=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"ray/local steady throughput: {report['ray_over_local']:.1%}; wrote {args.out}")


if __name__ == "__main__":
    main()

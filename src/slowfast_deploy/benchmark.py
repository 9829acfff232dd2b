"""Pure-inference timing (the reference tool's ``--loop`` mode) and its statistics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class LatencyStats:
    count: int
    min_ms: float
    max_ms: float
    mean_ms: float
    median_ms: float
    p99_ms: float

    @classmethod
    def from_ms(cls, times_ms: list[float]) -> LatencyStats:
        if not times_ms:
            raise ValueError("no timings to summarise")
        a = np.asarray(times_ms, dtype=np.float64)
        return cls(len(a), float(a.min()), float(a.max()), float(a.mean()),
                   float(np.median(a)), float(np.percentile(a, 99)))

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def throughput(batchsize: int, stats: LatencyStats) -> float:
    """Samples per second: ``1000 * batchsize / mean compute time (ms)``, as the reference."""
    return 1000.0 * batchsize / stats.mean_ms


def reference_lines(stats: LatencyStats, batchsize: int) -> str:
    """Console lines in the reference tool's style."""
    return (
        f"[INFO] compute_time (ms): min = {stats.min_ms:.3f}, max = {stats.max_ms:.3f}, "
        f"mean = {stats.mean_ms:.3f}, median = {stats.median_ms:.3f}, "
        f"percentile(99%) = {stats.p99_ms:.3f}\n"
        f"[INFO] throughput 1000*batchsize.mean({batchsize})/compute_time.mean({stats.mean_ms:.3f}): "
        f"{throughput(batchsize, stats):.4f}\n"
    )


def time_calls(fn: Callable[[], object], *, loop: int, warmup: int) -> list[float]:
    """Milliseconds of each of ``loop`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(loop):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return times

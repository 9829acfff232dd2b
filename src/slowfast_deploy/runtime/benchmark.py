"""Pure-inference timing (the reference tool's ``--loop`` mode) and its statistics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from slowfast_deploy.runtime import open_backend
from slowfast_deploy.runtime.base import Backend, input_dtype_of, model_input, run_batched
from slowfast_deploy.runtime.openvino_backend import LayerTime, OpenVinoBackend
from slowfast_deploy.runtime.roofline import Roofline, count_macs, measured_peak, read_cpu
from slowfast_deploy.specs import SINGLE_VIEW, SLOWFAST_R50_8X8, ModelSpec

CROP_SIZE = SINGLE_VIEW.preprocess.crop_size  # 224: the reference input


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
        return cls(
            len(a),
            float(a.min()),
            float(a.max()),
            float(a.mean()),
            float(np.median(a)),
            float(np.percentile(a, 99)),
        )

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
        f"[INFO] throughput 1000*batchsize.mean({batchsize})/"
        f"compute_time.mean({stats.mean_ms:.3f}): "
        f"{throughput(batchsize, stats):.4f}\n"
    )


@dataclass(frozen=True, slots=True)
class BenchRow:
    label: str  # the model argument as given
    backend: str
    precision: str
    provider: str
    batchsize: int
    latency: LatencyStats
    throughput: float  # clips per second
    speedup: float | None  # throughput / baseline throughput at the same batch size
    roofline: Roofline | None = None  # MACs and peaks (``runtime.roofline``), when measured

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["latency"] = self.latency.to_dict()
        del d["roofline"]
        if self.roofline is not None:  # the roofline keys sit next to ``precision``
            d.update(self.roofline.to_dict())
        return d


def bench_alternating(
    runners: list[tuple[str, str, str, str, Callable[[Any], object]]],
    *,
    batchsizes: list[int],
    make_input: Callable[[int], Any],
    loop: int,
    warmup: int,
    baseline: int | None,
) -> list[BenchRow]:
    """Time every runner on the same input, interleaved call by call, per batch size.

    ``runners`` are ``(label, backend, precision, provider, fn)``; interleaving exposes all
    models to the same machine state, so their ratios are comparable within one run.
    ``baseline`` is the index of the runner the speed-ups are relative to.
    """
    rows: list[BenchRow] = []
    for batchsize in batchsizes:
        video = make_input(batchsize)
        for *_, fn in runners:
            for _ in range(warmup):
                fn(video)
        times: list[list[float]] = [[] for _ in runners]
        for _ in range(loop):
            for k, (*_, fn) in enumerate(runners):
                t0 = time.perf_counter_ns()
                fn(video)
                times[k].append((time.perf_counter_ns() - t0) / 1e6)
        stats = [LatencyStats.from_ms(t) for t in times]
        base = throughput(batchsize, stats[baseline]) if baseline is not None else None
        for (label, backend, precision, provider, _), s in zip(runners, stats, strict=True):
            tput = throughput(batchsize, s)
            rows.append(
                BenchRow(
                    label,
                    backend,
                    precision,
                    provider,
                    batchsize,
                    s,
                    tput,
                    tput / base if base else None,
                )
            )
    return rows


def parse_model_arg(text: str) -> tuple[str, str | None, str | None]:
    """``PATH[@BACKEND[:PRECISION]]`` -> (path, backend, precision).

    >>> parse_model_arg("m.onnx@openvino:bf16")
    ('m.onnx', 'openvino', 'bf16')
    """
    path, _, rest = text.partition("@")
    backend, _, precision = rest.partition(":")
    return path, backend or None, precision or None


def bench_models(
    models: list[str],
    *,
    batchsizes: list[int],
    loop: int,
    warmup: int,
    threads: int | None = None,
    device: str = "cpu",
    spec: ModelSpec = SLOWFAST_R50_8X8,
    seed: int = 0,
    roofline: bool = False,
) -> list[BenchRow]:
    """Open every ``PATH[@BACKEND[:PRECISION]]`` in ``models`` and time them alternately on
    the same random clips (``[N, 1, 3, T, 224, 224]``): random crops, given to each model as
    it takes them (``model_input``: normalised float32, or the bytes for a uint8-input model;
    made before the timing). Speed-ups are relative to the first PyTorch eager (``.pth``)
    model, when there is one. With ``roofline``, each row also gets its ``Roofline``: MACs
    per clip from the model's graph, achieved MAC/s, and the nominal and measured peaks of
    its runtime and precision on ``threads`` cores (the probes run after the timing)."""
    if not models:
        raise ValueError("models must name at least one model file")
    if not batchsizes or any(b < 1 for b in batchsizes):
        raise ValueError(f"batchsizes must be integers >= 1, got {batchsizes}")
    if loop < 1 or warmup < 0:
        raise ValueError(f"loop must be >= 1 and warmup >= 0, got {loop} and {warmup}")
    runners: list[tuple[str, str, str, str, Callable[[Any], object]]] = []
    backends: list[Backend] = []
    baseline = None
    try:
        for k, text in enumerate(models):
            path, backend_name, precision = parse_model_arg(text)
            backend = open_backend(
                path,
                backend=backend_name,
                precision=precision,
                device=device,
                threads=threads,
                spec=spec,
            )
            backends.append(backend)
            eager = Path(path).suffix.lower() in (".pth", ".pt")
            if baseline is None and backend.info.name == "torch" and eager:
                baseline = k
            info = backend.info
            runners.append((text, info.name, info.precision, info.provider, _runner(backend)))
        rng = np.random.default_rng(seed)
        crops = (spec.clip_len, CROP_SIZE, CROP_SIZE, 3)  # one view's [T, S, S, 3]

        def make_input(batchsize: int) -> dict[str, np.ndarray]:
            views = rng.integers(0, 256, (batchsize, *crops), dtype=np.uint8)
            return {
                dtype: model_input(views, SINGLE_VIEW.preprocess, dtype)[:, None]
                for dtype in {input_dtype_of(b) for b in backends}
            }

        rows = bench_alternating(
            runners,
            batchsizes=batchsizes,
            make_input=make_input,
            loop=loop,
            warmup=warmup,
            baseline=baseline,
        )
    finally:
        for backend in backends:
            backend.close()
    return with_roofline(rows, threads=threads, spec=spec) if roofline else rows


def with_roofline(
    rows: list[BenchRow], *, threads: int | None, spec: ModelSpec = SLOWFAST_R50_8X8
) -> list[BenchRow]:
    """``rows`` with their ``Roofline``: MACs counted once per model file, each runtime and
    precision's peak measured once, on ``threads`` cores (all of this process's when None)."""
    cpu = read_cpu()
    macs: dict[str, int] = {}
    peaks: dict[tuple[str, str], float | None] = {}
    out = []
    for row in rows:
        path = parse_model_arg(row.label)[0]
        if path not in macs:
            macs[path] = count_macs(path, spec=spec)
        key = (row.backend, row.precision)
        if key not in peaks:
            peaks[key] = measured_peak(row.backend, row.precision, threads)
        line = Roofline(
            row.precision,
            macs[path],
            row.throughput * macs[path],
            cpu.nominal(row.precision, threads),
            peaks[key],
        )
        out.append(replace(row, roofline=line))
    return out


def layer_profile(
    text: str,
    *,
    batchsize: int = 1,
    threads: int | None = None,
    loop: int = 3,
    spec: ModelSpec = SLOWFAST_R50_8X8,
) -> list[LayerTime]:
    """Every executed layer of an OpenVINO model (``.xml`` or ``.onnx``), slowest first, with
    the kernel each ran: its mean time over ``loop`` calls after one warm-up (OpenVINO's
    performance counters; other runtimes have none to read)."""
    path, backend_name, precision = parse_model_arg(text)
    if backend_name not in (None, "openvino") or Path(path).suffix.lower() not in (
        ".xml",
        ".onnx",
    ):
        raise ValueError(f"{text}: per-layer times come from OpenVINO models (.xml or .onnx)")
    backend = OpenVinoBackend(path, precision=precision, threads=threads, perf_count=True)
    try:
        rng = np.random.default_rng(0)
        views = rng.integers(0, 256, (batchsize, spec.clip_len, CROP_SIZE, CROP_SIZE, 3))
        video = model_input(views.astype(np.uint8), SINGLE_VIEW.preprocess, backend.input_dtype)
        backend.run(video[:, None])
        totals: dict[tuple[str, str, str], float] = {}
        for _ in range(loop):
            backend.run(video[:, None])
            for layer in backend.layer_times():
                key = (layer.name, layer.node_type, layer.kernel)
                totals[key] = totals.get(key, 0.0) + layer.real_ms / loop
    finally:
        backend.close()
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return [LayerTime(name, kind, kernel, ms) for (name, kind, kernel), ms in ranked]


def format_layers(label: str, layers: list[LayerTime], *, top: int = 10) -> str:
    """The ``top`` slowest layers: time, share of all layers' time, type, kernel, name."""
    total = sum(layer.real_ms for layer in layers) or 1.0
    lines = [
        f"the {top} slowest layers of {label}, of {total:.1f} ms in all layers "
        "(ms per call, OpenVINO performance counters):"
    ]
    lines += [
        f"  {layer.real_ms:8.2f} ms {layer.real_ms / total:4.0%}  {layer.node_type:<18} "
        f"{layer.kernel:<28} {layer.name}"
        for layer in layers[:top]
    ]
    return "\n".join(lines) + "\n"


def format_roofline(rows: list[BenchRow]) -> str:
    """One line per row that has a roofline: GMAC per clip, achieved and peak TMAC/s."""
    lines = []
    for r in rows:
        if r.roofline is None:
            continue
        line = r.roofline
        measured = (
            f"{line.peak_measured_mac_per_s / 1e12:.3f} TMAC/s measured "
            f"({line.fraction_of_measured:.0%})"
            if line.peak_measured_mac_per_s and line.fraction_of_measured is not None
            else "no measured peak for this runtime"
        )
        lines.append(
            f"{r.label} batch {r.batchsize}: {line.macs_per_clip / 1e9:.2f} GMAC/clip, "
            f"{line.mac_per_s / 1e12:.3f} TMAC/s = {line.fraction_of_nominal:.0%} of "
            f"{line.peak_nominal_mac_per_s / 1e12:.3f} nominal {line.precision}, {measured}"
        )
    return "\n".join(lines) + ("\n" if lines else "")


def _runner(backend: Backend) -> Callable[[dict[str, np.ndarray]], object]:
    """``run_batched`` on the input of this backend's dtype (from ``bench_models``' inputs)."""
    dtype = input_dtype_of(backend)
    return lambda inputs: run_batched(backend, inputs[dtype])


def format_table(rows: list[BenchRow]) -> str:
    header = (
        "model",
        "backend",
        "precision",
        "batch",
        "mean ms",
        "median ms",
        "p99 ms",
        "clips/s",
        "speed-up",
    )
    body = [
        (
            r.label,
            r.backend,
            r.precision,
            str(r.batchsize),
            f"{r.latency.mean_ms:.1f}",
            f"{r.latency.median_ms:.1f}",
            f"{r.latency.p99_ms:.1f}",
            f"{r.throughput:.3f}",
            f"{r.speedup:.2f}x" if r.speedup is not None else "-",
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=True)]
    lines = [
        " | ".join(x.ljust(w) for x, w in zip(line, widths, strict=True))
        for line in (header, *body)
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def cpu_name() -> str:
    """The CPU model and the vector extensions that decide int8/bf16 speed, e.g.
    ``AMD EPYC, 2 cores, avx512_vnni avx512_bf16``."""
    import os
    import platform

    name, flags = platform.processor() or platform.machine(), set[str]()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and name in ("", platform.machine()):
                    name = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    found = [f for f in wanted if f in flags]
    if "avx512f" in found and "avx2" in found:
        found.remove("avx2")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name}, {cores} cores" + (f", {' '.join(found)}" if found else "")

"""How close a model runs to the CPU's own peak: MACs per clip, nominal and measured MAC/s.

Three numbers put a clips/s figure against the machine (``bench`` prints them per model):

- **MACs per clip**, counted from the model's own graph (``count_macs``): every convolution
  and matrix multiply of the OpenVINO graph at the reference input ``[1, 1, 3, 32, 224, 224]``
  (an ``.xml`` or ``.onnx`` file), or of the PyTorch network (``.pth``, ``.pt2``) by hooks.
- **The nominal peak** (``nominal_peak``): cores used x MACs per cycle of the best instruction
  set for the precision (``MACS_PER_CYCLE``, commented with its sources) x the base clock.
- **The measured peak** (``measured_peak``): the best of a few large matrix multiplies and
  convolutions through the same runtime, precision and threads. A single f32-in, f32-out
  MatMul underrates what bf16 kernels reach inside a network (issue 23 saw 0.35 TMAC/s from
  one, 0.59 from the SlowFast bf16 IR itself), so the probe takes the best of several shapes.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from slowfast_deploy._optional import require
from slowfast_deploy.specs import SLOWFAST_R50_8X8, ModelSpec

# MACs per cycle per core, by (microarchitecture family, instruction set, precision).
# - Intel server cores since Skylake-SP have two 512-bit FMA units (ports 0+1 fused, and 5):
#   AVX-512 fp32 FMA 16 lanes x 2 = 32; AVX512_BF16 VDPBF16PS 16 lanes x 2 pairs x 2 = 64;
#   AVX512_VNNI VPDPBUSD 16 lanes x 4 bytes x 2 = 128 (Intel 64 and IA-32 Architectures
#   Optimization Reference Manual, "Intel AVX-512" and "Intel DL Boost" chapters).
# - Intel AMX (Sapphire Rapids and later) TMUL: TDPBF16PS is a 16x16x32 bf16 tile multiply,
#   8,192 MACs every 16 cycles = 512 per cycle; TDPBUSD a 16x16x64 int8 one, 1,024 per cycle
#   (Intel Optimization Reference Manual, "Intel AMX"; the figures issue 23 quotes).
# - AMD Zen 4 (family 0x19 with AVX-512) runs 512-bit operations as two 256-bit halves on its
#   two FMA pipes: fp32 2 x 8 = 16, bf16 32, VNNI int8 64 (AMD Zen 4 Software Optimization
#   Guide, 57647). Zen 5 (family 0x1a) has a full 512-bit data path: 32, 64, 128 (57647 for
#   Zen 5, "512-bit data path").
# - AVX2 only (any vendor): two 256-bit FMA units, fp32 2 x 8 = 16; int8 without VNNI goes
#   through VPMADDUBSW + VPMADDWD, half the rate of VNNI: 32; with AVX-VNNI 256-bit: 64. No bf16
#   instructions: bf16 runs as fp32, 16.
MACS_PER_CYCLE: dict[tuple[str, str], dict[str, int]] = {
    ("intel", "amx"): {"fp32": 32, "bf16": 512, "int8": 1024},
    ("intel", "avx512"): {"fp32": 32, "bf16": 64, "int8": 128},
    ("zen4", "avx512"): {"fp32": 16, "bf16": 32, "int8": 64},
    ("zen5", "avx512"): {"fp32": 32, "bf16": 64, "int8": 128},
    ("any", "avx2_vnni"): {"fp32": 16, "bf16": 16, "int8": 64},
    ("any", "avx2"): {"fp32": 16, "bf16": 16, "int8": 32},
}


@dataclass(frozen=True, slots=True)
class CpuPeak:
    """The CPU as the roofline sees it: which row of ``MACS_PER_CYCLE``, clock and cores."""

    name: str
    family: str  # 'intel' | 'zen4' | 'zen5' | 'any'
    isa: str  # 'amx' | 'avx512' | 'avx2_vnni' | 'avx2'
    clock_hz: float
    clock_source: str  # where the clock came from: 'model name' or 'cpu MHz'
    cores: int

    def macs_per_cycle(self, precision: str) -> int:
        table = MACS_PER_CYCLE[(self.family, self.isa)]
        return table["fp32" if precision == "fp16" else precision]

    def nominal(self, precision: str, threads: int | None) -> float:
        """Nominal MAC/s for ``precision`` on ``threads`` cores (all cores when None)."""
        cores = min(threads or self.cores, self.cores)
        return cores * self.macs_per_cycle(precision) * self.clock_hz

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def read_cpu(cpuinfo: str | None = None, *, cores: int | None = None) -> CpuPeak:
    """The ``CpuPeak`` of this machine, from ``/proc/cpuinfo`` (or the text given).

    The base clock is the ``@ 2.60GHz`` of an Intel model name; where the name has none (AMD
    names do not), the ``cpu MHz`` line, which on a virtual machine is the nominal clock.

    >>> text = "vendor_id : GenuineIntel\\ncpu family : 6\\nmodel name : Xeon @ 2.60GHz\\n"
    >>> cpu = read_cpu(text + "cpu MHz : 2600.0\\nflags : avx2 avx512f amx_bf16 amx_int8\\n",
    ...                cores=2)
    >>> cpu.isa, cpu.clock_hz, cpu.nominal("bf16", 2) / 1e12
    ('amx', 2600000000.0, 2.6624)
    """
    if cpuinfo is None:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first processor's
    flags = set(fields.get("flags", "").split())
    vendor = fields.get("vendor_id", "")
    family_number = int(fields.get("cpu family", "0") or 0)
    if vendor == "AuthenticAMD" and "avx512f" in flags:
        family = "zen5" if family_number >= 0x1A else "zen4"
    elif vendor == "GenuineIntel":
        family = "intel"
    else:
        family = "any"
    if {"amx_bf16", "amx_int8"} <= flags and family == "intel":
        isa = "amx"
    elif "avx512f" in flags and family != "any":
        isa = "avx512"
    else:
        family, isa = "any", "avx2_vnni" if "avx_vnni" in flags else "avx2"
    name = fields.get("model name", "unknown CPU")
    match = re.search(r"@\s*([\d.]+)\s*GHz", name)
    if match:
        clock_hz, source = float(match.group(1)) * 1e9, "model name"
    else:
        clock_hz, source = float(fields.get("cpu MHz", "0") or 0) * 1e6, "cpu MHz"
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return CpuPeak(name, family, isa, clock_hz, source, cores)


# --- MACs per clip, from the graph ------------------------------------------------------


def count_macs(path: str | os.PathLike[str], *, spec: ModelSpec = SLOWFAST_R50_8X8) -> int:
    """Multiply-accumulates of one clip ``[1, 1, 3, T, 224, 224]`` through the model file.

    OpenVINO IR and ONNX: every Convolution, GroupConvolution and MatMul of the graph, from
    its static shapes. ``.pth`` / ``.pt2``: the PyTorch network of ``spec`` (a ``.pt2`` holds
    compiled code, not a graph to walk), counted by hooks on its Conv3d and Linear layers.
    """
    suffix = Path(path).suffix.lower()
    if suffix in (".xml", ".onnx"):
        return _count_openvino(str(path), spec)
    if suffix in (".pth", ".pt", ".pt2"):
        return _count_torch(spec)
    raise ValueError(f"{path}: MACs are counted for .xml, .onnx, .pth and .pt2 models")


def _count_openvino(path: str, spec: ModelSpec) -> int:
    ov = require("openvino", extra="openvino", purpose="counting a model's MACs")
    model = ov.Core().read_model(path)
    # one clip: batch 1, and the reference crop where the height and width are dynamic
    dims = model.inputs[0].get_partial_shape()
    shape = [d.get_length() if d.is_static else (1 if i == 0 else 224) for i, d in enumerate(dims)]
    if len(shape) == 6 and shape[3] != spec.clip_len and not dims[3].is_static:
        shape[3] = spec.clip_len
    model.reshape({model.inputs[0]: ov.PartialShape(shape)})
    total = 0
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind not in ("Convolution", "GroupConvolution", "MatMul"):
            continue
        out = [int(d) for d in op.get_output_shape(0)]
        weights = [int(d) for d in op.input(1).get_shape()]
        if kind == "Convolution":  # weights [Cout, Cin, *k]
            total += int(np.prod(out)) * int(np.prod(weights[1:]))
        elif kind == "GroupConvolution":  # weights [G, Cout/G, Cin/G, *k]
            total += int(np.prod(out)) * int(np.prod(weights[2:]))
        else:  # MatMul: the reduced dimension of the first input
            a = [int(d) for d in op.input(0).get_shape()]
            transpose_a = bool(op.get_attributes().get("transpose_a", False))
            total += int(np.prod(out)) * (a[-2] if transpose_a else a[-1])
    return total


def _count_torch(spec: ModelSpec) -> int:
    torch = require("torch", extra="torch", purpose="counting a PyTorch model's MACs")
    from slowfast_deploy.model.slowfast import slowfast_r50

    net = slowfast_r50(spec=spec).eval()
    total = [0]

    def hook(module: Any, _inputs: Any, output: Any) -> None:
        if isinstance(module, torch.nn.Conv3d):
            per_output = module.in_channels // module.groups * int(np.prod(module.kernel_size))
            total[0] += int(output.numel()) * per_output
        elif isinstance(module, torch.nn.Linear):
            total[0] += int(output.numel()) * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in net.modules()
        if isinstance(m, torch.nn.Conv3d | torch.nn.Linear)
    ]
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, spec.clip_len, 224, 224))
    finally:
        for h in handles:
            h.remove()
    return total[0]


# --- the measured peak: large multiplies through the same runtime ------------------------

# (M, K, N) matrix multiplies and (batch, channels, size, kernel) convolutions: big enough to
# be compute-bound on any CPU here, small enough that a probe takes about a second.
MATMULS = ((2048, 2048, 2048), (4096, 1024, 1024))
CONVS = ((8, 256, 28, 3), (16, 512, 14, 1))


def _best_rate(run: Callable[[], object], macs: int, *, repeat: int = 3) -> float:
    run()  # warm-up: compilation, weight packing
    best = min(_timed(run) for _ in range(repeat))
    return macs / best


def _timed(run: Callable[[], object]) -> float:
    t0 = time.perf_counter_ns()
    run()
    return (time.perf_counter_ns() - t0) / 1e9


def measured_peak(backend: str, precision: str, threads: int | None) -> float | None:
    """The best MAC/s of ``MATMULS`` and ``CONVS`` through ``backend`` ('openvino', 'torch')
    at ``precision`` and ``threads``; None where this runtime has no such probe (ONNX Runtime,
    int8 through PyTorch)."""
    if backend == "openvino":
        return _openvino_peak(precision, threads)
    if backend in ("torch", "aot") and precision in ("fp32", "bf16"):
        return _torch_peak(precision, threads)
    return None


def _openvino_peak(precision: str, threads: int | None) -> float:
    ov = require("openvino", extra="openvino", purpose="the measured peak")
    ops = require("openvino.opset13", extra="openvino", purpose="the measured peak")
    core = ov.Core()
    config: dict[str, str | int] = {
        "INFERENCE_PRECISION_HINT": {"bf16": "bf16", "fp16": "f16"}.get(precision, "f32"),
        "PERFORMANCE_HINT": "LATENCY",
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    rng = np.random.default_rng(0)

    def quantized(node: Any, *, weights: bool) -> Any:
        """int8: FakeQuantize as NNCF inserts it, which the CPU plugin folds into int8
        kernels only as oneDNN takes them: unsigned activations (after a ReLU: 0..hi, 256
        levels) and symmetric signed weights (255 levels). Signed activations ran as f32."""
        if precision != "int8":
            return node
        lo, hi, levels = (-1.0, 1.0, 255) if weights else (0.0, 4.0, 256)
        low, high = ops.constant(np.float32(lo)), ops.constant(np.float32(hi))
        return ops.fake_quantize(node, low, high, low, high, levels)

    rates = []
    for m, k, n in MATMULS:
        x = ops.parameter([m, k], ov.Type.f32)
        w = ops.constant(rng.standard_normal((k, n)).astype(np.float32))
        product = ops.matmul(quantized(x, weights=False), quantized(w, weights=True), False, False)
        model = ov.Model([product], [x])
        request = core.compile_model(model, "CPU", config).create_infer_request()
        data = np.abs(rng.standard_normal((m, k))).astype(np.float32)  # as after a ReLU
        rates.append(_best_rate(partial(request.infer, {0: data}), m * k * n))
    for batch, channels, size, kernel in CONVS:
        x = ops.parameter([batch, channels, size, size], ov.Type.f32)
        shape = (channels, channels, kernel, kernel)
        w = ops.constant(rng.standard_normal(shape).astype(np.float32) * 0.05)
        pad = [kernel // 2] * 2
        conv = ops.convolution(
            quantized(x, weights=False), quantized(w, weights=True), [1, 1], pad, pad, [1, 1]
        )
        model = ov.Model([ops.relu(conv)], [x])
        request = core.compile_model(model, "CPU", config).create_infer_request()
        data = np.abs(rng.standard_normal((batch, channels, size, size))).astype(np.float32)
        macs = batch * channels * size * size * channels * kernel * kernel
        rates.append(_best_rate(partial(request.infer, {0: data}), macs))
    return max(rates)


def _torch_peak(precision: str, threads: int | None) -> float:
    torch = require("torch", extra="torch", purpose="the measured peak")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        rates = []
        with torch.no_grad():
            for m, k, n in MATMULS:
                a = torch.randn(m, k, generator=gen).to(dtype)
                b = torch.randn(k, n, generator=gen).to(dtype)
                rates.append(_best_rate(partial(torch.matmul, a, b), m * k * n))
            for batch, channels, size, kernel in CONVS:
                x = torch.randn(batch, channels, size, size, generator=gen).to(dtype)
                w = torch.randn(channels, channels, kernel, kernel, generator=gen).to(dtype)
                macs = batch * channels * size * size * channels * kernel * kernel

                conv = partial(torch.nn.functional.conv2d, x, w, padding=kernel // 2)
                rates.append(_best_rate(conv, macs))
        return max(rates)
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True, slots=True)
class Roofline:
    """One model's place under the roofline: the keys ``bench``'s JSON carries per model."""

    precision: str
    macs_per_clip: int
    mac_per_s: float
    peak_nominal_mac_per_s: float
    peak_measured_mac_per_s: float | None

    @property
    def fraction_of_nominal(self) -> float:
        return self.mac_per_s / self.peak_nominal_mac_per_s

    @property
    def fraction_of_measured(self) -> float | None:
        measured = self.peak_measured_mac_per_s
        return self.mac_per_s / measured if measured else None

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = asdict(self)
        d["fraction_of_nominal"] = self.fraction_of_nominal
        d["fraction_of_measured"] = self.fraction_of_measured
        return d

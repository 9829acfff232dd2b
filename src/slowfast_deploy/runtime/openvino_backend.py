"""OpenVINO backend for ``.onnx`` files and OpenVINO IR (``.xml`` + ``.bin``) on CPU."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy._optional import require
from slowfast_deploy.errors import BackendUnavailableError, ModelFormatError
from slowfast_deploy.runtime.base import BackendInfo, InputDType, ModelInput, OutputKind

logger = logging.getLogger(__name__)

# OpenVINO's names for the inference precision hint; on AMX CPUs its default is bf16, so fp32
# is always requested explicitly. An int8 IR (``compile --precision int8``) carries its own
# quantized layers; the rest of it runs in f32.
OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
# Optimization capability a CPU must report for each reduced precision.
OV_CAPABILITY = {"bf16": "BF16", "fp16": "FP16", "int8": "INT8"}


def rt_value(model: Any, key: str) -> str | None:
    """A metadata entry of an OpenVINO model: ``compile``'s rt_info section ``slowfast_deploy``,
    else the ONNX ``metadata_props`` (kept by OpenVINO under ``framework``)."""
    for section in ("slowfast_deploy", "framework"):
        if model.has_rt_info([section, key]):
            return str(model.get_rt_info([section, key]).astype(str))
    return None


def check_precision(core: Any, device: str, precision: str) -> None:
    """Raise ``BackendUnavailableError`` unless ``device`` can run ``precision``."""
    if precision not in OV_PRECISION:
        raise BackendUnavailableError(
            f"OpenVINO precision {precision!r} is not supported; choose from "
            f"{', '.join(OV_PRECISION)}"
        )
    capabilities = core.get_property(device, "OPTIMIZATION_CAPABILITIES")
    needed = OV_CAPABILITY.get(precision)
    if needed and needed not in capabilities:
        raise BackendUnavailableError(
            f"this {device} cannot run {precision} in OpenVINO (it supports "
            f"{', '.join(capabilities)}); use --precision fp32"
        )


@dataclass(frozen=True, slots=True)
class LayerTime:
    """One executed layer: its name and type in the graph, the kernel it ran, its time."""

    name: str
    node_type: str  # e.g. Convolution
    kernel: str  # OpenVINO's exec_type, e.g. brgconv_avx512_amx_bf16, jit_avx512_I8
    real_ms: float


class OpenVinoBackend:
    def __init__(
        self,
        model_path: str,
        *,
        device: str = "CPU",
        precision: str | None = None,
        threads: int | None = None,
        perf_count: bool = False,
    ) -> None:
        ov = require("openvino", extra="openvino", purpose="backend 'openvino'")
        core = ov.Core()
        device = device.upper()
        if device not in core.available_devices:
            raise BackendUnavailableError(
                f"OpenVINO device {device!r} is not available (available: "
                f"{', '.join(core.available_devices)})"
            )
        try:
            model = core.read_model(model_path)
        except Exception as err:  # OpenVINO raises RuntimeError for every bad file
            raise ModelFormatError(
                f"{model_path}: OpenVINO cannot read it as a model "
                f"({str(err).strip().splitlines()[0][:200]})"
            ) from err
        stored = rt_value(model, "precision")
        if (precision == "int8") != (stored == "int8") and precision is not None:
            raise BackendUnavailableError(
                f"{model_path}: an int8 model comes from `compile --precision int8`, and such a "
                f"model runs as int8 only (this file is {stored or 'fp32'}, {precision} asked)"
            )
        precision = precision or stored or "fp32"
        check_precision(core, device, precision)
        hint = OV_PRECISION[precision]
        if precision == "int8" and rt_value(model, "int8_kept_precision") == "bf16":
            # compiled with --kept-precision bf16: judged (fidelity) with its other layers in bf16
            if "BF16" not in core.get_property(device, "OPTIMIZATION_CAPABILITIES"):
                raise BackendUnavailableError(
                    f"{model_path}: this int8 model runs its unquantized layers in bf16, which "
                    f"this {device} cannot; recompile it with --kept-precision fp32"
                )
            hint = "bf16"
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": hint,
            "PERFORMANCE_HINT": "LATENCY",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if perf_count:  # per-layer times and kernels (``layer_times``), for ``bench --per-layer``
            config["PERF_COUNT"] = True
        self._compiled = core.compile_model(model, device, config)
        self._request = self._compiled.create_infer_request()
        shape = model.inputs[0].get_partial_shape()
        self.input_shape: tuple[int | None, ...] = tuple(
            d.get_length() if d.is_static else None for d in shape
        )
        element = model.inputs[0].get_element_type()
        if element not in (ov.Type.f32, ov.Type.u8):
            raise ModelFormatError(
                f"{model_path}: input is {element.get_type_name()}; this toolkit feeds float32 "
                "clips or uint8 crops (re-export with `slowfast-deploy export`)"
            )
        self.input_dtype: InputDType = "uint8" if element == ov.Type.u8 else "float32"
        kind = rt_value(model, "output_kind") or "unknown"
        self.output_kind: OutputKind = (
            "probs" if kind == "probs" else "logits" if kind == "logits" else "unknown"
        )
        used = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        logger.info("OpenVINO %s on %s, inference precision %s", ov.__version__, device, used)
        self.info = BackendInfo(
            name="openvino",
            model_path=str(model_path),
            precision=precision,
            device=device.lower(),
            provider=f"{device} {used}",
            versions={"openvino": ov.__version__},
        )

    def run(self, video: ModelInput) -> NDArray[np.float32]:
        result = self._request.infer({0: np.ascontiguousarray(video)})
        return np.asarray(result[self._compiled.outputs[0]], dtype=np.float32).copy()

    def layer_times(self) -> list[LayerTime]:
        """The last ``run``'s executed layers with their kernels, slowest first (opened with
        ``perf_count``): OpenVINO's performance counters, layers that did not run left out."""
        rows = [
            LayerTime(p.node_name, p.node_type, p.exec_type, p.real_time.total_seconds() * 1e3)
            for p in self._request.get_profiling_info()
            if p.real_time.total_seconds() > 0
        ]
        return sorted(rows, key=lambda r: -r.real_ms)

    def close(self) -> None:
        self._request = None
        self._compiled = None

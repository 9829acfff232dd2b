"""ONNX Runtime backend for ``.onnx`` files (exported or ``compile --backend onnxruntime``)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy._optional import require
from slowfast_deploy.errors import BackendUnavailableError, ModelFormatError
from slowfast_deploy.runtime.base import BackendInfo, InputDType, ModelInput, OutputKind

logger = logging.getLogger(__name__)

DEVICE_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def session_options(ort: Any, threads: int | None) -> Any:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts


class OnnxRuntimeBackend:
    def __init__(
        self,
        model_path: str,
        *,
        device: str = "cpu",
        precision: str = "fp32",
        threads: int | None = None,
    ) -> None:
        ort = require("onnxruntime", extra="onnx", purpose="backend 'onnxruntime'")
        if precision != "fp32":
            raise BackendUnavailableError(
                f"backend 'onnxruntime' runs fp32 models only here, not {precision!r}; "
                "use --backend openvino --precision bf16 for reduced precision on CPU"
            )
        if device not in DEVICE_PROVIDERS:
            raise BackendUnavailableError(
                f"unknown device {device!r} for onnxruntime; choose from {sorted(DEVICE_PROVIDERS)}"
            )
        available = ort.get_available_providers()
        wanted = DEVICE_PROVIDERS[device][0]
        if wanted not in available:
            raise BackendUnavailableError(
                f"onnxruntime provider {wanted} is not available (available: "
                f"{', '.join(available)}); install onnxruntime-gpu for CUDA/TensorRT"
            )
        try:
            self._session = ort.InferenceSession(
                model_path,
                sess_options=session_options(ort, threads),
                providers=DEVICE_PROVIDERS[device],
            )
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise ModelFormatError(
                f"{model_path}: onnxruntime cannot load it as an ONNX model "
                f"({str(err).splitlines()[0][:200]})"
            ) from err
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        self.input_shape: tuple[int | None, ...] = tuple(
            d if isinstance(d, int) else None for d in inp.shape
        )
        types: dict[str, InputDType] = {"tensor(float)": "float32", "tensor(uint8)": "uint8"}
        if inp.type not in types:
            raise ModelFormatError(
                f"{model_path}: input {inp.name!r} is {inp.type}; this toolkit feeds float32 "
                "clips or uint8 crops (re-export with `slowfast-deploy export`)"
            )
        self.input_dtype: InputDType = types[inp.type]
        meta = self._session.get_modelmeta().custom_metadata_map
        self.output_kind: OutputKind = meta.get("output_kind", "unknown")
        if self.output_kind == "unknown":
            logger.warning(
                "%s has no output_kind metadata: softmax rows are told from logits by their values",
                model_path,
            )
        used = self._session.get_providers()[0]
        if used != wanted:  # ORT falls back to the next provider when one fails to start
            raise BackendUnavailableError(
                f"onnxruntime could not start {wanted} for {model_path} (it runs on {used}); "
                "check the CUDA/TensorRT installation"
            )
        logger.info("onnxruntime %s using %s", ort.__version__, used)
        self.info = BackendInfo(
            name="onnxruntime",
            model_path=str(model_path),
            precision="fp32",
            device=device,
            provider=used,
            versions={"onnxruntime": ort.__version__},
        )

    def run(self, video: ModelInput) -> NDArray[np.float32]:
        out = self._session.run(None, {self._input_name: np.ascontiguousarray(video)})[0]
        return np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        self._session = None

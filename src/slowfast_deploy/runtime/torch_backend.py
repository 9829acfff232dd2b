"""PyTorch eager backend for mmaction2 checkpoints (``.pth``); the reference path.

``precision="bf16"`` converts the network's weights and activations to bfloat16 (the input is
normalised in float32 and cast, softmax runs in float32); it is refused on a CPU without
native bf16 (AVX-512-BF16 or AMX), where PyTorch would emulate it, slower than fp32.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy._optional import require
from slowfast_deploy.errors import BackendUnavailableError
from slowfast_deploy.runtime.base import BackendInfo, InputDType, ModelInput, OutputKind
from slowfast_deploy.specs import SLOWFAST_R50_8X8, ModelSpec

logger = logging.getLogger(__name__)

TORCH_PRECISIONS = ("fp32", "bf16")


def torch_dtype(torch: Any, precision: str) -> Any:
    """The ``torch.dtype`` of a precision name (fp32, bf16, fp16)."""
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise BackendUnavailableError(
            f"the torch backend runs {', '.join(dtypes)}, not {precision!r}"
        )
    return dtypes[precision]


def check_torch_precision(torch: Any, device: str, precision: str) -> None:
    """Raise ``BackendUnavailableError`` unless ``device`` runs ``precision`` natively."""
    torch_dtype(torch, precision)
    if device == "cpu":
        if precision == "fp16":
            raise BackendUnavailableError(
                "the torch backend runs fp16 on CUDA only; on a CPU use --precision bf16 or fp32"
            )
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        if precision == "bf16" and not native:
            raise BackendUnavailableError(
                "this CPU has no native bf16 (AVX-512-BF16 or AMX), so PyTorch would emulate "
                "it, slower than fp32; use --precision fp32"
            )
    elif precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise BackendUnavailableError(
            f"this GPU ({torch.cuda.get_device_name()}) has no bf16; use --precision fp16"
        )


def check_torch_device(torch: Any, device: str) -> None:
    """Raise ``BackendUnavailableError`` unless torch can run on ``device`` (cpu or cuda)."""
    if device == "cpu":
        return
    if device != "cuda":
        raise BackendUnavailableError(f"the torch backend runs on cpu or cuda, not {device!r}")
    if not torch.cuda.is_available():
        raise BackendUnavailableError(
            f"torch {torch.__version__} here has no usable CUDA device; install a CUDA build "
            "of torch on a GPU machine, or use --device cpu"
        )


class TorchBackend:
    def __init__(
        self,
        model_path: str,
        *,
        spec: ModelSpec = SLOWFAST_R50_8X8,
        softmax: bool = True,
        threads: int | None = None,
        precision: str = "fp32",
    ) -> None:
        torch = require("torch", extra="torch", purpose="running a .pth checkpoint")
        from slowfast_deploy.model.checkpoint import load_checkpoint
        from slowfast_deploy.model.slowfast import ReferenceContract

        check_torch_precision(torch, "cpu", precision)
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self._model: Any = ReferenceContract(
            load_checkpoint(model_path, spec), softmax=softmax, dtype=torch_dtype(torch, precision)
        ).eval()
        self.input_shape: tuple[int | None, ...] = (None, None, 3, spec.clip_len, None, None)
        self.output_kind: OutputKind = "probs" if softmax else "logits"
        self.input_dtype: InputDType = "float32"
        self.info = BackendInfo(
            name="torch",
            model_path=str(model_path),
            precision=precision,
            provider=f"torch {torch.__version__} eager, {torch.get_num_threads()} threads",
            versions={"torch": torch.__version__},
        )
        logger.info("torch eager %s, %d threads", precision, torch.get_num_threads())

    def run(self, video: ModelInput) -> NDArray[np.float32]:
        with self._torch.inference_mode():
            out = self._model(self._torch.from_numpy(np.ascontiguousarray(video)))
        scores: NDArray[np.float32] = out.numpy()
        return scores

    def close(self) -> None:
        self._model = None

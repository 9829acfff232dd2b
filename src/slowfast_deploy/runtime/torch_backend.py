"""PyTorch eager backend for mmaction2 checkpoints (``.pth``); the reference path."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy._optional import require
from slowfast_deploy.runtime.base import BackendInfo, OutputKind
from slowfast_deploy.specs import SLOWFAST_R50_8X8, ModelSpec


class TorchBackend:
    def __init__(
        self,
        model_path: str,
        *,
        spec: ModelSpec = SLOWFAST_R50_8X8,
        softmax: bool = True,
        threads: int | None = None,
    ) -> None:
        torch = require("torch", extra="torch", purpose="running a .pth checkpoint")
        from slowfast_deploy.model.checkpoint import load_checkpoint
        from slowfast_deploy.model.slowfast import ReferenceContract

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self._model = ReferenceContract(load_checkpoint(model_path, spec), softmax=softmax).eval()
        self.input_shape: tuple[int | None, ...] = (None, None, 3, spec.clip_len, None, None)
        self.output_kind: OutputKind = "probs" if softmax else "logits"
        self.info = BackendInfo(
            name="torch",
            model_path=str(model_path),
            precision="fp32",
            provider=f"torch {torch.__version__} eager, {torch.get_num_threads()} threads",
            versions={"torch": torch.__version__},
        )

    def run(self, video: NDArray[np.float32]) -> NDArray[np.float32]:
        with self._torch.inference_mode():
            out = self._model(self._torch.from_numpy(np.ascontiguousarray(video)))
        return out.numpy()

    def close(self) -> None:
        self._model = None

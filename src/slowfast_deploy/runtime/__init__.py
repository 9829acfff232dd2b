"""Runtimes behind one contract (``base.Backend``); ``open_backend`` picks one per model file.

| file            | default backend | also runs with |
| --------------- | --------------- | -------------- |
| ``.pth``/``.pt``| torch (eager)   |                |
| ``.pt2``        | torch (AOTInductor package, ``compile --backend torch``) | |
| ``.onnx``       | onnxruntime     | openvino       |
| ``.xml`` (IR)   | openvino        |                |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from slowfast_deploy.errors import BackendUnavailableError, ModelFormatError
from slowfast_deploy.runtime.aot_backend import AotBackend
from slowfast_deploy.runtime.base import Backend, BackendInfo, run_batched
from slowfast_deploy.runtime.openvino_backend import OpenVinoBackend
from slowfast_deploy.runtime.ort_backend import OnnxRuntimeBackend
from slowfast_deploy.runtime.torch_backend import TorchBackend
from slowfast_deploy.specs import MODEL_SPECS, SLOWFAST_R50_8X8, ModelSpec

BACKENDS = ("torch", "onnxruntime", "openvino")
_BY_SUFFIX = {
    ".pth": "torch",
    ".pt": "torch",
    ".pt2": "torch",
    ".onnx": "onnxruntime",
    ".xml": "openvino",
}
_ACCEPTS = {
    "torch": {".pth", ".pt", ".pt2"},
    "onnxruntime": {".onnx"},
    "openvino": {".onnx", ".xml"},
}

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendInfo",
    "ModelConfig",
    "backend_for",
    "model_files",
    "open_backend",
    "run_batched",
]


def backend_for(model_path: str | os.PathLike[str], backend: str | None = None) -> str:
    """The backend that runs ``model_path``: ``backend`` if given and able, else by suffix."""
    suffix = Path(model_path).suffix.lower()
    if backend is None:
        if suffix not in _BY_SUFFIX:
            raise ModelFormatError(
                f"{model_path}: not a model file this toolkit runs (expected .pth/.pt checkpoint, "
                ".pt2 package, .onnx, or OpenVINO IR .xml)"
            )
        return _BY_SUFFIX[suffix]
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if suffix not in _ACCEPTS[backend]:
        raise ModelFormatError(
            f"{model_path}: backend {backend!r} cannot run a {suffix or 'suffix-less'} file "
            f"(it takes {', '.join(sorted(_ACCEPTS[backend]))})"
        )
    return backend


def open_backend(
    model_path: str | os.PathLike[str],
    *,
    backend: str | None = None,
    precision: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    softmax: bool = True,
    spec: ModelSpec = SLOWFAST_R50_8X8,
) -> Backend:
    """Open ``model_path`` with one explicit branch per runtime (imported lazily).

    ``softmax`` and ``spec`` apply to ``.pth`` checkpoints only; exported models carry their
    own output kind, input dtype and architecture.
    """
    path = str(model_path)
    if not Path(path).is_file():
        raise ModelFormatError(f"{path}: no such model file")
    name = backend_for(path, backend)
    if name == "torch":
        if Path(path).suffix.lower() == ".pt2":
            return AotBackend(path, precision=precision, device=device, threads=threads)
        if device != "cpu":
            raise BackendUnavailableError(
                f"the torch backend runs .pth checkpoints on the CPU here, not {device!r}; "
                f"compile a .pt2 with `compile {path} --backend torch --device {device}`"
            )

        return TorchBackend(
            path, spec=spec, softmax=softmax, threads=threads, precision=precision or "fp32"
        )
    if name == "onnxruntime":
        return OnnxRuntimeBackend(
            path, device=device, precision=precision or "fp32", threads=threads
        )

    return OpenVinoBackend(path, device=device, precision=precision, threads=threads)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Everything needed to open a model, picklable, so other processes and nodes can open it."""

    path: str
    backend: str | None = None
    precision: str | None = None
    device: str = "cpu"
    threads: int | None = None
    softmax: bool = True
    spec: str = SLOWFAST_R50_8X8.name

    def open(self) -> Backend:

        return open_backend(
            self.path,
            backend=self.backend,
            precision=self.precision,
            device=self.device,
            threads=self.threads,
            softmax=self.softmax,
            spec=MODEL_SPECS[self.spec],
        )

    def at(self, path: str | os.PathLike[str]) -> ModelConfig:
        """The same model, read from another copy of its file (e.g. on another node)."""
        return replace(self, path=str(path))


def model_files(model_path: str | os.PathLike[str]) -> list[Path]:
    """The files a model consists of: the file itself, plus the weights ``.bin`` of an IR."""
    path = Path(model_path)
    files = [path]
    if path.suffix.lower() == ".xml" and path.with_suffix(".bin").is_file():
        files.append(path.with_suffix(".bin"))
    return files

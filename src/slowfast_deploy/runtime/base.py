"""The backend contract: numpy in, numpy out, one module per runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.errors import ModelFormatError
from slowfast_deploy.specs import PreprocessSpec
from slowfast_deploy.video.preprocess import normalize_to_ncthw

# "unknown": an ONNX/IR file without slowfast-deploy metadata; ``to_probs`` then tells
# softmax rows (non-negative, summing to 1) from logits by their values.
OutputKind = Literal["probs", "logits", "unknown"]
# What a model's ``video`` input holds: normalised float32 clips (the reference contract), or
# uint8 RGB crops 0-255 with the mean/std normalisation inside the graph (``--input-dtype
# uint8``: 4x fewer bytes per clip through pipes, object stores and HTTP).
InputDType = Literal["float32", "uint8"]
INPUT_DTYPES: tuple[InputDType, ...] = ("float32", "uint8")
# What ``model_input`` makes: float32 or uint8 (``InputDType``); numpy's stubs lose the element
# type through ``np.stack``/``np.fromfile``, hence ``Any``.
ModelInput = NDArray[Any]

# Max |softmax score difference| allowed, per backend and precision (logits are compared after
# softmax). fp32 values are the golden README's tolerance; reduced precisions have no entry:
# they are measured and reported, not held to fp32 tolerances.
PARITY_ATOL: dict[tuple[str, str], float] = {
    ("torch", "fp32"): 1e-4,
    ("onnxruntime", "fp32"): 1e-4,
    ("openvino", "fp32"): 1e-4,
}


@dataclass(frozen=True, slots=True)
class BackendInfo:
    name: str  # 'torch' | 'onnxruntime' | 'openvino'
    model_path: str
    precision: str
    device: str = "cpu"
    provider: str = ""  # ORT execution provider / OpenVINO device actually used
    versions: dict[str, str] = field(default_factory=dict)


class Backend(Protocol):
    """``run`` maps ``video [N, V, 3, T, H, W]`` float32 to ``[N*V, classes]`` float32.

    ``input_shape`` is the model's declared input shape, ``None`` for dynamic axes.
    ``output_kind`` says whether ``run`` returns softmax probabilities or logits.
    ``input_dtype`` says what ``video`` holds (``model_input`` makes it from uint8 crops).
    """

    info: BackendInfo
    input_shape: tuple[int | None, ...]
    output_kind: OutputKind
    input_dtype: InputDType

    def run(self, video: ModelInput) -> NDArray[np.float32]: ...

    def close(self) -> None: ...


def softmax(x: NDArray[np.float32], axis: int = -1) -> NDArray[np.float32]:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    probs: NDArray[np.float32] = (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)
    return probs


def to_probs(output: NDArray[np.float32], kind: OutputKind) -> NDArray[np.float32]:
    """Softmax probabilities from a model's output of the given kind."""
    if kind == "unknown":
        sums = output.sum(axis=-1)
        kind = "probs" if (output >= 0).all() and np.allclose(sums, 1.0, atol=1e-3) else "logits"
    return output if kind == "probs" else softmax(output)


def input_dtype_of(backend: Backend) -> InputDType:
    """``backend.input_dtype``; a backend written before uint8 models existed takes float32."""
    return getattr(backend, "input_dtype", "float32")


def model_input(
    crops_vthwc: NDArray[np.uint8], spec: PreprocessSpec, input_dtype: InputDType
) -> ModelInput:
    """uint8 crops ``[V, T, H, W, 3]`` -> the ``[V, 3, T, H, W]`` a model of ``input_dtype`` takes.

    The one place every command turns crops into model input: float32 is
    ``normalize_to_ncthw`` (unchanged, bit for bit); uint8 is the same layout change with the
    bytes kept, the model normalising them itself. Per element, so a clip assembled frame by
    frame equals the clip converted at once.
    """
    if input_dtype == "uint8":
        return np.ascontiguousarray(crops_vthwc.transpose(0, 4, 1, 2, 3))
    if input_dtype != "float32":
        raise ValueError(f"input_dtype must be one of {INPUT_DTYPES}, got {input_dtype!r}")
    return normalize_to_ncthw(crops_vthwc, spec)


def check_input_dtype(backend: Backend, video: NDArray[np.generic]) -> None:
    """Raise ``ModelFormatError`` if ``video``'s dtype is not what ``backend`` takes."""
    wanted = input_dtype_of(backend)
    if video.dtype != np.dtype(wanted):
        fix = (
            "preprocess with --dtype uint8 (or use the float model)"
            if wanted == "uint8"
            else "preprocess without --dtype uint8 (or use a uint8 model)"
        )
        raise ModelFormatError(
            f"{backend.info.model_path}: the model takes {wanted} input but the data is "
            f"{video.dtype}; {fix}"
        )


def check_input_shape(
    declared: tuple[int | None, ...], video_shape: tuple[int, ...], *, model_path: str
) -> None:
    """Raise ``ModelFormatError`` if ``video_shape`` cannot feed a model declaring ``declared``.

    The batch axis (0) is not compared: fixed-batch models are fed by ``run_batched``.
    """

    ok = len(declared) == len(video_shape) and all(
        d is None or d == v for d, v in zip(declared[1:], video_shape[1:], strict=True)
    )
    if not ok:
        shown = "x".join(
            ("N" if i == 0 else "?") if d is None else str(d) for i, d in enumerate(declared)
        )
        raise ModelFormatError(
            f"{model_path}: model input is {shown} but the data is "
            f"{'x'.join(map(str, video_shape))}; use inputs preprocessed for this model "
            "(or re-export/compile it for this shape)"
        )


def run_batched(backend: Backend, video: ModelInput) -> NDArray[np.float32]:
    """``backend.run`` for any N: a fixed-batch model gets zero-padded chunks, extras dropped."""
    check_input_shape(backend.input_shape, video.shape, model_path=backend.info.model_path)
    check_input_dtype(backend, video)
    batch = backend.input_shape[0] if backend.input_shape else None  # None: dynamic
    n = video.shape[0]
    if batch is None or batch == n:
        return backend.run(video)
    views = video.shape[1]
    outputs = []
    for start in range(0, n, batch):
        chunk = video[start : start + batch]
        if chunk.shape[0] < batch:
            pad = np.zeros((batch - chunk.shape[0], *chunk.shape[1:]), dtype=chunk.dtype)
            chunk = np.concatenate([chunk, pad])
        outputs.append(backend.run(chunk)[: min(batch, n - start) * views])
    return np.concatenate(outputs)

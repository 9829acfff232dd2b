"""Load mmaction2 checkpoints into ``SlowFast`` strictly, with ``torch.load(weights_only=True)``.

Accepted files: mmaction2 0.x (``{'meta', 'state_dict'[, 'optimizer']}``), mmaction2 1.x /
mmengine (``meta`` pickles ``mmengine.logging.history_buffer.HistoryBuffer``, allow-listed
here as an inert stub) and a bare state dict. ``convert_mmaction_state_dict`` is pure.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from slowfast_deploy.errors import CheckpointError
from slowfast_deploy.model.slowfast import SlowFast, slowfast_r50
from slowfast_deploy.specs import SLOWFAST_R50_8X8, ModelSpec

_SHOW = 5  # keys listed per category in a mismatch error


class HistoryBuffer:
    """Inert stand-in for mmengine's ``HistoryBuffer`` (log history in a 1.x checkpoint's meta)."""

    def __setstate__(self, state: Any) -> None:
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})


# numpy objects that mmengine's HistoryBuffer pickles (its log arrays), resolved lazily.
_NUMPY_GLOBALS = (
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.ndarray",
    "numpy.dtype",
)


def _safe_globals() -> list[Any]:
    import numpy as np

    allowed: list[Any] = [(HistoryBuffer, "mmengine.logging.history_buffer.HistoryBuffer")]
    for name in _NUMPY_GLOBALS:
        module_name, _, attr = name.rpartition(".")
        try:
            module = __import__(module_name, fromlist=[attr])
            allowed.append((getattr(module, attr), name))
        except (ImportError, AttributeError):
            continue
    allowed.extend(type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32"))
    return allowed


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state dict stored in ``path`` (IO only; no model involved)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        unsafe = _unsafe_globals(path)
        if unsafe:
            raise CheckpointError(
                f"{path}: holds objects outside the weights-only allow-list ({', '.join(unsafe)});"
                " it is not an mmaction2 checkpoint, and it is never unpickled unsafely"
            ) from err
        raise CheckpointError(
            f"{path}: not a loadable PyTorch checkpoint ({str(err).splitlines()[0][:200]})"
        ) from err
    return extract_state_dict(obj, source=str(path))


def _unsafe_globals(path: Path) -> list[str]:
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:
        return []


def extract_state_dict(obj: Any, *, source: str) -> dict[str, torch.Tensor]:
    """``obj['state_dict']`` for mmaction2 files, ``obj`` for a bare state dict."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{source}: holds no state dict of tensors (got {type(obj).__name__})"
        )
    return dict(obj)


def convert_mmaction_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """mmaction2 keys -> this model's keys (identical layout; strips a DataParallel ``module.``)."""
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


def check_state_dict(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str
) -> None:
    """Raise one ``CheckpointError`` listing missing, unexpected and shape-mismatched keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", mismatched)):
        if keys:
            more = f" and {len(keys) - _SHOW} more" if len(keys) > _SHOW else ""
            problems.append(f"{len(keys)} {label}: {', '.join(keys[:_SHOW])}{more}")
    if problems:
        spec_name = getattr(getattr(model, "spec", None), "name", None)
        raise CheckpointError(
            f"{source}: does not fit SlowFast '{spec_name}'"
            f" ({len(expected)} keys expected, {len(state_dict)} found); "
            + "; ".join(problems)
            + ". Use an mmaction2 SlowFast R50 checkpoint, or --spec for another variant."
        )


def load_checkpoint(path: str | os.PathLike[str], spec: ModelSpec = SLOWFAST_R50_8X8) -> SlowFast:
    """Build ``SlowFast(spec)`` and load ``path`` into it strictly; eval mode."""
    state_dict = convert_mmaction_state_dict(read_checkpoint(path))
    model = slowfast_r50(spec)
    check_state_dict(model, state_dict, source=str(path))
    model.load_state_dict(state_dict, strict=True)
    return model.eval()

"""How far a reduced-precision model's answers drift from its fp32 source, without labels.

``compare_scores`` is pure: given the fp32 model's scores and the candidate's on the same clips
it counts top-1 agreement, top-5-set agreement, the per-clip max |score difference| (softmax
probabilities) and how many *clear-margin* clips flipped: clips whose reference top-1 leads its
runner-up by more than ``CLEAR_MARGIN``, where a flip is a real change of answer rather than a
near tie. ``check_fidelity`` runs two model files on a clip set; ``write_fidelity`` /
``read_fidelity`` keep the figures in an OpenVINO IR's ``rt_info`` (key ``fidelity``), where
``bench`` and ``report`` find them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy._optional import require
from slowfast_deploy.errors import ModelFormatError
from slowfast_deploy.runtime import open_backend, run_batched
from slowfast_deploy.runtime.base import to_probs
from slowfast_deploy.runtime.openvino_ir import RT_SECTION

logger = logging.getLogger(__name__)

# A clip's reference top-1 "leads clearly" when it beats the runner-up by more than this
# (softmax probability); the target: no such clip may flip.
CLEAR_MARGIN = 0.05
FIDELITY_KEY = "fidelity"


@dataclass(frozen=True, slots=True)
class Fidelity:
    """Agreement of a candidate model with its fp32 reference on ``num_clips`` clips."""

    num_clips: int
    top1_agree: int  # clips with the same top-1 class
    top5_agree: int  # clips with the same set of 5 best classes
    max_score_diff: float  # max over clips of max |p_ref - p| (softmax scores)
    mean_score_diff: float  # mean over clips of max |p_ref - p|
    num_clear: int  # clips whose reference top-1 leads by > CLEAR_MARGIN
    clear_flipped: int  # of those, clips whose top-1 changed
    clips: str = ""  # what the clips were, e.g. "72 clips from /data/val (out of sample)"

    def __post_init__(self) -> None:
        if self.num_clips < 1:
            raise ValueError(f"Fidelity needs at least one clip, got {self.num_clips}")

    @property
    def top1_agreement(self) -> float:
        return self.top1_agree / self.num_clips

    @property
    def top5_agreement(self) -> float:
        return self.top5_agree / self.num_clips

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Fidelity:
        return cls(**json.loads(text))

    def summary(self) -> str:
        """One line: ``top-1 71/72 (0.986), top-5 set 60/72, max |diff| 0.090, ...``."""
        return (
            f"top-1 {self.top1_agree}/{self.num_clips} ({self.top1_agreement:.3f}), "
            f"top-5 set {self.top5_agree}/{self.num_clips} ({self.top5_agreement:.3f}), "
            f"max |score diff| {self.max_score_diff:.3f}, mean {self.mean_score_diff:.3f}, "
            f"clear-margin flips {self.clear_flipped}/{self.num_clear}"
            + (f" on {self.clips}" if self.clips else "")
        )


def compare_scores(
    reference: NDArray[np.floating[Any]],
    candidate: NDArray[np.floating[Any]],
    *,
    clips: str = "",
    clear_margin: float = CLEAR_MARGIN,
) -> Fidelity:
    """``[N, classes]`` softmax scores of the fp32 model and of the candidate -> ``Fidelity``."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape or reference.ndim != 2:
        raise ValueError(
            f"scores must both be [N, classes]; got {reference.shape} and {candidate.shape}"
        )
    k = min(5, reference.shape[1])
    ref_sorted = np.sort(reference, axis=1)
    margin = ref_sorted[:, -1] - ref_sorted[:, -2] if reference.shape[1] > 1 else ref_sorted[:, -1]
    same_top1 = reference.argmax(1) == candidate.argmax(1)
    ref_top5 = np.sort(np.argsort(-reference, axis=1, kind="stable")[:, :k], axis=1)
    got_top5 = np.sort(np.argsort(-candidate, axis=1, kind="stable")[:, :k], axis=1)
    diff = np.abs(reference - candidate).max(axis=1)
    clear = margin > clear_margin
    return Fidelity(
        num_clips=len(reference),
        top1_agree=int(same_top1.sum()),
        top5_agree=int((ref_top5 == got_top5).all(axis=1).sum()),
        max_score_diff=float(diff.max()),
        mean_score_diff=float(diff.mean()),
        num_clear=int(clear.sum()),
        clear_flipped=int((clear & ~same_top1).sum()),
        clips=clips,
    )


def score_clips(backend: Any, clips: Sequence[NDArray[np.float32]]) -> NDArray[np.float32]:
    """Softmax scores ``[N, classes]`` of ``backend`` on clips ``[1, 1, 3, T, H, W]`` each."""

    return np.concatenate([to_probs(run_batched(backend, c), backend.output_kind) for c in clips])


def check_fidelity(
    model: str | os.PathLike[str],
    source: str | os.PathLike[str],
    clips: Sequence[NDArray[np.float32]],
    *,
    description: str = "",
    threads: int | None = None,
) -> Fidelity:
    """Run ``model`` (e.g. an int8 IR) and its fp32 ``source`` on ``clips``; compare them.

    ``source`` runs as fp32 whatever its file (``.onnx`` under ONNX Runtime, a ``.pth``
    under PyTorch, an fp32 IR under OpenVINO).
    """

    if not clips:
        raise ValueError("a fidelity check needs at least one clip")
    source_backend = "onnxruntime" if Path(source).suffix.lower() == ".onnx" else None
    reference = score_clips(open_backend(source, backend=source_backend, threads=threads), clips)
    got = score_clips(open_backend(model, threads=threads), clips)
    return compare_scores(reference, got, clips=description)


def write_fidelity(xml: str | os.PathLike[str], fidelity: Fidelity) -> None:
    """Store ``fidelity`` in an OpenVINO IR's ``rt_info`` (the IR is rewritten in place)."""

    ov = require("openvino", extra="openvino", purpose="writing fidelity into an IR")
    xml = Path(xml)
    if xml.suffix.lower() != ".xml":
        raise ModelFormatError(
            f"{xml}: fidelity figures are stored in OpenVINO IR (.xml) files only; "
            "compile the model with `slowfast-deploy compile --backend openvino`"
        )
    model = ov.Core().read_model(str(xml))
    model.set_rt_info(fidelity.to_json(), [RT_SECTION, FIDELITY_KEY])
    tmp = xml.with_name(xml.stem + ".fidelity-tmp.xml")
    ov.save_model(model, str(tmp), compress_to_fp16=False)
    del model
    os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
    os.replace(tmp, xml)


def read_fidelity(model: str | os.PathLike[str]) -> Fidelity | None:
    """The fidelity figures stored in an OpenVINO IR, or ``None`` (other files, none stored)."""
    if Path(model).suffix.lower() != ".xml" or not Path(model).is_file():
        return None
    ov = require("openvino", extra="openvino", purpose="reading an IR's fidelity")

    ir = ov.Core().read_model(str(model))
    if not ir.has_rt_info([RT_SECTION, FIDELITY_KEY]):
        return None
    return Fidelity.from_json(str(ir.get_rt_info([RT_SECTION, FIDELITY_KEY]).astype(str)))


__all__ = [
    "CLEAR_MARGIN",
    "Fidelity",
    "check_fidelity",
    "compare_scores",
    "read_fidelity",
    "score_clips",
    "write_fidelity",
]

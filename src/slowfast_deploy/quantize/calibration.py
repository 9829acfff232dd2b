"""Clip sets for int8 calibration and for judging agreement (validation), and their checks.

A clip set comes from a directory of ``.bin`` files written by ``slowfast-deploy preprocess`` or
straight from videos and an annotation list (the same decode/preprocess path as ``preprocess``,
one centre view per video); ``size`` clips are picked evenly spread over the list, so a list
sorted by class gives every part of it a share. ``check_clip_sets`` warns when the two sets
share clips (then agreement is measured in-sample and says little) and when a set is too small
to trust, naming how many clips are needed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.engine.decode import load_views
from slowfast_deploy.engine.jobs import read_annotations
from slowfast_deploy.errors import DataFormatError
from slowfast_deploy.reference.formats import list_bins, read_bin
from slowfast_deploy.video.decode import Decoder
from slowfast_deploy.video.samples import write_samples

# NNCF's min-max statistics settle with a few dozen varied clips (its own default subset is 300).
MIN_CALIBRATION_CLIPS = 32
# The source name that asks for generated sample clips (``samples.write_samples``): for the demo
# only; every warning and the model's metadata say so.
GENERATED_SOURCE = "generated-samples"
# Rule of three: 0 flips on n clips bounds the true flip rate below 3/n (95% confidence); 30
# clips are the fewest that bound it at 10%.
MIN_VALIDATION_CLIPS = 30


@dataclass(frozen=True, slots=True)
class ClipSet:
    """Preprocessed clips ``[1, 1, 3, T, H, W]`` float32 with where each one came from."""

    source: str  # the directory or list they were read from
    names: tuple[str, ...]  # one per clip: the .bin file or the video path
    clips: list[NDArray[np.float32]] = field(repr=False)
    generated: bool = False  # generated sample clips (demo only), not the user's data

    def __len__(self) -> int:
        return len(self.clips)

    def digests(self) -> list[str]:
        """sha256 of every clip's values: equal clips from different files are found too."""
        return [hashlib.sha256(np.ascontiguousarray(c).tobytes()).hexdigest() for c in self.clips]

    def describe(self) -> str:
        kind = "generated sample clips (demo only)" if self.generated else "clips"
        return f"{len(self)} {kind} from {self.source}"


def spread(num_items: int, size: int) -> list[int]:
    """``min(size, num_items)`` indices evenly spread over ``range(num_items)``, first and last
    included."""
    if size < 1:
        raise ValueError(f"clip count must be >= 1, got {size}")
    if num_items < 1:
        return []
    picks = np.linspace(0, num_items - 1, min(size, num_items)).round().astype(int)
    return sorted(set(picks.tolist()))


def load_clip_set(
    source: str | os.PathLike[str],
    size: int,
    *,
    video_dir: str | os.PathLike[str] | None = None,
    decoder: Decoder = "decord",
) -> ClipSet:
    """``size`` clips evenly spread over ``source``: a directory of ``.bin`` files, or an
    annotation list (``relative/path.mp4 label`` lines; videos under ``video_dir``, default the
    list's folder), or ``GENERATED_SOURCE`` for the generated sample videos (demo only)."""

    if str(source) == GENERATED_SOURCE:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            generated = load_clip_set(write_samples(tmp), size, decoder=decoder)
        names = tuple(f"{GENERATED_SOURCE}/{Path(n).name}" for n in generated.names)
        return ClipSet(GENERATED_SOURCE, names, generated.clips, generated=True)
    source = Path(source)
    if source.is_dir():
        bins = list_bins(source)
        picked = [bins[i] for i in spread(len(bins), size)]
        names = tuple(str(p.resolve()) for p in picked)  # a recipe replays from any directory
        return ClipSet(str(source), names, [read_bin(p) for p in picked])
    if not source.is_file():
        raise DataFormatError(
            f"{source}: no such clip source; give a directory of .bin files from "
            "`slowfast-deploy preprocess` or an annotation list of videos"
        )

    items = read_annotations(source)
    root = Path(video_dir) if video_dir is not None else source.parent
    picked_items = [items[i] for i in spread(len(items), size)]
    clips = [
        load_views(root / it.path, decoder=decoder)[None].astype(np.float32) for it in picked_items
    ]
    names = tuple(str((root / it.path).resolve()) for it in picked_items)
    return ClipSet(str(source), names, clips)


def check_clip_sets(calibration: ClipSet, validation: ClipSet | None) -> list[str]:
    """Warnings about the clip sets: overlap, too few clips, generated clips."""
    warnings = []
    if calibration.generated:
        warnings.append(
            f"calibration uses {calibration.describe()}: fine for the demo, not for a model "
            "you deploy; calibrate on your own clips"
        )
    if len(calibration) < MIN_CALIBRATION_CLIPS:
        warnings.append(
            f"only {len(calibration)} calibration clips in {calibration.source}: int8 ranges "
            f"need at least {MIN_CALIBRATION_CLIPS} varied clips of your data (a few hundred is "
            "better)"
        )
    if validation is None:
        warnings.append(
            "no --validation clips: agreement is measured on the calibration clips (in-sample) "
            "and will look better than on new videos"
        )
    else:
        shared = set(calibration.digests()) & set(validation.digests())
        if shared:
            warnings.append(
                f"{len(shared)} of the {len(validation)} validation clips are also calibration "
                f"clips ({calibration.source} and {validation.source}): their agreement is "
                "in-sample; use clips of other videos for validation"
            )
        if len(validation) < MIN_VALIDATION_CLIPS:
            warnings.append(
                f"only {len(validation)} validation clips in {validation.source}: with 0 flips "
                f"on n clips the flip rate is only known to be below 3/n, so at least "
                f"{MIN_VALIDATION_CLIPS} clips are needed to bound it at 10% (300 for 1%)"
            )
    return warnings


__all__ = [
    "GENERATED_SOURCE",
    "MIN_CALIBRATION_CLIPS",
    "MIN_VALIDATION_CLIPS",
    "ClipSet",
    "check_clip_sets",
    "load_clip_set",
    "spread",
]

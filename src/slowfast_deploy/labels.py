"""Class-name maps: one name per line, line i = class i (Kinetics-400: the sorted class names).

The 400 Kinetics-400 names ship with the package (``label_map_k400.txt``, the public list of
mmaction2's ``tools/data/kinetics/label_map_k400.txt``, Apache-2.0), so every command can show
names without a label map beside the project.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path

from slowfast_deploy.errors import DataFormatError

NUM_KINETICS400_CLASSES = 400


def _parse(text: str) -> list[str]:
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    return names


def load_labels(path: str | os.PathLike[str], *, num_classes: int | None = None) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such label map (one class name per line)")
    names = _parse(path.read_text(encoding="utf-8"))
    if num_classes is not None and len(names) != num_classes:
        raise DataFormatError(f"{path}: {len(names)} names for a {num_classes}-class model")
    return names


@cache
def _kinetics400() -> tuple[str, ...]:
    text = resources.files("slowfast_deploy").joinpath("label_map_k400.txt").read_text("utf-8")
    return tuple(_parse(text))


def kinetics400_labels() -> list[str]:
    """The 400 Kinetics-400 class names shipped with the package, class i at index i."""
    return list(_kinetics400())


def resolve_labels(
    path: str | os.PathLike[str] | None, *, num_classes: int | None = None
) -> list[str] | None:
    """Names for a model's classes: ``path`` when given (``--label-map``), else the shipped
    Kinetics-400 names when the model has 400 classes (or its class count is not known yet),
    else ``None`` (class indices only)."""
    if path is not None:
        return load_labels(path, num_classes=num_classes)
    if num_classes in (None, NUM_KINETICS400_CLASSES):
        return kinetics400_labels()
    return None


def names_for(labels: Sequence[str] | None, num_classes: int) -> Sequence[str] | None:
    """``labels`` if they name exactly ``num_classes`` classes, else ``None``: the Kinetics
    names are never put on another model's classes (a 10-class model shows indices)."""
    return labels if labels is not None and len(labels) == num_classes else None


def class_name(index: int, labels: Sequence[str] | None) -> str:
    """The name of class ``index``, or ``class {index}`` where there is none."""
    return labels[index] if labels is not None and index < len(labels) else f"class {index}"

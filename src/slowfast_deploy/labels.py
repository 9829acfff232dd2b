"""Class-name maps: one name per line, line i = class i (Kinetics-400: the sorted class names)."""

from __future__ import annotations

import os
from pathlib import Path

from slowfast_deploy.errors import DataFormatError


def load_labels(path: str | os.PathLike[str], *, num_classes: int | None = None) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such label map (one class name per line)")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    while names and not names[-1]:
        names.pop()
    if num_classes is not None and len(names) != num_classes:
        raise DataFormatError(f"{path}: {len(names)} names for a {num_classes}-class model")
    return names

"""The reference workflow's files, byte-compatible: ``.bin``, ``.info``, results.

(The annotation list, ``relative/path.mp4 <label>`` per line, is read by ``engine.jobs``.)

- ``bin/{i}.bin``: raw little-endian float32, C order, ``(1, 1, 3, 32, 224, 224)``, no header;
  with ``preprocess --dtype uint8``: the RGB crops 0-255, one byte each (a quarter the size),
  for uint8-input models, recorded in ``bin_format.json`` beside the ``.info``;
- ``kinetics400.info``: ``"{i} {label}\\n"`` per video;
- results: ``{stem}_0.txt`` (each value ``%f`` followed by a space, newline-terminated),
  ``{stem}_0.npy`` (``np.save``) or ``{stem}_0.bin`` (``tofile``).

Writers go through ``_files.write_atomic`` so an interrupted run never leaves a half-written
file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.errors import DataFormatError
from slowfast_deploy.runtime.base import ModelInput

BIN_SHAPE = (1, 1, 3, 32, 224, 224)
BIN_DTYPE: np.dtype[np.float32] = np.dtype("<f4")  # the reference's; the default
# .bin element types by the model input dtype they feed (``runtime.base.InputDType``)
BIN_DTYPES: dict[str, np.dtype[np.float32] | np.dtype[np.uint8]] = {
    "float32": BIN_DTYPE,
    "uint8": np.dtype(np.uint8),
}
BIN_FORMAT_NAME = "bin_format.json"  # {"dtype": ..., "shape": [...]}, beside kinetics400.info
RESULT_FORMATS = ("TXT", "NPY", "BIN")


def format_info(items: Iterable[tuple[int, int]]) -> str:
    return "".join(f"{index} {label}\n" for index, label in items)


def read_info(path: str | os.PathLike[str]) -> list[tuple[int, int]]:
    """``(index, label)`` pairs of a ``kinetics400.info`` file."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such label file")
    pairs = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not all(re.fullmatch(r"-?\d+", p) for p in parts):
            raise DataFormatError(f"{path}:{line_no}: expected '<index> <label>', got {line!r}")
        pairs.append((int(parts[0]), int(parts[1])))
    return pairs


def bin_dtype(dtype: str) -> np.dtype[np.float32] | np.dtype[np.uint8]:
    """The ``.bin`` element type for a model input dtype name (float32, uint8)."""
    if dtype not in BIN_DTYPES:
        raise ValueError(f"a .bin holds {' or '.join(BIN_DTYPES)}, not {dtype!r}")
    return BIN_DTYPES[dtype]


def bin_bytes(video: ModelInput) -> bytes:
    """One view's ``.bin`` bytes: float32 clips as the reference writes them; uint8 crops as is."""
    if video.shape != BIN_SHAPE:
        raise ValueError(f"a .bin holds one view {BIN_SHAPE}, got {video.shape}")
    if video.dtype == np.uint8:
        return np.ascontiguousarray(video).tobytes()
    return np.ascontiguousarray(video, dtype=BIN_DTYPE).tobytes()


def read_bin(path: Path, shape: tuple[int, ...] = BIN_SHAPE, dtype: str = "float32") -> ModelInput:
    """A ``.bin`` of ``dtype`` elements (float32 or uint8), checked for its size."""
    element = bin_dtype(dtype)
    count = int(np.prod(shape))
    size = path.stat().st_size
    if size != count * element.itemsize:
        other = next(name for name in BIN_DTYPES if name != dtype)
        if size == count * BIN_DTYPES[other].itemsize:
            flag = "with --dtype uint8" if dtype == "uint8" else "without --dtype uint8"
            raise DataFormatError(
                f"{path}: holds {other} {shape} ({size} bytes) but the model takes {dtype}; "
                f"rerun `slowfast-deploy preprocess` {flag}, or use a {other}-input model"
            )
        raise DataFormatError(
            f"{path}: {size} bytes, expected {count * element.itemsize} for {dtype} {shape}; "
            "the file is truncated or was made for another input shape: rerun "
            "`slowfast-deploy preprocess`"
        )
    return np.fromfile(path, dtype=element).reshape(shape)


def natural_key(path: Path) -> tuple[int, int | str]:
    """Sort ``2.bin`` before ``10.bin``; non-numeric stems after, by name."""
    return (0, int(path.stem)) if path.stem.isdigit() else (1, path.stem)


def result_bytes(scores: NDArray[np.float32], fmt: str) -> bytes:
    """One result file's bytes for a ``[rows, classes]`` array, as the reference tool writes it."""
    scores = np.asarray(scores, dtype=np.float32)
    if fmt == "TXT":
        rows = scores.reshape(-1, scores.shape[-1])
        return "".join("".join(f"{v:f} " for v in row) + "\n" for row in rows).encode()
    if fmt == "NPY":
        import io

        buffer = io.BytesIO()
        np.save(buffer, scores)
        return buffer.getvalue()
    if fmt == "BIN":
        return scores.tobytes()
    raise ValueError(f"outfmt must be one of {RESULT_FORMATS}, got {fmt!r}")


def result_name(stem: str, fmt: str) -> str:
    """The reference tool's result file name for input ``{stem}.bin``: ``{stem}_0.{fmt}``.

    >>> result_name("12", "TXT")
    '12_0.txt'
    """
    return f"{stem}_0.{fmt.lower()}"


def find_result(result_dir: Path, stem: str) -> Path | None:
    for fmt in RESULT_FORMATS:
        candidate = result_dir / result_name(stem, fmt)
        if candidate.is_file():
            return candidate
    return None


def read_result(path: Path, *, num_classes: int | None = None) -> NDArray[np.float32]:
    """The scores in one result file, as a 1-D float32 array."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".txt":
            values = np.array(path.read_text().split(), dtype=np.float32)
        elif suffix == ".npy":
            values = np.load(path).astype(np.float32).reshape(-1)
        elif suffix == ".bin":
            values = np.fromfile(path, dtype=np.float32)
        else:
            raise DataFormatError(f"{path}: unknown result format (expected .txt, .npy or .bin)")
    except ValueError as err:
        raise DataFormatError(f"{path}: not a result file of float scores ({err})") from err
    if values.size == 0 or (num_classes is not None and values.size != num_classes):
        raise DataFormatError(
            f"{path}: holds {values.size} scores, expected {num_classes or 'some'}; "
            "rerun `slowfast-deploy infer` for it"
        )
    return values


def list_bins(input_dir: Path) -> list[Path]:
    """The ``.bin`` inputs of ``input_dir`` in natural order, each checked for its size."""
    if not input_dir.is_dir():
        raise DataFormatError(f"{input_dir}: no such input directory")
    bins = sorted(input_dir.glob("*.bin"), key=natural_key)
    if not bins:
        raise DataFormatError(f"{input_dir}: holds no .bin files; run `slowfast-deploy preprocess`")
    return bins

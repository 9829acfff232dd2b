"""The reference workflow's files, byte-compatible: annotation lists, ``.bin``, ``.info``, results.

- annotation list: ``relative/path.mp4 <label>`` per line (mmaction2 ``VideoDataset``);
- ``bin/{i}.bin``: raw little-endian float32, C order, ``(1, 1, 3, 32, 224, 224)``, no header;
- ``kinetics400.info``: ``"{i} {label}\\n"`` per video;
- results: ``{stem}_0.txt`` (each value ``%f`` followed by a space, newline-terminated),
  ``{stem}_0.npy`` (``np.save``) or ``{stem}_0.bin`` (``tofile``).

Writers go through ``write_atomic`` so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.errors import DataFormatError

BIN_SHAPE = (1, 1, 3, 32, 224, 224)
BIN_DTYPE = np.dtype("<f4")
RESULT_FORMATS = ("TXT", "NPY", "BIN")


@dataclass(frozen=True, slots=True)
class Annotation:
    index: int  # 0-based position in the list (the .bin name)
    path: str  # as written in the list, relative to the video directory
    label: int
    line: int  # 1-based line number, for error messages


def parse_annotations(text: str, *, source: str) -> list[Annotation]:
    """Parse an mmaction2 video list; blank lines are skipped, anything else malformed raises."""
    items: list[Annotation] = []
    text = text.removeprefix("\ufeff")  # a BOM left by an editor is not part of the first path
    # lines end at LF (CRLF: the CR is stripped); not str.splitlines, which also splits at
    # characters such as U+0085 or U+2028 that may be part of a file name
    for line_no, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not re.fullmatch(r"-?\d+", parts[1]):
            raise DataFormatError(
                f"{source}:{line_no}: expected 'relative/path.mp4 <integer label>', got {line!r}"
            )
        items.append(Annotation(len(items), parts[0].strip(), int(parts[1]), line_no))
    if not items:
        raise DataFormatError(f"{source}: the annotation list has no entries")
    return items


def read_annotations(path: str | os.PathLike[str]) -> list[Annotation]:
    """Read a list as users save it: UTF-8 with or without a BOM, LF or CRLF, blank lines."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such annotation list")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFormatError(
            f"{path}: not UTF-8 text (byte {err.start}); save the list as UTF-8"
        ) from err
    return parse_annotations(text, source=str(path))


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # interrupted or failed: leave no temporary file behind
        tmp.unlink(missing_ok=True)
        raise


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


def bin_bytes(video: NDArray[np.float32]) -> bytes:
    if video.shape != BIN_SHAPE:
        raise ValueError(f"a .bin holds one view {BIN_SHAPE}, got {video.shape}")
    return np.ascontiguousarray(video, dtype=BIN_DTYPE).tobytes()


def read_bin(path: Path, shape: tuple[int, ...] = BIN_SHAPE) -> NDArray[np.float32]:
    expected = int(np.prod(shape)) * BIN_DTYPE.itemsize
    size = path.stat().st_size
    if size != expected:
        raise DataFormatError(
            f"{path}: {size} bytes, expected {expected} for float32 {shape}; the file is "
            "truncated or was made for another input shape: rerun `slowfast-deploy preprocess`"
        )
    return np.fromfile(path, dtype=BIN_DTYPE).reshape(shape)


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


def find_result(result_dir: Path, stem: str) -> Path | None:
    for fmt in RESULT_FORMATS:
        candidate = result_dir / f"{stem}_0.{fmt.lower()}"
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


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

"""What to run: mmaction2 annotation lists and the ``VideoJob``s made from them.

An annotation list is ``relative/path.mp4 <label>`` per line (mmaction2 ``VideoDataset``);
it is read as users save it: UTF-8 with or without a BOM, LF or CRLF, blank lines skipped.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from slowfast_deploy.engine.base import VideoJob
from slowfast_deploy.errors import DataFormatError


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


def jobs_from_list(
    video_dir: str | os.PathLike[str], ann_file: str | os.PathLike[str]
) -> list[VideoJob]:
    """One job per list line, keyed by line index and path (a video listed twice runs twice)."""
    items = read_annotations(Path(ann_file))
    return [
        VideoJob(f"{it.index}:{it.path}", str(Path(video_dir) / it.path), it.label) for it in items
    ]


def jobs_from_paths(videos: list[str | os.PathLike[str]]) -> list[VideoJob]:
    """One job per video, keyed by position and path (no labels)."""
    return [VideoJob(f"{i}:{v}", str(v)) for i, v in enumerate(videos)]

"""One SubRip file per stream, a subtitle appended (and flushed) as each segment ends.

Times run from the stream's first opening: a connection's stream times are shifted by the
wall time between the first opening and its own, so reconnects keep one timeline per file
(a file source read once gives the SRT ``timeline --format srt`` gives).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import IO, Any

from slowfast_deploy.timeline.output import srt_block

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def srt_file_name(name: str, taken: set[str]) -> str:
    """A file name for a stream's name (URL or path): unsafe runs become ``_``; unique."""
    stem = _UNSAFE.sub("_", name).strip("._") or "stream"
    candidate, n = f"{stem}.srt", 2
    while candidate in taken:
        candidate, n = f"{stem}-{n}.srt", n + 1
    taken.add(candidate)
    return candidate


class SubtitleFiles:
    """``DIR/<stream>.srt`` for every stream, written as ``segment_end`` events come."""

    def __init__(self, directory: Path, stream_names: list[str]) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OSError(
                f"{directory}: cannot create the --srt-dir directory ({err.strerror})"
            ) from err
        taken: set[str] = set()
        self.paths = {name: directory / srt_file_name(name, taken) for name in stream_names}
        self._files: dict[str, IO[str]] = {}
        self._numbers: dict[str, int] = {}
        self._first_wall: dict[str, float] = {}
        self._offsets: dict[tuple[str, int], float] = {}
        for name, path in self.paths.items():
            self._files[name] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close
            self._numbers[name] = 0

    def add(self, event: dict[str, Any]) -> None:
        kind, name = event.get("event"), event.get("stream")
        if name not in self._files:
            return
        if kind in ("stream_opened", "stream_restored"):
            first = self._first_wall.setdefault(name, event["wall"])
            self._offsets[(name, event["connection"])] = event["wall"] - first
        elif kind == "segment_end":
            self._numbers[name] += 1
            offset = self._offsets.get((name, event["connection"]), 0.0)
            out = self._files[name]
            if self._numbers[name] > 1:
                out.write("\n")
            out.write(srt_block(self._numbers[name], event, offset_s=offset))
            out.flush()

    def close(self) -> None:
        for out in self._files.values():
            out.close()

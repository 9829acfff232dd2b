"""Per-video result lines (JSON Lines) that survive interruption: append, fsync, resume.

The first line describes the run (model fingerprint, views, decoder); a rerun resumes only a
file of the same run. A half-written last line from a kill is cut off on resume; any other bad
line stops with an error rather than being dropped. ``finalize`` rewrites the file in list
order, so a resumed run ends with the same lines as an uninterrupted one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypedDict, cast

from slowfast_deploy._files import open_atomic, sha256_file, write_atomic
from slowfast_deploy.engine.base import VideoResult
from slowfast_deploy.engine.decode import decoder_reusable
from slowfast_deploy.engine.prediction import Prediction, ResultLine
from slowfast_deploy.errors import DataFormatError


class _RunRequired(TypedDict):
    model_sha256: str
    backend: str | None
    precision: str | None
    spec: str
    views: int
    decoder: str


class RunHeader(_RunRequired, total=False):
    """The first line's ``run``: what must match for a results file to be resumed."""

    frame_count: str  # only when not "container" (files made before it existed resume)


def result_record(
    result: VideoResult, *, index: int | None, labels: Sequence[str] | None = None, topk: int = 5
) -> ResultLine:
    """The JSON line of one engine result (``Prediction.to_record``)."""
    return Prediction.from_result(result, index=index, labels=labels, topk=topk).to_record()


HEADER_KEY = "#run"


class RunLock:
    """An exclusive ``flock`` on ``<results>.lock``, held for the whole run.

    The kernel drops it when its holder dies (even by ``kill -9``), so a stale lock cannot
    block the next run; a second run on the same file refuses at once, naming the first.
    """

    def __init__(self, results_path: Path) -> None:
        self.path = results_path.with_name(results_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            results = self.path.with_suffix("")
            raise DataFormatError(
                f"{results}: another run is writing it ({holder}); wait for it to finish or "
                "give another --output"
            ) from None
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(fd, f"pid {os.getpid()} on {platform.node()}, started {started}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock. The file stays: deleting it would let a run that opened the old
        file and one that creates a new one both hold "the" lock."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None


@dataclass
class ResultsFile:
    """An append-only JSONL file: a header line describing the run, then one record per video.

    The header (model fingerprint, views, decoder) guards resumption: results of another model
    or protocol are never mixed in. Records are keyed by ``key`` (list index and path). Only
    each record's status is kept in memory; records themselves stay on disk, so a list of
    20,000 videos costs 20,000 keys, not 20,000 records of 400 scores.
    """

    path: Path
    run: RunHeader
    status: dict[str, str]
    decoder_used: dict[str, str] = field(default_factory=dict)
    file_decoder: str = ""  # the --decoder of the run that wrote the file before
    _handle: IO[str] | None = None

    @classmethod
    def open(cls, path: Path, run: RunHeader) -> ResultsFile:
        """Read the statuses of ``path``'s records (creating it with a header for ``run``).

        Only a half-written *last* line (a kill mid-write) is cut; any other bad line, a file
        that is not a results file, or a header of another run raises ``DataFormatError``.
        """
        if path.is_dir():
            raise DataFormatError(f"{path}: is a directory; --output takes a .jsonl file path")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.stat().st_size == 0:
            write_atomic(path, (_dumps({"key": HEADER_KEY, "run": run}) + "\n").encode())
            return cls(path, run, {})
        _check_header(path, run)  # before anything is cut: a foreign file is left untouched
        _cut_partial_last_line(path)
        status: dict[str, str] = {}
        used: dict[str, str] = {}
        file_decoder = ""
        for line_no, record in enumerate(_iter_lines(path), start=1):
            if not isinstance(record, dict) or "key" not in record:
                raise DataFormatError(
                    f"{path}:{line_no}: not a slowfast-deploy result line; give --output a new "
                    "file or one written by `evaluate --output`"
                )
            if line_no == 1:
                file_decoder = str(record["run"].get("decoder", ""))
                continue
            # a retried video's later line wins; the decoder used decides reuse (see done_keys)
            status[record["key"]] = str(record.get("status"))
            used[record["key"]] = str(record.get("decoder") or file_decoder)
        return cls(path, run, status, used, file_decoder)

    def done_keys(self) -> set[str]:
        """Videos that need no work: ``ok`` records whose frames the current ``--decoder``
        would make too (failures are retried). The decoder *used* per video is compared, not
        the flag, so a file made with ``decord`` resumes under ``auto``."""
        flag = str(self.run.get("decoder", ""))
        return {
            k
            for k, s in self.status.items()
            if s == "ok" and decoder_reusable(self.decoder_used.get(k, ""), flag, self.file_decoder)
        }

    def append(self, record: ResultLine) -> None:
        if self._handle is None:
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._handle.write(_dumps(record) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        key = str(record["key"])
        self.status[key] = str(record.get("status"))
        self.decoder_used[key] = str(record.get("decoder") or self.run.get("decoder"))

    def finalize(self, order: list[tuple[str, int | None]]) -> None:
        """Rewrite atomically, streaming: the header, then the last record of each key in
        ``order`` (``(key, label)`` pairs; labels from the current list). Memory: one offset
        per key, one record at a time."""
        self.close()
        offsets: dict[str, tuple[int, int]] = {}
        with open(self.path, "rb") as f:
            position = 0
            for raw in f:
                offsets[json.loads(raw)["key"]] = (position, len(raw))
                position += len(raw)
        with open(self.path, "rb") as src, open_atomic(self.path) as dst:
            dst.write((_dumps({"key": HEADER_KEY, "run": self.run}) + "\n").encode())
            for key, label in order:
                if key not in offsets:
                    continue
                start, length = offsets[key]
                src.seek(start)
                record = json.loads(src.read(length))
                record["label"] = label
                dst.write((_dumps(record) + "\n").encode())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def same_run(old: object, new: RunHeader) -> bool:
    """Headers describe the same run; the decoder is compared per video (``done_keys``)."""
    if not isinstance(old, dict):
        return False
    return {k: v for k, v in old.items() if k != "decoder"} == {
        k: v for k, v in new.items() if k != "decoder"
    }


def _check_header(path: Path, run: RunHeader) -> None:
    """Raise ``DataFormatError`` unless ``path`` starts with a complete header of ``run``."""
    with open(path, "rb") as f:
        first = f.readline()
    try:
        header = json.loads(first) if first.endswith(b"\n") else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("key") != HEADER_KEY:
        raise DataFormatError(
            f"{path}: has no run header, so it was not written by `evaluate --output`; give "
            "--output a new file (this one is left untouched)"
        )
    if not same_run(header.get("run"), run):
        raise DataFormatError(
            f"{path}: holds results of another run ({_describe(header.get('run'))}, now "
            f"{_describe(run)}); give another --output or delete the file to start over"
        )


def _cut_partial_last_line(path: Path) -> None:
    """Truncate a half-written last line (a kill mid-write); never touches complete lines."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return
        # find the last newline, reading backwards in chunks
        end = size
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            chunk = f.read(end - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                f.truncate(start + cut + 1)
                return
            end = start
        f.truncate(0)


def _iter_lines(path: Path) -> Iterator[Any]:
    """Each line of ``path`` parsed as JSON, or ``None`` for a line that is not JSON."""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            try:
                yield json.loads(raw)
            except json.JSONDecodeError:
                yield None


def _dumps(record: Mapping[str, object]) -> str:
    return json.dumps(record, separators=(",", ":"))


def _describe(run: object) -> str:
    if not isinstance(run, dict):
        return "unknown"
    return ", ".join(f"{k} {str(v)[:16]}" for k, v in run.items())


def iter_records(path: Path) -> Iterator[ResultLine]:
    """The per-video records of a results file (header skipped), one at a time."""
    if not path.is_file():
        raise DataFormatError(f"{path}: no such results file (from `evaluate --output`)")
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{path}:{line_no}: not a JSON line ({err.msg})") from err
            if isinstance(record, dict) and record.get("key") != HEADER_KEY:
                yield cast(ResultLine, record)  # as written by Prediction.to_record


def read_records(path: Path) -> list[ResultLine]:
    """The per-video records of a results file (header skipped)."""
    return list(iter_records(path))


def model_fingerprint(model_path: str | os.PathLike[str]) -> str:
    """sha256 of a model file (and of its weights file, for an OpenVINO ``.xml``)."""
    path = Path(model_path)
    digest = sha256_file(path)
    weights = path.with_suffix(".bin")
    if path.suffix.lower() == ".xml" and weights.is_file():
        digest = hashlib.sha256((digest + sha256_file(weights)).encode()).hexdigest()
    return digest

"""Per-video result lines (JSON Lines) that survive interruption: append, fsync, resume.

The first line describes the run (model fingerprint, views, decoder); a rerun resumes only a
file of the same run. A half-written last line from a kill is cut off on resume; any other bad
line stops with an error rather than being dropped. ``finalize`` rewrites the file in list
order, so a resumed run ends with the same lines as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from slowfast_deploy.errors import DataFormatError
from slowfast_deploy.formats import sha256_file, write_atomic
from slowfast_deploy.streaming import VideoResult


def result_record(
    result: VideoResult, *, index: int | None, labels: list[str] | None = None, topk: int = 5
) -> dict[str, Any]:
    """One JSON-able record: video, label, top-k (index, score[, name]), scores, timings."""
    record: dict[str, Any] = {
        "key": result.job.key,
        "index": index,
        "video": result.job.path,
        "label": result.job.label,
    }
    if result.scores is None:
        record.update(status="failed", error=result.error)
        return record
    order = np.argsort(result.scores)[::-1][:topk]
    record["status"] = "ok"
    record["topk"] = [
        {
            "class": int(c),
            "score": float(result.scores[c]),
            **({"name": labels[c]} if labels and c < len(labels) else {}),
        }
        for c in order
    ]
    record["scores"] = [float(f"{v:.8g}") for v in result.scores]
    record["views"] = result.num_views
    record["timing_ms"] = {
        "decode": round(result.decode_ms, 3),
        "preprocess": round(result.preprocess_ms, 3),
        "infer": round(result.infer_ms, 3),
    }
    return record


HEADER_KEY = "#run"


@dataclass
class ResultsFile:
    """An append-only JSONL file: a header line describing the run, then one record per video.

    The header (model fingerprint, views, decoder) guards resumption: results of another model
    or protocol are never mixed in. Records are keyed by ``key`` (list index and path).
    """

    path: Path
    run: dict[str, Any]
    records: dict[str, dict[str, Any]]
    _handle: IO[str] | None = None

    @classmethod
    def open(cls, path: Path, run: dict[str, Any]) -> ResultsFile:
        """Read the trusted records of ``path`` (creating it with a header for ``run``).

        Only a half-written *last* line (a kill mid-write) is cut; any other bad line, a file
        that is not a results file, or a header of another run raises ``DataFormatError``.
        """
        if path.is_dir():
            raise DataFormatError(f"{path}: is a directory; --output takes a .jsonl file path")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.stat().st_size == 0:
            write_atomic(path, (_dumps({"key": HEADER_KEY, "run": run}) + "\n").encode())
            return cls(path, run, {})
        data = path.read_bytes()
        lines = data.splitlines(keepends=True)
        if not lines[-1].endswith(b"\n"):  # killed while writing this line
            with open(path, "r+b") as f:
                f.truncate(len(data) - len(lines[-1]))
            lines = lines[:-1]
        parsed = []
        for line_no, raw in enumerate(lines, start=1):
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                record = None
            if not isinstance(record, dict) or "key" not in record:
                raise DataFormatError(
                    f"{path}:{line_no}: not a slowfast-deploy result line; give --output a new "
                    "file or one written by `evaluate --output`"
                )
            parsed.append(record)
        if not parsed or parsed[0]["key"] != HEADER_KEY:
            raise DataFormatError(f"{path}: has no run header; it was not written by `evaluate`")
        if parsed[0].get("run") != run:
            raise DataFormatError(
                f"{path}: holds results of another run ({_describe(parsed[0].get('run'))}, now "
                f"{_describe(run)}); give another --output or delete the file to start over"
            )
        records = {r["key"]: r for r in parsed[1:]}  # a retried video's later line wins
        return cls(path, run, records)

    def done_keys(self) -> set[str]:
        """Videos that need no work: those with an ``ok`` record (failures are retried)."""
        return {k for k, r in self.records.items() if r.get("status") == "ok"}

    def append(self, record: dict[str, Any]) -> None:
        if self._handle is None:
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._handle.write(_dumps(record) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.records[record["key"]] = record

    def finalize(self, records: list[dict[str, Any]]) -> None:
        """Rewrite atomically: the header, then ``records`` (one per video, in list order)."""
        self.close()
        lines = [{"key": HEADER_KEY, "run": self.run}, *records]
        write_atomic(self.path, "".join(_dumps(r) + "\n" for r in lines).encode())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


def _describe(run: Any) -> str:
    if not isinstance(run, dict):
        return "unknown"
    return ", ".join(f"{k} {str(v)[:16]}" for k, v in run.items())


def read_records(path: Path) -> list[dict[str, Any]]:
    """The per-video records of a results file (header skipped)."""
    if not path.is_file():
        raise DataFormatError(f"{path}: no such results file (from `evaluate --output`)")
    records = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{path}:{line_no}: not a JSON line ({err.msg})") from err
        if isinstance(record, dict) and record.get("key") != HEADER_KEY:
            records.append(record)
    return records


def model_fingerprint(model_path: str | os.PathLike[str]) -> str:
    """sha256 of a model file (and of its weights file, for an OpenVINO ``.xml``)."""
    path = Path(model_path)
    digest = sha256_file(path)
    weights = path.with_suffix(".bin")
    if path.suffix.lower() == ".xml" and weights.is_file():
        digest = hashlib.sha256((digest + sha256_file(weights)).encode()).hexdigest()
    return digest

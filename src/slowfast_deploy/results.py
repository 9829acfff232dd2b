"""Per-video result lines (JSON Lines) that survive interruption: append, fsync, resume.

A line is trusted only when it is complete (newline-terminated, valid JSON with a ``key``);
a half-written last line from a kill is cut off on resume. ``finalize`` rewrites the file
sorted by list index, so a resumed run ends with the same lines as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from slowfast_deploy.formats import write_atomic
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


@dataclass
class ResultsFile:
    """An append-only JSONL file of records keyed by ``key``."""

    path: Path
    records: dict[str, dict[str, Any]]
    _handle: IO[str] | None = None

    @classmethod
    def open(cls, path: Path) -> ResultsFile:
        """Read the trusted records of ``path`` (creating it), cutting any half-written tail."""
        path.parent.mkdir(parents=True, exist_ok=True)
        records: dict[str, dict[str, Any]] = {}
        good = 0
        if path.exists():
            data = path.read_bytes()
            offset = 0
            for raw in data.splitlines(keepends=True):
                if not raw.endswith(b"\n"):
                    break
                try:
                    record = json.loads(raw)
                except json.JSONDecodeError:
                    break
                if not isinstance(record, dict) or "key" not in record:
                    break
                records[record["key"]] = record  # a retried video's later line wins
                offset += len(raw)
                good = offset
            if good != len(data):
                with open(path, "r+b") as f:
                    f.truncate(good)
        return cls(path, records)

    def done_keys(self) -> set[str]:
        """Videos that need no work: those with an ``ok`` record (failures are retried)."""
        return {k for k, r in self.records.items() if r.get("status") == "ok"}

    def append(self, record: dict[str, Any]) -> None:
        if self._handle is None:
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.records[record["key"]] = record

    def finalize(self) -> None:
        """Rewrite atomically, one line per video, sorted by list index."""
        self.close()
        ordered = sorted(
            self.records.values(),
            key=lambda r: (r.get("index") is None, r.get("index") or 0, r["key"]),
        )
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in ordered)
        write_atomic(self.path, text.encode())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

"""The summary of a run, typed: what ``evaluate`` prints, returns and writes beside its results.

``summarize`` reads a results file in one streaming pass (one record at a time, whatever the
list length); ``EvaluationRun.finish`` adds how this run went. ``RunSummary.to_dict()`` is the
JSON of ``evaluate --format json`` and of ``results.jsonl.summary.json``, key for key.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from slowfast_deploy.engine.base import ModelFacts
from slowfast_deploy.evaluation.metrics import Accuracy, AccuracyCounter
from slowfast_deploy.evaluation.results import iter_records


@dataclass(frozen=True, slots=True)
class FailedVideo:
    video: str
    error: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class ThisRun:
    """How the videos computed by this run went (resumed ones excluded)."""

    videos: int
    resumed: int
    startup_s: float
    wall_s: float
    videos_per_s: float | None
    steady_videos_per_s: float | None  # first to last result: start-up and latency excluded
    model_s: float
    model_only_videos_per_s: float | None
    engine_stats: dict[str, int]


@dataclass(slots=True)
class RunSummary:
    num_videos: int
    num_ok: int
    num_failed: int
    failed: list[FailedVideo]
    failure_reasons: dict[str, int]
    decoders: dict[str, int]
    videos_with_hidden_frames: int
    videos_retried: int
    videos_per_node: dict[str, int]
    accuracy: Accuracy | None = None  # when the list has labels
    cpu: str | None = None  # the machine that made these results (the report shows it)
    views: int | None = None
    model: ModelFacts = field(default_factory=ModelFacts)  # backend, precision, device used
    engine: str | None = None
    this_run: ThisRun | None = None

    def to_dict(self) -> dict[str, object]:
        """The JSON (output only: its readers parse it)."""
        out: dict[str, object] = {
            "num_videos": self.num_videos,
            "num_ok": self.num_ok,
            "num_failed": self.num_failed,
            "failed": [asdict(f) for f in self.failed],
            "failure_reasons": dict(self.failure_reasons),
            "decoders": dict(self.decoders),
            "videos_with_hidden_frames": self.videos_with_hidden_frames,
            "videos_retried": self.videos_retried,
            "videos_per_node": dict(self.videos_per_node),
        }
        if self.accuracy is not None:
            out.update({k: v for k, v in self.accuracy.to_dict().items() if k != "num_videos"})
        if self.engine is None:  # a results file summarised alone
            return out
        out.update(cpu=self.cpu, views=self.views, **self.model, engine=self.engine)
        if self.this_run is not None:
            out["this_run"] = asdict(self.this_run)
        return out


def summarize(results_path: Path) -> RunSummary:
    """Counts, failures, decoders, nodes and accuracy of a results file, in one pass."""
    num = ok = 0
    failed: list[FailedVideo] = []
    decoders: Counter[str] = Counter()
    nodes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    hidden = retried = 0
    accuracy = AccuracyCounter()
    for record in iter_records(results_path):
        num += 1
        if "node" in record:
            nodes[str(record["node"])] += 1
        if record.get("retries"):
            retried += 1
        if record.get("status") != "ok":
            failed.append(FailedVideo(record["video"], record.get("error"), record.get("reason")))
            reasons[str(record.get("reason") or "other")] += 1
            continue
        ok += 1
        if "decoder" in record:
            decoders[str(record["decoder"])] += 1
        if record.get("hidden_frames"):
            hidden += 1
        label = record.get("label")
        if label is not None:
            accuracy.add(np.asarray(record["scores"], dtype=np.float32), int(label))
    return RunSummary(
        num_videos=num,
        num_ok=ok,
        num_failed=len(failed),
        failed=failed,
        failure_reasons=dict(reasons),
        decoders=dict(decoders),
        videos_with_hidden_frames=hidden,
        videos_retried=retried,
        videos_per_node=dict(nodes),
        accuracy=accuracy.result() if accuracy.num_videos else None,
    )

"""One video's answer: the one per-video result of ``predict``, ``evaluate`` and ``serve``.

``Prediction`` is what ``Model.predict`` yields, what ``EvaluationRun.records`` yields and
what ``/v1/predict`` answers. It has two JSON forms, key for key as they were written before
one type held both:

- ``to_dict()``: ``predict --format json|jsonl`` and ``/v1/predict``:
  ``video, status, topk, [scores,] views`` and the facts (``info``) but the node; or
  ``video, status, error, reason`` and the facts of a failure;
- ``to_record()``: a line of ``evaluate``'s results file: ``key, index, video, label,
  status``, then ``topk, scores, views, timing_ms`` and the facts, or ``error, reason`` and
  the facts of a failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.engine.base import VideoFacts, VideoResult
from slowfast_deploy.engine.scoring import TopClass, TopClassDict, top_classes
from slowfast_deploy.errors import Reason
from slowfast_deploy.labels import names_for


class _PredictionRequired(TypedDict):
    video: str
    status: str  # "ok" or "failed"


class PredictionJSON(_PredictionRequired, VideoFacts, total=False):
    """``Prediction.to_dict()``: a line of ``predict --format jsonl``."""

    topk: list[TopClassDict]
    scores: list[float]  # with --format json
    views: int
    error: str | None
    reason: Reason


class _RecordRequired(TypedDict):
    key: str | None
    index: int | None
    video: str
    label: int | None
    status: str  # "ok" or "failed"


class ResultLine(_RecordRequired, VideoFacts, total=False):
    """``Prediction.to_record()``: a line of ``evaluate``'s results file, as read back too."""

    topk: list[TopClassDict]
    scores: list[float]
    views: int
    timing_ms: dict[str, float]  # decode, preprocess, infer
    error: str | None
    reason: Reason


@dataclass(frozen=True, slots=True)
class TimingMs:
    """Where one video's time went, in milliseconds (its share of the model calls)."""

    decode: float
    preprocess: float
    infer: float

    def to_dict(self) -> dict[str, float]:
        return {"decode": self.decode, "preprocess": self.preprocess, "infer": self.infer}


@dataclass(frozen=True, slots=True)
class Prediction:
    """One video's answer: top-k ``TopClass`` ``(class_index, name or None, score)``, all scores,
    or an error with its ``reason``.

    ``key``, ``index`` and ``label`` place it in an annotation list (``evaluate``);
    ``info`` holds the per-video facts (decoder used, hidden frames, node, retries, ...).
    """

    video: str
    topk: tuple[TopClass, ...]
    scores: NDArray[np.float32] | None  # [classes], softmax averaged over the views
    views: int
    error: str | None = None
    info: VideoFacts = field(default_factory=VideoFacts)  # decoder used, node, ...
    reason: Reason | None = None  # why it failed
    key: str | None = None  # the job's key in its list (``index:path``)
    index: int | None = None  # its line in the list
    label: int | None = None  # its annotated class
    timing_ms: TimingMs | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> str:
        return "ok" if self.ok else "failed"

    @property
    def top1(self) -> TopClass | None:
        return self.topk[0] if self.topk else None

    @classmethod
    def from_scores(
        cls,
        video: str,
        scores: NDArray[np.float32],
        *,
        views: int,
        topk: int = 5,
        labels: Sequence[str] | None = None,
        info: VideoFacts | None = None,
    ) -> Prediction:
        """The prediction of one video's averaged scores: the ``topk`` best classes
        (``engine.scoring.top_k``), named when ``labels`` name the model's classes."""
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        top = top_classes(scores, topk, names=names_for(labels, len(scores)))
        return cls(video, top, scores, views, None, info.copy() if info else VideoFacts())

    @classmethod
    def from_result(
        cls,
        result: VideoResult,
        *,
        index: int | None = None,
        labels: Sequence[str] | None = None,
        topk: int = 5,
    ) -> Prediction:
        """The prediction of one engine result; names only when ``labels`` name the model's
        classes (never Kinetics names on a 10-class model)."""
        job, info = result.job, result.info.copy()
        if result.scores is None:
            return cls(
                job.path, (), None, 0, result.error, info, result.reason,
                key=job.key, index=index, label=job.label,
            )  # fmt: skip
        timing = TimingMs(
            round(result.decode_ms, 3), round(result.preprocess_ms, 3), round(result.infer_ms, 3)
        )
        top = top_classes(result.scores, topk, names=names_for(labels, len(result.scores)))
        return cls(
            job.path, top, result.scores, result.num_views, None, info,
            key=job.key, index=index, label=job.label, timing_ms=timing,
        )  # fmt: skip

    def _scores(self) -> list[float]:
        return [] if self.scores is None else [float(f"{v:.8g}") for v in self.scores]

    def to_dict(self, *, with_scores: bool = False) -> PredictionJSON:
        """The JSON of ``predict --format json`` (``with_scores``) and ``--format jsonl``: the
        same keys as evaluate's records, without the node."""
        if not self.ok:
            failed: PredictionJSON = {"video": self.video, "status": "failed", "error": self.error}
            if self.reason is not None:
                failed["reason"] = self.reason
            failed.update(self.info)
            return failed
        record: PredictionJSON = {
            "video": self.video,
            "status": "ok",
            "topk": [t.to_dict() for t in self.topk],
        }
        if with_scores and self.scores is not None:
            record["scores"] = self._scores()
        record["views"] = self.views
        facts = self.info.copy()
        facts.pop("node", None)
        record.update(facts)
        return record

    def to_record(self) -> ResultLine:
        """The line of ``evaluate``'s results file, key for key (old files resume)."""
        record: ResultLine = {
            "key": self.key,
            "index": self.index,
            "video": self.video,
            "label": self.label,
            "status": self.status,
        }
        if not self.ok:
            record["error"] = self.error
            if self.reason is not None:
                record["reason"] = self.reason
            record.update(self.info)
            return record
        record["topk"] = [t.to_dict() for t in self.topk]
        record["scores"] = self._scores()
        record["views"] = self.views
        record["timing_ms"] = self.timing_ms.to_dict() if self.timing_ms is not None else {}
        record.update(self.info)  # decoder used, node, retries, ...
        return record

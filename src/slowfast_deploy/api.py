"""The Python API: open a model, predict videos, evaluate a list, without shelling out.

import slowfast_deploy as sd

model = sd.open_model("slowfast_int8.xml", threads=2)
for p in model.predict(["a.mp4", "b.mp4"], views=30, topk=5):
    print(p.video, p.top1, p.topk)           # [(class, name, score), ...]
summary = sd.evaluate("videos/", "val_list.txt", "slowfast_int8.xml",
                      output="results.jsonl")  # resumable, as `slowfast-deploy evaluate`
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.engine import EngineOptions, open_engine
from slowfast_deploy.engine.local import LocalEngine
from slowfast_deploy.labels import resolve_labels
from slowfast_deploy.pipeline import DecodeOptions, VideoJob
from slowfast_deploy.runtime import Backend, ModelConfig
from slowfast_deploy.specs import VIEWS
from slowfast_deploy.streaming import VideoResult


@dataclass(frozen=True, slots=True)
class Prediction:
    """One video's answer: top-k ``(class, name or None, score)``, all scores, or an error."""

    video: str
    topk: list[tuple[int, str | None, float]]
    scores: NDArray[np.float32] | None  # [classes], softmax averaged over the views
    views: int
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)  # decoder used, failure reason, ...

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def top1(self) -> tuple[int, str | None, float] | None:
        return self.topk[0] if self.topk else None


class Model:
    """A model file opened once (torch ``.pth``, ``.onnx`` or OpenVINO ``.xml``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        backend: str | None = None,
        precision: str | None = None,
        device: str = "cpu",
        threads: int | None = None,
        spec: str = "slowfast_r50_8x8x1",
        labels: list[str] | None = None,
    ) -> None:
        """``labels``: class names (line i = class i); default: the Kinetics-400 names, shown
        for a 400-class model."""
        self.config = ModelConfig(
            str(path),
            backend=backend,
            precision=precision,
            device=device,
            threads=threads,
            spec=spec,
        )
        self.labels = labels if labels is not None else resolve_labels(None)
        self._backend: Backend | None = None

    @classmethod
    def from_config(cls, config: ModelConfig, *, labels: list[str] | None = None) -> Model:
        model = cls(config.path, labels=labels)
        model.config = config
        return model

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self.config.open()
        return self._backend

    def predict(
        self,
        videos: Iterable[str | os.PathLike[str]],
        *,
        views: int = 1,
        topk: int = 5,
        decoder: str = "auto",
        frame_count: str = "container",
        engine: str = "local",
        num_workers: int = 1,
        **engine_options: Any,
    ) -> Iterator[Prediction]:
        """Predictions in the order of ``videos``; a video that fails yields an error, not a
        raise. ``engine_options`` are ``EngineOptions`` fields (``batchsize``,
        ``decode_timeout_s``; for ``engine="ray"``: ``model_actors``, ``ray_address``)."""
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        jobs = [VideoJob(f"{i}:{v}", str(v)) for i, v in enumerate(videos)]
        options = EngineOptions(
            engine=engine,  # type: ignore[arg-type]
            num_workers=min(num_workers, len(jobs)),
            **engine_options,
        )
        decode = DecodeOptions(decoder, frame_count)  # type: ignore[arg-type]
        if engine == "local":  # reuse the model opened in this process
            runner: Any = LocalEngine(self.backend, VIEWS[views], decode, options)
        else:
            runner = open_engine(self.config, VIEWS[views], decode, options)
        try:
            runner.start()
            for result in in_order(runner.run(jobs), jobs):
                yield self._prediction(result, topk)
        finally:
            if engine != "local":
                runner.close()

    def _prediction(self, result: VideoResult, topk: int) -> Prediction:
        if result.scores is None:
            return Prediction(result.job.path, [], None, 0, result.error, result.info)
        order = np.argsort(result.scores)[::-1][:topk]
        names = self.labels if self.labels and len(self.labels) == len(result.scores) else None
        top = [
            (int(c), names[c] if names and c < len(names) else None, float(result.scores[c]))
            for c in order
        ]
        return Prediction(result.job.path, top, result.scores, result.num_views, None, result.info)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def in_order(results: Iterable[VideoResult], jobs: list[VideoJob]) -> Iterator[VideoResult]:
    """Re-order results (which engines yield in any order) into the order of ``jobs``."""
    position = {job.key: i for i, job in enumerate(jobs)}
    waiting: dict[int, VideoResult] = {}
    next_index = 0
    for result in results:
        waiting[position[result.job.key]] = result
        while next_index in waiting:
            yield waiting.pop(next_index)
            next_index += 1
    yield from (waiting[i] for i in sorted(waiting))


def open_model(path: str | os.PathLike[str], **options: Any) -> Model:
    """``Model(path, ...)``: ``backend``, ``precision``, ``device``, ``threads``, ``spec``,
    ``labels`` (class names, line i = class i)."""
    return Model(path, **options)


def evaluate(
    video_dir: str | os.PathLike[str],
    ann_file: str | os.PathLike[str],
    model: str | os.PathLike[str] | ModelConfig,
    *,
    output: str | os.PathLike[str] | None = None,
    views: int = 1,
    decoder: str = "auto",
    frame_count: str = "container",
    labels: list[str] | None = None,
    engine: str = "local",
    **engine_options: Any,
) -> dict[str, Any]:
    """Evaluate the videos of ``ann_file`` (``relative/path.mp4 <label>`` lines) and return the
    summary (accuracy, failures, throughput). With ``output`` the per-video results are kept
    in a JSONL file and a rerun resumes it, exactly as ``slowfast-deploy evaluate --output``."""
    from slowfast_deploy.run import EvaluationRun, jobs_from_list

    config = model if isinstance(model, ModelConfig) else ModelConfig(str(model))
    run = EvaluationRun(
        jobs_from_list(video_dir, ann_file),
        model=config,
        output=Path(output) if output is not None else None,
        views=views,
        decode=DecodeOptions(decoder, frame_count),  # type: ignore[arg-type]
        engine=EngineOptions(engine=engine, **engine_options),  # type: ignore[arg-type]
        labels=labels,
    )
    with run:
        for _ in run.records():
            pass
        return run.finish()

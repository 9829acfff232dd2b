"""The Python API: open a model once, then predict videos, build timelines, evaluate a list
or watch live streams with it. Every door takes an ``sd.Model`` (its open backend is reused)
or a model file.

    import slowfast_deploy as sd

    model = sd.open_model("slowfast_int8.xml", threads=2)
    for p in model.predict(["a.mp4", "b.mp4"], views=30, topk=5):
        print(p.video, p.top1, p.topk)           # [(class, name, score), ...]
    timelines = model.timeline(["match.mp4"], window=64, stride=16)
    for t in timelines:                          # VideoTimeline per video, in order
        print(t.video, t.status, len(t.records))
    print(timelines.render("json")[0])           # what `slowfast-deploy timeline` prints
    summary = sd.evaluate("videos/", "val_list.txt", model,
                          output="results.jsonl")  # resumable, as `slowfast-deploy evaluate`
    print(summary.accuracy, summary.num_failed)    # RunSummary; .to_dict() is the JSON
    with model.watch(["rtsp://127.0.0.1:8554/cam"]) as events:
        for event in events:                     # typed events (live.events)
            print(event.to_dict())               # the JSON of `slowfast-deploy watch`
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.engine import open_engine
from slowfast_deploy.engine.base import DecodeOptions, EngineOptions, VideoResult, in_order
from slowfast_deploy.engine.jobs import jobs_from_list, jobs_from_paths
from slowfast_deploy.engine.scoring import top_k
from slowfast_deploy.evaluation.run import EvaluationRun
from slowfast_deploy.evaluation.summary import RunSummary
from slowfast_deploy.labels import names_for, resolve_labels
from slowfast_deploy.live.run import Watch as Watch
from slowfast_deploy.live.run import watch as watch
from slowfast_deploy.live.sources import Source
from slowfast_deploy.runtime import Backend, ModelConfig
from slowfast_deploy.specs import MODEL_SPECS, ClipSpec, view_spec
from slowfast_deploy.timeline.output import SegmentOptions
from slowfast_deploy.timeline.videos import TimelineOptions
from slowfast_deploy.timeline.videos import Timelines as Timelines
from slowfast_deploy.timeline.windows import WindowPlan
from slowfast_deploy.video.decode import Decoder


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

    @classmethod
    def from_scores(
        cls,
        video: str,
        scores: NDArray[np.float32],
        *,
        views: int,
        topk: int = 5,
        labels: Sequence[str] | None = None,
        info: dict[str, Any] | None = None,
    ) -> Prediction:
        """The prediction of one video's averaged scores: the ``topk`` best classes
        (``engine.scoring.top_k``), named when ``labels`` name the model's classes."""
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        names = names_for(labels, len(scores))
        top = [(int(c), names[c] if names else None, float(scores[c])) for c in top_k(scores, topk)]
        return cls(video, top, scores, views, None, dict(info or {}))

    def to_dict(self, *, with_scores: bool = False) -> dict[str, Any]:
        """The JSON of ``predict --format json`` (``with_scores``) and ``--format jsonl``: the
        same keys as evaluate's records, without the node."""
        if not self.ok:
            return {"video": self.video, "status": "failed", "error": self.error, **self.info}
        record: dict[str, Any] = {
            "video": self.video,
            "status": "ok",
            "topk": [
                {"class": c, "score": score, **({"name": name} if name is not None else {})}
                for c, name, score in self.topk
            ],
        }
        if with_scores and self.scores is not None:
            record["scores"] = [float(f"{v:.8g}") for v in self.scores]
        record["views"] = self.views
        record.update({k: v for k, v in self.info.items() if k != "node"})
        return record


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
        **engine_options: Any,
    ) -> Iterator[Prediction]:
        """Predictions in the order of ``videos``; a video that fails yields an error, not a
        raise. ``engine_options`` are ``EngineOptions`` fields (``batchsize``, ``num_workers``,
        ``decode_timeout_s``; for ``engine="ray"``: ``model_actors``, ``ray_address``).

        The local engine reuses the model already open in this process; Ray opens it on its
        actors. Bad values raise ``ValueError`` naming what is allowed, before any decoding.
        """
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        spec = view_spec(views)
        jobs = jobs_from_paths(list(videos))
        options = EngineOptions(engine=engine, **engine_options)  # type: ignore[arg-type]
        decode = DecodeOptions(decoder, frame_count)  # type: ignore[arg-type]
        if options.workers > len(jobs):  # no idle decoder processes for a short list
            options = replace(options, num_workers=max(1, len(jobs)))
        model = self.backend if options.engine == "local" else self.config
        runner = open_engine(model, spec, decode, options)
        try:
            runner.start()
            for result in in_order(runner.run(jobs), jobs):
                yield self._prediction(result, topk)
        finally:
            runner.close()  # the local engine leaves a backend it was given open

    def timeline(
        self,
        videos: Sequence[str | os.PathLike[str]],
        *,
        window: int = 64,
        stride: int = 16,
        start_s: float | None = None,
        end_s: float | None = None,
        batchsize: int = 1,
        decoder: Decoder = "pyav",
        topk: int = 5,
        smooth: int = 1,
        threshold: float = 0.0,
    ) -> Timelines:
        """The timelines of ``videos`` (``timeline.videos.Timelines``), built as they are
        iterated, with this model's open backend: the options of ``slowfast-deploy
        timeline``, the same checks (``ValueError``, before any decoding) and the same
        output (``render("json")``)."""
        clip = ClipSpec(clip_len=MODEL_SPECS[self.config.spec].clip_len)
        options = TimelineOptions(
            WindowPlan(window, stride, clip),
            decoder=decoder,
            start_s=start_s,
            end_s=end_s,
            batchsize=batchsize,
            topk=topk,
            segments=SegmentOptions(smooth, threshold),
        )
        return Timelines(videos, self.backend, options, labels=self.labels)

    def watch(self, sources: Sequence[str | Source], **options: Any) -> Watch:
        """``sd.watch(sources, self, ...)``: live streams with this model's open backend;
        ``options`` are ``live.watch``'s (``sinks``, ``plan``, ``max_batch``, ...)."""
        return watch(sources, self, **options)

    def _prediction(self, result: VideoResult, topk: int) -> Prediction:
        if result.scores is None:
            return Prediction(result.job.path, [], None, 0, result.error, result.info)
        return Prediction.from_scores(
            result.job.path,
            result.scores,
            views=result.num_views,
            topk=topk,
            labels=self.labels,
            info=result.info,
        )

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_model(path: str | os.PathLike[str], **options: Any) -> Model:
    """``Model(path, ...)``: ``backend``, ``precision``, ``device``, ``threads``, ``spec``,
    ``labels`` (class names, line i = class i)."""
    return Model(path, **options)


def timeline(
    videos: Sequence[str | os.PathLike[str]],
    model: Model | str | os.PathLike[str],
    *,
    window: int = 64,
    stride: int = 16,
    start_s: float | None = None,
    end_s: float | None = None,
    batchsize: int = 1,
    decoder: Decoder = "pyav",
    topk: int = 5,
    smooth: int = 1,
    threshold: float = 0.0,
) -> Timelines:
    """``model.timeline(videos, ...)``; a model file is opened here and closed once the
    timelines are built."""
    opened = model if isinstance(model, Model) else Model(model)
    try:
        timelines = opened.timeline(
            videos,
            window=window,
            stride=stride,
            start_s=start_s,
            end_s=end_s,
            batchsize=batchsize,
            decoder=decoder,
            topk=topk,
            smooth=smooth,
            threshold=threshold,
        )
    except BaseException:
        if opened is not model:
            opened.close()
        raise
    timelines.owns_backend = opened is not model
    return timelines


def evaluate(
    video_dir: str | os.PathLike[str],
    ann_file: str | os.PathLike[str],
    model: Model | str | os.PathLike[str] | ModelConfig,
    *,
    output: str | os.PathLike[str] | None = None,
    views: int = 1,
    decoder: str = "auto",
    frame_count: str = "container",
    labels: list[str] | None = None,
    engine: str = "local",
    **engine_options: Any,
) -> RunSummary:
    """Evaluate the videos of ``ann_file`` (``relative/path.mp4 <label>`` lines) and return the
    summary: accuracy, failures, throughput (``.to_dict()`` is ``evaluate --format json``).

    With ``output`` the per-video results are kept in a JSONL file and a rerun resumes it,
    exactly as ``slowfast-deploy evaluate --output``: the same defaults (``EngineOptions``:
    workers per engine, ``RAY_ADDRESS`` for ``engine="ray"``), the same checks. ``model``: an
    ``sd.Model`` (the local engine reuses its open backend; its class names are the default
    ``labels``), a model file or a ``ModelConfig``. ``labels``: class names; default: the
    Kinetics-400 names, shown for a 400-class model.
    """
    backend: Backend | None = None
    if isinstance(model, Model):
        config = model.config
        backend = model.backend if engine == "local" else None  # ray opens it on its actors
        labels = labels if labels is not None else model.labels
    else:
        config = model if isinstance(model, ModelConfig) else ModelConfig(str(model))
    run = EvaluationRun(
        jobs_from_list(video_dir, ann_file),
        model=config,
        output=Path(output) if output is not None else None,
        views=views,
        decode=DecodeOptions(decoder, frame_count),  # type: ignore[arg-type]
        engine=EngineOptions(engine=engine, **engine_options),  # type: ignore[arg-type]
        labels=labels if labels is not None else resolve_labels(None),
        backend=backend,
    )
    with run:
        for _ in run.records():
            pass
        return run.finish()

"""The Python API: open a model, predict videos, evaluate a list, watch live streams.

    import slowfast_deploy as sd

    model = sd.open_model("slowfast_int8.xml", threads=2)
    for p in model.predict(["a.mp4", "b.mp4"], views=30, topk=5):
        print(p.video, p.top1, p.topk)           # ((class, name, score), ...)
    summary = sd.evaluate("videos/", "val_list.txt", "slowfast_int8.xml",
                          output="results.jsonl")  # resumable, as `slowfast-deploy evaluate`
    print(summary.accuracy, summary.num_failed)    # RunSummary; .to_dict() is the JSON
    with sd.watch(["rtsp://127.0.0.1:8554/cam"], "slowfast_int8.xml") as events:
        for event in events:                     # the JSON events of `slowfast-deploy watch`
            print(event)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from slowfast_deploy.engine import open_engine
from slowfast_deploy.engine.base import DecodeOptions, EngineOptions, in_order
from slowfast_deploy.engine.jobs import jobs_from_list, jobs_from_paths
from slowfast_deploy.engine.prediction import Prediction as Prediction
from slowfast_deploy.evaluation.run import EvaluationRun
from slowfast_deploy.evaluation.summary import RunSummary
from slowfast_deploy.labels import resolve_labels
from slowfast_deploy.live.run import Watch as Watch
from slowfast_deploy.live.run import watch as watch
from slowfast_deploy.runtime import Backend, ModelConfig
from slowfast_deploy.specs import view_spec


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
                yield Prediction.from_result(result, topk=topk, labels=self.labels)
        finally:
            runner.close()  # the local engine leaves a backend it was given open

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
) -> RunSummary:
    """Evaluate the videos of ``ann_file`` (``relative/path.mp4 <label>`` lines) and return the
    summary: accuracy, failures, throughput (``.to_dict()`` is ``evaluate --format json``).

    With ``output`` the per-video results are kept in a JSONL file and a rerun resumes it,
    exactly as ``slowfast-deploy evaluate --output``: the same defaults (``EngineOptions``:
    workers per engine, ``RAY_ADDRESS`` for ``engine="ray"``), the same checks. ``labels``:
    class names; default: the Kinetics-400 names, shown for a 400-class model.
    """
    config = model if isinstance(model, ModelConfig) else ModelConfig(str(model))
    run = EvaluationRun(
        jobs_from_list(video_dir, ann_file),
        model=config,
        output=Path(output) if output is not None else None,
        views=views,
        decode=DecodeOptions(decoder, frame_count),  # type: ignore[arg-type]
        engine=EngineOptions(engine=engine, **engine_options),  # type: ignore[arg-type]
        labels=labels if labels is not None else resolve_labels(None),
    )
    with run:
        for _ in run.records():
            pass
        return run.finish()

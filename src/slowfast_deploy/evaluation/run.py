"""A whole evaluation run: jobs -> engine -> results file -> summary.

``EvaluationRun`` owns everything of record, the same for every engine: the lock on the
results file, its run header and resume, one appended line per video as it finishes (in any
order), the final rewrite in list order, and the summary. Memory stays bounded whatever the
list length: records live on disk, the run keeps one status per video, and the summary is
computed in one streaming pass over the final file.

    with EvaluationRun(jobs, model=ModelConfig("m.xml"), output=Path("r.jsonl")) as run:
        for record in run.records():  # this run's records, as they finish
            ...
        summary = run.finish()
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slowfast_deploy._files import write_text_atomic
from slowfast_deploy.engine import open_engine
from slowfast_deploy.engine.base import DecodeOptions, Engine, EngineOptions, VideoJob
from slowfast_deploy.evaluation.results import (
    ResultsFile,
    RunLock,
    VideoRecord,
    model_fingerprint,
    video_record,
)
from slowfast_deploy.evaluation.summary import RunSummary, ThisRun, summarize
from slowfast_deploy.runtime import Backend, ModelConfig
from slowfast_deploy.runtime.benchmark import cpu_name
from slowfast_deploy.specs import view_spec


class EvaluationRun:
    """Evaluate ``jobs`` with ``model``; resumable when ``output`` is given."""

    def __init__(
        self,
        jobs: list[VideoJob],
        *,
        model: ModelConfig,
        output: Path | None = None,
        views: int = 1,
        decode: DecodeOptions | None = None,
        engine: EngineOptions | None = None,
        labels: list[str] | None = None,
        backend: Backend | None = None,
    ) -> None:
        """``backend``: ``model`` already open in this process, reused by the local engine
        (and left open); other engines open ``model`` themselves."""
        view_spec(views)  # raises ValueError naming the choices
        self.jobs, self.model, self.views = jobs, model, views
        self.backend = backend
        self.decode = decode or DecodeOptions()
        self.engine_options = engine or EngineOptions()
        self.labels = labels
        self.output = output
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lock: RunLock | None = None
        self._results: ResultsFile | None = None
        self._engine: Engine | None = None
        self.todo: list[VideoJob] = []
        self.resumed = 0
        self.timing: dict[str, float] = {}
        self._counts = {"ok": 0, "failed": 0}
        self._infer_ms = 0.0

    def run_header(self) -> dict[str, Any]:
        """What must match for a results file to be resumed (engine and workers may differ)."""
        return {
            "model_sha256": model_fingerprint(self.model.path),
            "backend": self.model.backend,
            "precision": self.model.precision,
            "spec": self.model.spec,
            "views": self.views,
            "decoder": self.decode.decoder,
            **({"frame_count": "decoded"} if self.decode.frame_count != "container" else {}),
        }

    def __enter__(self) -> EvaluationRun:
        if self.output is None:  # still a file on disk: memory stays bounded
            self._tmp = tempfile.TemporaryDirectory(prefix="slowfast-run-")
            path = Path(self._tmp.name) / "results.jsonl"
        else:
            path = self.output
            self._lock = RunLock(path)
            self._lock.acquire()
        try:
            self._results = ResultsFile.open(path, self.run_header())
        except BaseException:
            self.close()
            raise
        done = self._results.done_keys()
        self.todo = [job for job in self.jobs if job.key not in done]
        self.resumed = len(self.jobs) - len(self.todo)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._results is not None:
            self._results.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def results_path(self) -> Path:
        assert self._results is not None, "use EvaluationRun in a `with` block"
        return self._results.path

    def records(self) -> Iterator[VideoRecord]:
        """Run the engine over the videos still to do; yield each record once it is on disk."""
        assert self._results is not None, "use EvaluationRun in a `with` block"
        index_of = {job.key: i for i, job in enumerate(self.jobs)}
        t0 = time.perf_counter()
        local = self.backend is not None and self.engine_options.engine == "local"
        self._engine = open_engine(
            self.backend if local else self.model,
            view_spec(self.views),
            self.decode,
            self.engine_options,
        )
        if self.todo:
            self._engine.start()
        t1 = time.perf_counter()
        self.timing.update(startup_s=t1 - t0, run_start=t1)
        seen: set[str] = set()
        first = last = None
        for result in self._engine.run(self.todo) if self.todo else ():
            if result.job.key in seen:  # an engine that retried a finished video
                continue
            seen.add(result.job.key)
            record = video_record(
                result, index=_list_index(result.job.key, index_of), labels=self.labels
            )
            self._results.append(record.to_dict())
            self._counts["ok" if result.error is None else "failed"] += 1
            self._infer_ms += result.infer_ms
            last = time.perf_counter()
            first = first or last
            yield record
        missing = [job for job in self.todo if job.key not in seen]
        if missing:  # never silently smaller: an engine bug, but recorded as such
            for job in missing:
                record = VideoRecord(
                    job.key,
                    index_of[job.key],
                    job.path,
                    job.label,
                    "failed",
                    f"{job.path}: the engine returned no result for it; rerun to retry",
                    info={"reason": "lost"},
                )
                self._results.append(record.to_dict())
                self._counts["failed"] += 1
                yield record
        self.timing.update(
            wall_s=time.perf_counter() - t1,
            first_result_s=(first - t1) if first else 0.0,
            steady_s=(last - first) if first and last else 0.0,
        )

    def finish(self) -> RunSummary:
        """Rewrite the results file in list order and return the summary of the whole list
        (also written beside ``output`` as ``<output>.summary.json``)."""
        if self._results is None or self._engine is None:
            raise RuntimeError("EvaluationRun.finish() after records(), in its `with` block")
        self._results.finalize([(job.key, job.label) for job in self.jobs])
        engine = self._engine
        summary = summarize(self._results.path)
        done_now = self._counts["ok"] + self._counts["failed"]
        wall = self.timing.get("wall_s", 0.0)
        steady = self.timing.get("steady_s", 0.0)
        model_s = self._infer_ms / 1e3
        summary.cpu = cpu_name()
        summary.views = self.views
        summary.model = engine.describe() if self.todo else {}
        summary.engine = engine.name
        summary.this_run = ThisRun(
            videos=done_now,
            resumed=self.resumed,
            startup_s=round(self.timing.get("startup_s", 0.0), 3),
            wall_s=round(wall, 3),
            videos_per_s=round(done_now / wall, 4) if wall else None,
            steady_videos_per_s=round((done_now - 1) / steady, 4)
            if steady and done_now > 1
            else None,
            model_s=round(model_s, 3),
            model_only_videos_per_s=round(self._counts["ok"] / model_s, 4) if model_s else None,
            engine_stats=dict(engine.stats),
        )
        if self.output is not None:
            summary_path = self.output.with_name(self.output.name + ".summary.json")
            write_text_atomic(summary_path, json.dumps(summary.to_dict(), indent=2) + "\n")
        return summary


def _list_index(key: str, index_of: dict[str, int]) -> int:
    head = key.split(":", 1)[0]
    return int(head) if head.isdigit() else index_of[key]

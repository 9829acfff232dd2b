"""Engines: turn ``VideoJob``s into scored ``VideoResult``s, in any order.

One contract beside the backend contract (STYLE 13). An engine owns decoding and the model;
it never touches files of record: ordering, resume, the results file, its lock and the summary
belong to ``run.EvaluationRun`` above it, so the engines cannot drift apart.

| engine  | decoding                                  | model                               |
| ------- | ----------------------------------------- | ----------------------------------- |
| `local` | worker processes (``pool.DecodePool``)     | this process                        |
| `ray`   | Ray Data tasks on any node of the cluster  | an actor pool, model loaded once each |

A fault is data: a crashed or hung decode becomes a ``VideoResult`` with a reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from slowfast_deploy.pipeline import DecodedVideo, DecodeOptions, VideoJob
from slowfast_deploy.runtime import ModelConfig
from slowfast_deploy.specs import ViewSpec
from slowfast_deploy.streaming import VideoResult

EngineName = Literal["local", "ray"]
ENGINES: tuple[EngineName, ...] = ("local", "ray")


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """How a run is executed (not what it computes: results are the same for every engine)."""

    engine: EngineName = "local"
    batchsize: int = 1  # views per model call
    num_workers: int = 1  # decoders (local: processes; ray: decode tasks at a time)
    decode_timeout_s: float | None = 300.0  # a decode making no progress this long is killed
    model_actors: int = 1  # ray: model replicas, each loading the model once
    ray_address: str | None = None  # ray: join this cluster (None: start one in-process)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        for name in ("batchsize", "model_actors"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")


class Engine(Protocol):
    name: str
    # counters for the summary: worker restarts, retried videos, timeouts, passes, ...
    stats: dict[str, Any]

    def start(self) -> None:
        """Open the model (and the cluster): the start-up cost, measured apart."""
        ...

    def decode(self, jobs: Iterable[VideoJob]) -> Iterator[DecodedVideo]:
        """Decoding only (for ``preprocess``): one ``DecodedVideo`` per job, in any order."""
        ...

    def run(self, jobs: Iterable[VideoJob]) -> Iterator[VideoResult]:
        """One result per job, in any order; faults are results with an error."""
        ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        """Backend name, precision, device ... of the model actually opened (after start)."""
        ...


def open_engine(
    model: ModelConfig | None, views: ViewSpec, decode: DecodeOptions, options: EngineOptions
) -> Engine:
    """The engine named by ``options.engine``; Ray is imported only for ``ray``.

    ``model`` None: an engine for ``decode`` only.
    """
    if options.engine == "local":
        from slowfast_deploy.engine.local import LocalEngine

        return LocalEngine(model, views, decode, options)
    from slowfast_deploy.engine.ray_data import RayEngine

    return RayEngine(model, views, decode, options)

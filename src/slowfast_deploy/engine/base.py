"""The engine contract: jobs in, results out, in any order.

One contract beside the backend contract (STYLE 13). An engine owns decoding and the model;
it never touches files of record: ordering, resume, the results file, its lock and the summary
belong to ``evaluation.run.EvaluationRun`` above it, so the engines cannot drift apart.

| engine  | decoding                                  | model                                 |
| ------- | ----------------------------------------- | ------------------------------------- |
| `local` | worker processes (``pool.DecodePool``)     | this process                          |
| `ray`   | Ray Data tasks on any node of the cluster  | an actor pool, model loaded once each |

A fault is data: a crashed or hung decode becomes a ``VideoResult`` with a reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.errors import Reason
from slowfast_deploy.video.decode import DECODERS, FRAME_COUNTS, DecodeFacts, Decoder, FrameCount

EngineName = Literal["local", "ray"]
ENGINES: tuple[EngineName, ...] = ("local", "ray")
# decoders running beside the model when not given: one process locally (the model takes
# the other core of a 2-core machine), two Ray tasks (they are cheap to schedule anywhere)
DEFAULT_WORKERS: dict[EngineName, int] = {"local": 1, "ray": 2}
DEFAULT_DECODE_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class VideoJob:
    key: str  # identifies the video in results (e.g. list index and path)
    path: str
    label: int | None = None


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """How videos are decoded; recorded in run headers, the same for every video of a run."""

    decoder: Decoder = "auto"  # decord (mmaction2-exact) first, PyAV where decord cannot
    # "container": mmaction2's count (decord's len), the exact reference; "decoded": the
    # frames that actually play (edit lists honoured)
    frame_count: FrameCount = "container"

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        if self.frame_count not in FRAME_COUNTS:
            raise ValueError(f"frame_count must be one of {FRAME_COUNTS}, got {self.frame_count!r}")


class VideoFacts(DecodeFacts, total=False):
    """Per-video facts a record carries besides its result (JSON, in this order)."""

    retries: int  # decoder processes that died on it before this result
    node: str  # the machine that decoded it
    model_node: str  # ray: the machine whose model scored it


class ModelFacts(TypedDict, total=False):
    """What an engine opened (``Engine.describe``): the summary's model fields."""

    backend: str
    precision: str
    device: str
    ray_nodes: int  # ray: the nodes alive


@dataclass(frozen=True, slots=True)
class DecodedVideo:
    job: VideoJob
    crops: NDArray[np.uint8] | None  # [V, T, S, S, 3]; None when failed
    error: str | None
    frame_indices: list[int] = field(default_factory=list)
    decode_ms: float = 0.0
    preprocess_ms: float = 0.0
    info: VideoFacts = field(default_factory=VideoFacts)  # for the record: decoder used, ...
    reason: Reason | None = None  # why it failed


@dataclass(frozen=True, slots=True)
class VideoResult:
    job: VideoJob
    scores: NDArray[np.float32] | None  # [classes], softmax averaged over views
    error: str | None
    num_views: int = 0
    decode_ms: float = 0.0
    preprocess_ms: float = 0.0
    infer_ms: float = 0.0  # this video's share of model time
    info: VideoFacts = field(default_factory=VideoFacts)  # decoder used, retries, node, ...
    reason: Reason | None = None  # why it failed


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """How a run is executed (not what it computes: results are the same for every engine).

    Defaults are resolved here, for the CLI and the Python API alike: ``num_workers`` None
    takes ``DEFAULT_WORKERS[engine]``; ``ray_address`` None takes ``$RAY_ADDRESS`` for the
    ray engine (start Ray in-process when that is unset too).
    """

    engine: EngineName = "local"
    batchsize: int = 1  # views per model call
    num_workers: int | None = None  # decoders (local: processes, 0 inline; ray: tasks at a time)
    decode_timeout_s: float | None = DEFAULT_DECODE_TIMEOUT_S  # stall limit; None or 0: never
    model_actors: int = 1  # ray: model replicas, each loading the model once
    ray_address: str | None = None  # ray: join this cluster

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        for name in ("batchsize", "model_actors"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.num_workers is None:
            object.__setattr__(self, "num_workers", DEFAULT_WORKERS[self.engine])
        elif not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(f"num_workers must be an integer >= 0, got {self.num_workers!r}")
        timeout = self.decode_timeout_s
        if timeout is not None and timeout < 0:
            raise ValueError(f"decode_timeout_s must be >= 0 seconds (0: never), got {timeout}")
        if not timeout:
            object.__setattr__(self, "decode_timeout_s", None)
        if self.engine == "ray" and self.ray_address is None:
            object.__setattr__(self, "ray_address", os.environ.get("RAY_ADDRESS") or None)
        if self.engine != "ray":  # RAY_ADDRESS means nothing to the local engine
            object.__setattr__(self, "ray_address", None)

    @property
    def workers(self) -> int:
        """``num_workers``, resolved (never None after construction)."""
        assert self.num_workers is not None
        return self.num_workers


class Engine(Protocol):
    name: str
    # counters for the summary: worker restarts, retried videos, timeouts, passes, ...
    stats: dict[str, int]

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

    def describe(self) -> ModelFacts:
        """Backend name, precision, device ... of the model actually opened (after start)."""
        ...


def in_order(results: Iterable[VideoResult], jobs: list[VideoJob]) -> Iterator[VideoResult]:
    """Re-order results (which engines yield in any order) into the order of ``jobs``,
    holding back only those that arrive early."""
    position = {job.key: i for i, job in enumerate(jobs)}
    waiting: dict[int, VideoResult] = {}
    next_index = 0
    for result in results:
        waiting[position[result.job.key]] = result
        while next_index in waiting:
            yield waiting.pop(next_index)
            next_index += 1
    yield from (waiting[i] for i in sorted(waiting))

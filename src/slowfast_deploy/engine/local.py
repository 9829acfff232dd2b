"""The ``local`` engine: decoding in worker processes, the model in this process."""

from __future__ import annotations

import platform
from collections.abc import Iterable, Iterator

from slowfast_deploy.engine.base import (
    DecodedVideo,
    DecodeOptions,
    EngineOptions,
    ModelFacts,
    VideoJob,
    VideoResult,
)
from slowfast_deploy.engine.decode import decode_inline
from slowfast_deploy.engine.pool import DecodePool
from slowfast_deploy.engine.scoring import check_model_views, prefetch_for, score_stream
from slowfast_deploy.runtime import Backend, ModelConfig
from slowfast_deploy.specs import ViewSpec


class LocalEngine:
    """``DecodePool`` -> ``score_stream``; ``model`` may also be an already opened backend."""

    name = "local"

    def __init__(
        self,
        model: ModelConfig | Backend | None,
        views: ViewSpec,
        decode: DecodeOptions,
        options: EngineOptions,
    ) -> None:
        self.model, self.views, self.options = model, views, options
        self.decode_options = decode
        self.backend: Backend | None = None
        self.stats: dict[str, int] = {}

    def start(self) -> None:
        if self.model is None:
            raise ValueError("this engine was opened for decoding only (no model)")
        if self.backend is None:
            self.backend = self.model.open() if isinstance(self.model, ModelConfig) else self.model
            check_model_views(self.backend, self.views)

    def describe(self) -> ModelFacts:
        self.start()
        assert self.backend is not None
        info = self.backend.info
        return {"backend": info.name, "precision": info.precision, "device": info.device}

    def decode(self, jobs: Iterable[VideoJob]) -> Iterator[DecodedVideo]:
        """Decoding only (``preprocess``): one ``DecodedVideo`` per job, in any order."""
        workers = self.options.workers
        if workers == 0:
            yield from decode_inline(jobs, self.views, self.decode_options)
            return
        with DecodePool(
            self.views,
            self.decode_options,
            num_workers=workers,
            timeout_s=self.options.decode_timeout_s,
        ) as pool:
            self.stats = pool.stats  # live counters
            ahead = prefetch_for(self.options.batchsize, self.views, workers)
            yield from pool.imap(jobs, prefetch=ahead)

    def run(self, jobs: Iterable[VideoJob]) -> Iterator[VideoResult]:
        self.start()
        assert self.backend is not None
        node = platform.node()
        decoded = self.decode(jobs)
        for result in score_stream(
            decoded, self.backend, self.views, batchsize=self.options.batchsize
        ):
            result.info.setdefault("node", node)
            yield result

    def close(self) -> None:
        if self.backend is not None and isinstance(self.model, ModelConfig):
            self.backend.close()
        self.backend = None

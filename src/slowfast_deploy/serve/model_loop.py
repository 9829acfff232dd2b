"""The server's one model thread: requests' clips and served streams' windows from one queue.

Every endpoint's work goes into one ``engine.batching.BatchQueue``: clips of tensor, video and
timeline requests (rows of the model input ``[n, 1, 3, T, H, W]``, first in, first out by
shape, at most ``max_batch`` rows per call, at most ``max_queue`` rows waiting, else
``QueueFull`` and a 429) and the windows of ``/v1/streams`` watches (in turns, within the
latency budget, as ``watch`` batches them). One thread takes the next batch, runs it in one
model call and hands each request its rows of the output, or each watch its windows' scores
(``live.pending.score_routed``): a served stream is batched once, by the rules of ``watch``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.engine.batching import BatchQueue, Clips, Request
from slowfast_deploy.live.pending import SharedQueue, score_routed
from slowfast_deploy.runtime.base import Backend, run_batched

logger = logging.getLogger(__name__)


class ModelLoop:
    """One model-running thread fed by many requests and streams.

    ``on_batch(num_clips, infer_s)`` is called after each model call (metrics).
    ``max_latency_s`` and ``depth``: the served streams' latency budget and the windows each
    may hold waiting (``watch``'s defaults).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        max_batch: int,
        max_wait_ms: float,
        max_queue: int,
        max_latency_s: float = 1.0,
        depth: int = 3,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1:
            raise ValueError(f"max_batch and max_queue must be >= 1, got {max_batch}, {max_queue}")
        self.backend = backend
        self.max_batch = max_batch
        self.queue: SharedQueue = BatchQueue(
            max_batch=max_batch,
            max_wait_s=max_wait_ms / 1e3,
            max_latency_s=max_latency_s,
            depth=depth,
            max_queue=max_queue,
        )
        self.on_batch = on_batch
        self.batches = 0
        self._thread = threading.Thread(target=self._loop, name="serve-model", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        """Request clips waiting for the model."""
        return self.queue.queued

    def submit(self, clips: Clips) -> list[Future[NDArray[np.float32]]]:
        """Queue ``clips``; one future per chunk of at most ``max_batch`` rows, in order (see
        ``BatchQueue.submit``)."""
        return self.queue.submit(clips)

    def run(self, clips: Clips, timeout_s: float | None = None) -> NDArray[np.float32]:
        """``submit`` and wait (for threads, e.g. a timeline's backend)."""
        futures = self.submit(clips)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            return np.concatenate(
                [
                    f.result(None if deadline is None else max(0.0, deadline - time.monotonic()))
                    for f in futures
                ]
            )
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    def _loop(self) -> None:
        while True:
            take = self.queue.take(None)
            if not take:
                if self.queue.closed:
                    return
                continue
            if take.requests:
                self._run_requests(take.requests)
            if take.before or take.batch or take.after:  # streams' windows and notices
                seconds = score_routed(take, self.backend)
                if take.batch and seconds:
                    self._observed(len(take.batch), seconds)

    def _observed(self, rows: int, seconds: float) -> None:
        self.batches += 1
        self.queue.observe(seconds, rows)
        if self.on_batch is not None:
            self.on_batch(rows, seconds)

    def _run_requests(self, taken: list[Request]) -> None:
        live = [r for r in taken if r.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            inputs = [r.clips.make() for r in live]
            batch = inputs[0] if len(inputs) == 1 else np.concatenate(inputs)
            t0 = time.perf_counter()
            output = run_batched(self.backend, batch)
            infer_s = time.perf_counter() - t0
        except BaseException as err:  # a bad batch fails its requests, not the server
            logger.exception("model call failed")
            for r in live:
                r.future.set_exception(err)
            return
        self._observed(int(batch.shape[0]), infer_s)
        per_row = output.shape[0] // batch.shape[0]  # views per row (1 in the contract)
        start = 0
        for r in live:
            rows = r.clips.count * per_row
            r.future.set_result(output[start : start + rows])
            start += rows

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        self.queue.close()
        self._thread.join()

"""Dynamic batching: clips from concurrent requests go to the model together.

Requests hand in clips (rows of the model input ``[n, 1, 3, T, H, W]``); one thread runs the
model. It takes the oldest waiting request and waits up to ``max_wait_ms`` (from that
request's arrival) for more, until ``max_batch`` clips are there, then runs them in one model
call and hands each request its rows of the output (Triton's dynamic batcher: a max batch
size and a max queue delay). A request larger than ``max_batch`` is cut into chunks of at most
``max_batch`` clips, so no model call is larger than ``max_batch``.

The queue is bounded: ``max_queue`` clips may wait; past that ``submit`` raises
``QueueFull`` at once (the server answers 429), never queueing without bound. Inputs are made
when their batch runs (``Clips.make``), so 30 views of a video waiting in the queue are held
as uint8 crops, not as float32 model input.

Rows of different shapes (a dynamic-size model fed 224 and 256 crops) never share a batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.runtime.base import Backend, run_batched

logger = logging.getLogger(__name__)


class QueueFull(Exception):
    """More clips are waiting than ``max_queue`` allows."""


class BatcherClosed(Exception):
    """The batcher is shutting down and takes no new work."""


@dataclass(frozen=True, slots=True)
class Clips:
    """``count`` rows of model input of shape ``[count, *row_shape]``, made by ``make`` when
    their batch runs."""

    count: int
    row_shape: tuple[int, ...]
    make: Callable[[], NDArray[Any]]

    @classmethod
    def of(cls, array: NDArray[Any]) -> Clips:
        return cls(int(array.shape[0]), tuple(array.shape[1:]), lambda: array)

    def split(self, size: int) -> list[Clips]:
        """Chunks of at most ``size`` rows (each makes the whole input once, then slices)."""
        if self.count <= size:
            return [self]
        cache: list[NDArray[Any]] = []
        lock = threading.Lock()

        def whole() -> NDArray[Any]:
            with lock:
                if not cache:
                    cache.append(self.make())
                return cache[0]

        def part(start: int) -> Callable[[], NDArray[Any]]:
            return lambda: whole()[start : start + size]

        return [
            Clips(min(size, self.count - s), self.row_shape, part(s))
            for s in range(0, self.count, size)
        ]


@dataclass(slots=True)
class _Item:
    clips: Clips
    future: Future[NDArray[np.float32]]
    arrived: float = field(default_factory=time.monotonic)


class DynamicBatcher:
    """One model-running thread fed by many requests.

    ``on_batch(num_clips, infer_s)`` is called after each model call (metrics).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        max_batch: int,
        max_wait_ms: float,
        max_queue: int,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1:
            raise ValueError(f"max_batch and max_queue must be >= 1, got {max_batch}, {max_queue}")
        self.backend = backend
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_ms / 1e3, max_queue
        self.on_batch = on_batch
        self._items: deque[_Item] = deque()
        self._queued = 0  # clips waiting (not yet taken by the model thread)
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="serve-batcher", daemon=True)
        self.batches = 0
        self._thread.start()

    @property
    def queued(self) -> int:
        """Clips waiting for the model."""
        return self._queued

    def submit(self, clips: Clips) -> list[Future[NDArray[np.float32]]]:
        """Queue ``clips``; one future per chunk of at most ``max_batch`` rows, in order, each
        resolving to that chunk's rows of the model output. Raises ``QueueFull`` when the
        queue cannot take them (an empty queue takes any request)."""
        chunks = clips.split(self.max_batch)
        with self._cond:
            if self._closing:
                raise BatcherClosed("the server is shutting down")
            if self._queued and self._queued + clips.count > self.max_queue:
                raise QueueFull(
                    f"{self._queued} clips are waiting for the model (--max-queue "
                    f"{self.max_queue}); retry later"
                )
            items = [_Item(chunk, Future()) for chunk in chunks]
            self._items.extend(items)
            self._queued += clips.count
            self._cond.notify()
        return [item.future for item in items]

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

    def _take(self) -> list[_Item] | None:
        """Wait for the next batch: the oldest item, plus what fits within the wait."""
        with self._cond:
            while not self._items:
                if self._closing:
                    return None
                self._cond.wait()
            first = self._items[0]
            while not self._closing:
                waiting = sum(
                    i.clips.count for i in self._items if i.clips.row_shape == first.clips.row_shape
                )
                left = first.arrived + self.max_wait_s - time.monotonic()
                if waiting >= self.max_batch or left <= 0:
                    break
                self._cond.wait(left)
            taken: list[_Item] = []
            total = 0
            for item in list(self._items):
                if item.clips.row_shape != first.clips.row_shape:
                    continue
                if taken and total + item.clips.count > self.max_batch:
                    break
                self._items.remove(item)
                taken.append(item)
                total += item.clips.count
            self._queued -= total
            return taken

    def _loop(self) -> None:
        while (taken := self._take()) is not None:
            live = [item for item in taken if item.future.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                inputs = [item.clips.make() for item in live]
                batch = inputs[0] if len(inputs) == 1 else np.concatenate(inputs)
                t0 = time.perf_counter()
                output = run_batched(self.backend, batch)
                infer_s = time.perf_counter() - t0
            except BaseException as err:  # a bad batch fails its requests, not the server
                logger.exception("model call failed")
                for item in live:
                    item.future.set_exception(err)
                continue
            self.batches += 1
            if self.on_batch is not None:
                self.on_batch(batch.shape[0], infer_s)
            per_row = output.shape[0] // batch.shape[0]  # views per row (1 in the contract)
            start = 0
            for item in live:
                rows = item.clips.count * per_row
                item.future.set_result(output[start : start + rows])
                start += rows

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

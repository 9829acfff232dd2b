"""The decode pool shared by every request: one ``DecodePool`` per protocol (1 and 30 views).

Requests hand in a file and get a future of its ``DecodedVideo``. A thread per pool feeds it
(``DecodePool.imap`` over a queue that requests refill), so decoding runs in worker processes
and a decoder that crashes or hangs fails that request alone (``decoder_died``,
``decode_timeout``), as in a long run. At most ``max_pending`` videos wait for a decoder;
past that ``submit`` raises ``QueueFull``.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from concurrent.futures import Future
from typing import Any

from slowfast_deploy.engine.base import DecodedVideo, DecodeOptions, VideoJob
from slowfast_deploy.engine.batching import BatcherClosed, QueueFull
from slowfast_deploy.engine.pool import DecodePool
from slowfast_deploy.specs import VIEWS, ViewSpec

logger = logging.getLogger(__name__)


class _Refill:
    """An iterator over a deque that others refill: empty now is not empty for good, so the
    pool's ``imap`` asks again while it still has videos in flight."""

    def __init__(self, jobs: deque[VideoJob], lock: threading.Lock) -> None:
        self._jobs, self._lock = jobs, lock

    def __iter__(self) -> _Refill:
        return self

    def __next__(self) -> VideoJob:
        with self._lock:
            if not self._jobs:
                raise StopIteration
            return self._jobs.popleft()


class _PoolFeeder:
    def __init__(
        self, views: ViewSpec, decode: DecodeOptions, num_workers: int, timeout_s: float | None
    ) -> None:
        self.pool = DecodePool(views, decode, num_workers=num_workers, timeout_s=timeout_s)
        self.jobs: deque[VideoJob] = deque()
        self.futures: dict[str, Future[DecodedVideo]] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.closing = False
        self.thread = threading.Thread(
            target=self._loop, name=f"serve-decode-{views.num_views}", daemon=True
        )

    def _loop(self) -> None:
        with self.pool:
            while True:
                self.wake.wait()
                self.wake.clear()
                if self.closing and not self.jobs:
                    return
                try:
                    for decoded in self.pool.imap(_Refill(self.jobs, self.lock)):
                        with self.lock:
                            future = self.futures.pop(decoded.job.key, None)
                        if future is not None and future.set_running_or_notify_cancel():
                            future.set_result(decoded)
                except Exception as err:  # the pool itself failed: fail what it held
                    logger.exception("decode pool failed")
                    with self.lock:
                        pending, self.futures = self.futures, {}
                        self.jobs.clear()
                    for future in pending.values():
                        if future.set_running_or_notify_cancel():
                            future.set_exception(err)
                if self.jobs:
                    self.wake.set()


class DecodeService:
    """Decoder processes for requests' videos (``views``: 1 or 30 per video)."""

    def __init__(
        self,
        decode: DecodeOptions,
        *,
        num_workers: int,
        timeout_s: float | None,
        max_pending: int,
    ) -> None:
        self.max_pending = max_pending
        self._feeders = {
            num: _PoolFeeder(spec, decode, num_workers, timeout_s) for num, spec in VIEWS.items()
        }
        self._keys = itertools.count()
        self._closed = False

    def start(self) -> None:
        for feeder in self._feeders.values():
            feeder.thread.start()

    @property
    def pending(self) -> int:
        """Videos handed in and not decoded yet."""
        return sum(len(f.futures) for f in self._feeders.values())

    @property
    def stats(self) -> dict[str, Any]:
        total: dict[str, int] = {}
        for feeder in self._feeders.values():
            for key, value in feeder.pool.stats.items():
                total[key] = total.get(key, 0) + value
        return total

    def submit(self, path: str, views: int) -> Future[DecodedVideo]:
        """Decode ``path`` with the ``views`` protocol; the future resolves to its
        ``DecodedVideo`` (a failure is a result with its ``reason``, never raised)."""
        if self._closed:
            raise BatcherClosed("the server is shutting down")
        if self.pending >= self.max_pending:
            raise QueueFull(
                f"{self.pending} videos are waiting for a decoder (--max-queue "
                f"{self.max_pending}); retry later"
            )
        feeder = self._feeders[views]
        key = f"req{next(self._keys)}"
        future: Future[DecodedVideo] = Future()
        with feeder.lock:
            feeder.futures[key] = future
            feeder.jobs.append(VideoJob(key, path))
        feeder.wake.set()
        return future

    def cancel(self, future: Future[DecodedVideo]) -> None:
        """Give up on a video (its request timed out): dropped if not handed to a decoder."""
        future.cancel()
        for feeder in self._feeders.values():
            with feeder.lock:
                for key, f in list(feeder.futures.items()):
                    if f is future:
                        del feeder.futures[key]
                        kept = [j for j in feeder.jobs if j.key != key]
                        feeder.jobs.clear()
                        feeder.jobs.extend(kept)

    def close(self) -> None:
        self._closed = True
        for feeder in self._feeders.values():
            feeder.closing = True
            feeder.wake.set()
        for feeder in self._feeders.values():
            if feeder.thread.is_alive():
                feeder.thread.join()

"""One batching queue for one model, with two policies: requests first in, first out by
shape; streams in turns, kept within a latency budget by dropping.

Producers put work in; the thread that runs the model ``take``s batches::

    requests ──submit──> [c c c c]  (FIFO, rows by shape)  ─┐
    stream a ──put────> [w w N w]                           ├─ take ──> one model call
    stream b ──put────> [N w]       (per-stream turns)     ─┘

A batch holds either requests' rows or streams' windows. When both are due, the lane served
least recently goes first (the requests count as one lane; ties to the oldest work), so
neither starves the other. The queue knows only items, their source, their shape and when
they arrived: the caller's types ride in it (``live`` puts windows and notices, ``serve``
request rows and the windows of its streams).

**Requests** (Triton's dynamic batcher: a max batch size and a max queue delay). A batch is
due when ``max_batch`` rows of the oldest request's shape wait, or when that request has
waited ``max_wait_s``; it takes the waiting requests of that shape in order while they fit in
``max_batch`` rows. Rows of different shapes (a dynamic-size model fed 224 and 256 crops)
never share a batch. A request larger than ``max_batch`` is cut into chunks of at most
``max_batch`` rows, so no model call is larger. The queue is bounded: ``max_queue`` rows may
wait; past that ``submit`` raises ``QueueFull`` at once (an empty queue takes any request),
never queueing without bound. Inputs are made when their batch runs (``Clips.make``), so 30
views of a video waiting are held as uint8 crops, not as float32 model input.

**Streams** (``live``'s rules). Each stream's windows and state notices wait in their own
queue, in order. ``put`` never blocks, so a slow model never stalls a decoder (a live socket
would buffer, and lag would pile up as in mmaction2's webcam demo). Latency stays bounded by
dropping whole windows, oldest first, counted per stream:

- a window whose age (now - arrival of its last frame) plus the expected model time of one
  window exceeds ``max_latency_s`` is dropped, unless it is its stream's newest window (so a
  model slower than the budget still scores every stream's latest window: nothing starves);
- a stream holding ``depth`` windows drops its oldest on the next ``put`` (memory bound);
- a batch holds no more windows than the model is expected to score before the oldest one's
  budget runs out (at least one): on a CPU, where batching gains little, a full batch would
  only add latency; where a window costs little (a GPU), batches fill up to ``max_batch``.
  A batch is due when that many windows wait, or when the oldest has waited ``max_wait_s``.

The drop rules act per stream on its oldest windows, and batches take the streams in turn
(the least recently served stream first, ties to the oldest window; each stream's oldest
window), so the streams share the model fairly: oldest-first across streams alone would let a
stream whose windows arrive a millisecond earlier take every turn while the others' queues
overflow. A ``lossless`` stream (a file read as fast as it decodes: nothing is live, nothing
is lost by waiting) drops nothing: its ``put`` waits for room instead. A stream being
``flush``ed (its source has ended) drops nothing more and is due at once. Notices (stream
lost, restored, ...) are never dropped and keep their place: a notice comes out after the
windows that were put before it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

W = TypeVar("W")  # a stream's window, as its producer made it
N = TypeVar("N")  # a stream's notice


class QueueFull(Exception):
    """More rows are waiting than ``max_queue`` allows."""


class BatcherClosed(Exception):
    """The queue is shutting down and takes no new requests."""


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


@dataclass(slots=True, eq=False)
class Request:
    """Rows of one request (or one chunk of it) and the future of its model output."""

    clips: Clips
    future: Future[NDArray[np.float32]]
    arrived: float = field(default_factory=time.monotonic)


@dataclass(slots=True, eq=False)
class _Window(Generic[W]):
    item: W
    arrival: float  # time.monotonic() when its last frame arrived (ages are measured with it)


@dataclass(slots=True, eq=False)
class _Notice(Generic[N]):
    item: N


@dataclass(slots=True, eq=False)
class _Lane(Generic[W, N]):
    """One stream's queue: windows and notices in the order they were put."""

    lossless: bool = False
    flushing: bool = False
    items: deque[_Window[W] | _Notice[N]] = field(default_factory=deque)
    windows: int = 0  # windows (not notices) in ``items``
    dropped: int = 0  # windows dropped since the stream was added
    last_served: int = -1  # the serial of its last turn

    def head_window(self) -> _Window[W] | None:
        head = self.items[0] if self.items else None
        return head if isinstance(head, _Window) else None

    def pop_window(self) -> W:
        head = self.items.popleft()
        if not isinstance(head, _Window):
            raise RuntimeError("pop_window: the head of the stream's queue is a notice")
        self.windows -= 1
        return head.item

    def pop_notices(self) -> list[N]:
        """The notices at the head of the queue (up to its first window)."""
        notices: list[N] = []
        while self.items and isinstance(head := self.items[0], _Notice):
            self.items.popleft()
            notices.append(head.item)
        return notices

    def drop_first_window(self) -> None:
        for i, entry in enumerate(self.items):
            if isinstance(entry, _Window):
                del self.items[i]
                self.windows -= 1
                self.dropped += 1
                return


@dataclass(slots=True)
class Take(Generic[W, N]):
    """What the model loop handles next, in this order: notices, then either a batch of
    stream windows or requests' rows, then the notices that reached a head after the batch."""

    before: list[N] = field(default_factory=list)
    batch: list[W] = field(default_factory=list)
    after: list[N] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.before or self.batch or self.after or self.requests)


class BatchQueue(Generic[W, N]):
    """Requests' rows and streams' windows for one model (see the module doc)."""

    def __init__(
        self,
        *,
        max_batch: int,
        max_wait_s: float,
        max_latency_s: float = 1.0,
        depth: int = 3,
        max_queue: int | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_s * 1e3:g}")
        if not max_latency_s > 0:
            raise ValueError(f"max_latency_s must be > 0 seconds, got {max_latency_s}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1 window, got {depth}")
        if max_queue is not None and max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_latency_s = max_latency_s
        self.depth = depth
        self.max_queue = max_queue
        self._cond = threading.Condition()
        self._closed = False
        self._woken = False
        self._serial = 0
        self._window_s = 0.0  # expected model seconds per window (moving average)
        self._lanes: dict[Hashable, _Lane[W, N]] = {}
        self._requests: deque[Request] = deque()
        self._queued = 0  # request rows waiting
        self._requests_served = -1  # the requests lane's last turn

    # --- streams --------------------------------------------------------------------------

    def add_stream(self, key: Hashable, *, lossless: bool = False) -> None:
        """A new stream; ``lossless``: its ``put`` waits for room instead of dropping."""
        with self._cond:
            if key in self._lanes:
                raise ValueError(f"stream {key!r} is already in the queue")
            self._lanes[key] = _Lane(lossless=lossless)

    def remove_stream(self, key: Hashable) -> None:
        """Forget a stream and what it still holds (its watch has stopped)."""
        with self._cond:
            self._lanes.pop(key, None)
            self._cond.notify_all()

    def flush(self, key: Hashable) -> None:
        """The stream's source has ended: what it holds is scored without waiting or
        dropping."""
        with self._cond:
            lane = self._lanes.get(key)
            if lane is not None:
                lane.flushing = True
                self._cond.notify_all()

    def put(self, key: Hashable, window: W, arrival: float) -> None:
        """Queue a window of stream ``key`` whose last frame arrived at ``arrival``
        (``time.monotonic()``); never blocks (a full queue drops its oldest window), except
        on a lossless stream, whose windows wait for room (until ``close``)."""
        with self._cond:
            lane = self._lanes.get(key)
            if lane is None:  # removed: its watch has stopped
                return
            if lane.lossless:
                while lane.windows >= self.depth and not self._closed and key in self._lanes:
                    self._cond.wait(0.1)
            elif lane.windows >= self.depth:
                lane.drop_first_window()
            lane.windows += 1
            lane.items.append(_Window(window, arrival))
            self._cond.notify_all()

    def put_notice(self, key: Hashable, notice: N) -> None:
        """Queue a notice of stream ``key``, in order with its windows; never dropped."""
        with self._cond:
            lane = self._lanes.get(key)
            if lane is not None:
                lane.items.append(_Notice(notice))
                self._cond.notify_all()

    def dropped(self, key: Hashable) -> int:
        """Windows of stream ``key`` dropped since it was added."""
        with self._cond:
            lane = self._lanes.get(key)
            return 0 if lane is None else lane.dropped

    def observe(self, seconds: float, windows: int) -> None:
        """A model call scored ``windows`` windows (rows) in ``seconds``: the expectation used
        by the latency rules."""
        per_window = seconds / max(1, windows)
        with self._cond:
            old = self._window_s
            self._window_s = per_window if old == 0 else 0.7 * old + 0.3 * per_window

    def pending(self, keys: Iterable[Hashable] | None = None) -> int:
        """Windows and notices waiting in streams ``keys`` (default: all)."""
        with self._cond:
            lanes = self._lanes.values() if keys is None else [self._lanes.get(k) for k in keys]
            return sum(len(lane.items) for lane in lanes if lane is not None)

    # --- requests -------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Request rows waiting for the model."""
        return self._queued

    def submit(self, clips: Clips) -> list[Future[NDArray[np.float32]]]:
        """Queue ``clips``; one future per chunk of at most ``max_batch`` rows, in order, each
        resolving to that chunk's rows of the model output. Raises ``QueueFull`` when the
        queue cannot take them (an empty queue takes any request)."""
        chunks = clips.split(self.max_batch)
        with self._cond:
            if self._closed:
                raise BatcherClosed("the server is shutting down")
            limit = self.max_queue
            if limit is not None and self._queued and self._queued + clips.count > limit:
                raise QueueFull(
                    f"{self._queued} clips are waiting for the model (--max-queue "
                    f"{limit}); retry later"
                )
            requests = [Request(chunk, Future()) for chunk in chunks]
            self._requests.extend(requests)
            self._queued += clips.count
            self._cond.notify_all()
        return [r.future for r in requests]

    # --- the model loop -------------------------------------------------------------------

    def wake(self) -> None:
        """Make a waiting ``take`` return now (a stream ended, or the watch is stopping)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def close(self) -> None:
        """No new requests; waiting producers return; what is queued is due at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def take(self, timeout_s: float | None) -> Take[W, N]:
        """Wait up to ``timeout_s`` (None: until something comes, or ``close``) for a batch
        or notices; empty if neither came."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while True:
                now = time.monotonic()
                self._drop_stale(now)
                take: Take[W, N] = Take(before=self._head_notices())
                oldest = self._oldest_arrival()
                limit = self._batch_limit(now, oldest)
                streams = self._streams_due(now, oldest, limit)
                requests = self._requests_due(now)
                if streams and requests:  # the lane served least recently goes first
                    stream_turn = min(
                        (lane.last_served, head.arrival)
                        for lane in self._lanes.values()
                        if (head := lane.head_window()) is not None
                    )
                    if (self._requests_served, self._requests[0].arrived) < stream_turn:
                        streams = False
                if streams:
                    take.batch, take.after = self._pop_windows(limit)
                    self._cond.notify_all()  # room for lossless producers
                elif requests:
                    take.requests = self._pop_requests()
                expired = deadline is not None and now >= deadline
                if take or expired or self._woken or (self._closed and self._idle()):
                    self._woken = False
                    return take
                self._cond.wait(self._wait_s(now, oldest, deadline))

    def drain(self) -> list[Take[W, N]]:
        """Every stream's windows and notices left, in order, with no waiting and no dropping
        (the streams have ended)."""
        takes: list[Take[W, N]] = []
        with self._cond:
            while any(lane.items for lane in self._lanes.values()):
                take: Take[W, N] = Take(before=self._head_notices())
                take.batch, take.after = self._pop_windows(self.max_batch)
                takes.append(take)
        return takes

    # --- inside the lock ------------------------------------------------------------------

    def _idle(self) -> bool:
        return not self._requests and not any(lane.items for lane in self._lanes.values())

    def _wait_s(self, now: float, oldest: float | None, deadline: float | None) -> float | None:
        """How long to sleep before the next batch can be due (None: until notified)."""
        times = [t for t in (deadline,) if t is not None]
        if oldest is not None:
            times.append(oldest + self.max_wait_s)
        if self._requests:
            times.append(self._requests[0].arrived + self.max_wait_s)
        return max(0.0, min(times) - now) if times else None

    def _drop_stale(self, now: float) -> None:
        budget = self.max_latency_s - self._window_s
        for lane in self._lanes.values():
            while lane.windows > 1 and not lane.lossless and not lane.flushing:
                first = next(e for e in lane.items if isinstance(e, _Window))
                if now - first.arrival <= budget:
                    break
                lane.drop_first_window()

    def _head_notices(self) -> list[N]:
        notices: list[N] = []
        for lane in self._lanes.values():
            notices += lane.pop_notices()
        return notices

    def _oldest_arrival(self) -> float | None:
        heads = [h.arrival for lane in self._lanes.values() if (h := lane.head_window())]
        return min(heads) if heads else None

    def _batch_limit(self, now: float, oldest: float | None) -> int:
        """Windows the next batch may hold: ``max_batch``, or fewer when the model is not
        expected to score that many before the oldest window's budget runs out."""
        if oldest is None:
            return self.max_batch
        if self._window_s <= 0:  # the model's speed is not known yet: one window
            return 1
        left = self.max_latency_s - (now - oldest)
        return max(1, min(self.max_batch, int(left / self._window_s)))

    def _streams_due(self, now: float, oldest: float | None, limit: int) -> bool:
        if oldest is None:
            return False
        waiting = sum(lane.windows for lane in self._lanes.values())
        flushing = any(lane.flushing and lane.windows for lane in self._lanes.values())
        return waiting >= limit or now - oldest >= self.max_wait_s or flushing or self._closed

    def _pop_windows(self, limit: int) -> tuple[list[W], list[N]]:
        """Up to ``limit`` windows, the streams in turn (least recently served first, then
        the oldest head), each its oldest window; the notices that then reach a head come
        after the batch (and end that stream's share of it)."""
        batch: list[W] = []
        after: list[N] = []
        blocked: set[Hashable] = set()  # lanes whose head is now a notice delivered after
        while len(batch) < limit:
            heads = [
                (lane.last_served, head.arrival, n, key)
                for n, (key, lane) in enumerate(self._lanes.items())
                if key not in blocked and (head := lane.head_window()) is not None
            ]
            if not heads:
                break
            *_, key = min(heads)
            lane = self._lanes[key]
            self._serial += 1
            lane.last_served = self._serial
            batch.append(lane.pop_window())
            notices = lane.pop_notices()
            if notices:
                blocked.add(key)
                after += notices
        return batch, after

    def _requests_due(self, now: float) -> bool:
        if not self._requests:
            return False
        first = self._requests[0]
        shape = first.clips.row_shape
        waiting = sum(r.clips.count for r in self._requests if r.clips.row_shape == shape)
        return waiting >= self.max_batch or now - first.arrived >= self.max_wait_s or self._closed

    def _pop_requests(self) -> list[Request]:
        """The oldest request and those of its shape after it, in order, while they fit."""
        shape = self._requests[0].clips.row_shape
        taken: list[Request] = []
        total = 0
        for request in list(self._requests):
            if request.clips.row_shape != shape:
                continue
            if taken and total + request.clips.count > self.max_batch:
                break
            self._requests.remove(request)
            taken.append(request)
            total += request.clips.count
        self._queued -= total
        self._serial += 1
        self._requests_served = self._serial
        return taken

"""Windows of all streams -> batches for one model, with latency kept bounded by dropping.

Each stream thread ``put``s its windows and its state notices into its own queue, in order;
the model loop ``take``s batches::

    stream 0 ──put──> [w w N w] ─┐
    stream 1 ──put──> [w]        ├─ take: streams in turn, each its oldest window ──> model
    stream 2 ──put──> [N w w]   ─┘        (a batch is due when full, or when its oldest
                                           window has waited max_wait_s)

``put`` never blocks, so a slow model never stalls a decoder (a live socket would buffer,
and lag would pile up as in mmaction2's webcam demo). Latency stays bounded by dropping whole
windows, oldest first, counted per stream:

- a window whose age (now - arrival of its last frame) plus the expected model time of one
  window exceeds ``max_latency_s`` is dropped, unless it is its stream's newest window (so a
  model slower than the budget still scores every stream's latest window: nothing starves);
- a stream holding ``depth`` windows drops its oldest on the next ``put`` (memory bound);
- a batch holds no more windows than the model is expected to score before the oldest one's
  budget runs out (at least one): on a CPU, where batching gains little, a full batch would
  only add latency; where a window costs little (a GPU), batches fill up to ``max_batch``.

The drop rules act per stream on its oldest windows, and batches take the streams in turn
(the least recently served stream first, ties to the oldest window; each stream's oldest
window), so the streams share the model fairly: oldest-first across streams alone would let a
stream whose windows arrive a millisecond earlier take every turn while the others' queues
overflow. A ``lossless`` stream (a file read as fast as
it decodes: nothing is live, nothing is lost by waiting) drops nothing: its ``put`` waits
for room instead. Notices (stream lost, restored, ...) are never
dropped and keep their place: a notice comes out after the windows that were put before it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from slowfast_deploy.live.events import StreamEvent
from slowfast_deploy.timeline.windows import WindowClip


@dataclass(frozen=True, slots=True, eq=False)
class PendingWindow:
    """A window waiting for the model: its input and when its last frame arrived."""

    stream: int  # the stream's position in the watch's sources
    connection: int  # 0 for the first opening of the stream, +1 per reconnect
    clip: WindowClip
    arrival_wall: float  # time.time() when the window's last frame was decoded
    arrival_mono: float  # time.monotonic() at the same moment (ages are measured with it)


@dataclass(frozen=True, slots=True)
class Notice:
    """A stream state change, delivered in order with the stream's windows."""

    stream: int
    event: StreamEvent


@dataclass(slots=True)
class Take:
    """What the model loop handles next, in this order."""

    before: list[Notice] = field(default_factory=list)
    batch: list[PendingWindow] = field(default_factory=list)
    after: list[Notice] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.before or self.batch or self.after)


class Batcher:
    """Per-stream queues of windows and notices, batched oldest-first (see the module doc)."""

    def __init__(
        self,
        num_streams: int,
        *,
        max_batch: int,
        max_wait_s: float,
        max_latency_s: float,
        depth: int = 3,
        lossless: frozenset[int] = frozenset(),
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_s * 1e3:g}")
        if not max_latency_s > 0:
            raise ValueError(f"max_latency_s must be > 0 seconds, got {max_latency_s}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1 window, got {depth}")
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_latency_s = max_latency_s
        self.depth = depth
        self.lossless = lossless  # streams whose put waits for room instead of dropping
        self._closed = False
        self.dropped = [0] * num_streams  # windows dropped, per stream, since the start
        self._queues: list[deque[PendingWindow | Notice]] = [deque() for _ in range(num_streams)]
        self._windows = [0] * num_streams  # windows (not notices) in each queue
        self._last_served = [-1] * num_streams  # the serial of each stream's last turn
        self._serial = 0
        self._cond = threading.Condition()
        self._window_s = 0.0  # expected model seconds per window (moving average)
        self._woken = False

    # --- producers (stream threads) ---------------------------------------------------------

    def put(self, item: PendingWindow | Notice) -> None:
        """Queue a window or notice; never blocks (a full queue drops its oldest window),
        except on a lossless stream, whose windows wait for room (until ``close``)."""
        with self._cond:
            queue = self._queues[item.stream]
            if isinstance(item, PendingWindow):
                if item.stream in self.lossless:
                    while self._windows[item.stream] >= self.depth and not self._closed:
                        self._cond.wait(0.1)
                elif self._windows[item.stream] >= self.depth:
                    self._drop_oldest(item.stream)
                self._windows[item.stream] += 1
            queue.append(item)
            self._cond.notify_all()

    def close(self) -> None:
        """Waiting producers return (the watch is stopping)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wake(self) -> None:
        """Make a waiting ``take`` return now (a stream ended, or the watch is stopping)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    # --- the model loop -------------------------------------------------------------------

    def observe(self, seconds: float, windows: int) -> None:
        """A model call scored ``windows`` windows in ``seconds``: the expectation used by the
        latency rules."""
        per_window = seconds / max(1, windows)
        with self._cond:
            old = self._window_s
            self._window_s = per_window if old == 0 else 0.7 * old + 0.3 * per_window

    def pending(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._queues)

    def take(self, timeout_s: float) -> Take:
        """Wait up to ``timeout_s`` for a batch or notices; empty if neither came."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                now = time.monotonic()
                self._drop_stale(now)
                take = Take(before=self._head_notices())
                oldest = self._oldest_arrival()
                limit = self._batch_limit(now, oldest)
                waiting = sum(self._windows)
                due = waiting >= limit or (oldest is not None and now - oldest >= self.max_wait_s)
                if due:
                    take.batch, take.after = self._pop_batch(limit)
                    self._cond.notify_all()  # room for lossless producers
                if take or now >= deadline or self._woken:
                    self._woken = False
                    return take
                wake_at = deadline if oldest is None else min(deadline, oldest + self.max_wait_s)
                self._cond.wait(max(0.0, wake_at - now))

    def drain(self) -> list[Take]:
        """Everything left, in order, with no waiting and no dropping (the watch is ending)."""
        takes = []
        with self._cond:
            while any(self._queues):
                take = Take(before=self._head_notices())
                take.batch, take.after = self._pop_batch(self.max_batch)
                takes.append(take)
        return takes

    # --- inside the lock ------------------------------------------------------------------

    def _drop_oldest(self, stream: int) -> None:
        queue = self._queues[stream]
        for i, item in enumerate(queue):
            if isinstance(item, PendingWindow):
                del queue[i]
                self._windows[stream] -= 1
                self.dropped[stream] += 1
                return

    def _drop_stale(self, now: float) -> None:
        budget = self.max_latency_s - self._window_s
        for stream, queue in enumerate(self._queues):
            while self._windows[stream] > 1 and stream not in self.lossless:
                first = next(i for i, item in enumerate(queue) if isinstance(item, PendingWindow))
                item = queue[first]
                if now - item.arrival_mono <= budget:  # type: ignore[union-attr]
                    break
                del queue[first]
                self._windows[stream] -= 1
                self.dropped[stream] += 1

    def _head_notices(self) -> list[Notice]:
        notices: list[Notice] = []
        for queue in self._queues:
            while queue and isinstance(queue[0], Notice):
                notices.append(queue.popleft())  # type: ignore[arg-type]
        return notices

    def _oldest_arrival(self) -> float | None:
        heads = [q[0].arrival_mono for q in self._queues if q and isinstance(q[0], PendingWindow)]
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

    def _pop_batch(self, limit: int) -> tuple[list[PendingWindow], list[Notice]]:
        """Up to ``limit`` windows, the streams in turn (least recently served first, then
        the oldest head), each its oldest window; the notices that then reach a head come
        after the batch (and end that queue's share of it)."""
        batch: list[PendingWindow] = []
        after: list[Notice] = []
        blocked: set[int] = set()  # queues whose head is now a notice delivered after
        while len(batch) < limit:
            heads = [
                (self._last_served[s], q[0].arrival_mono, s)
                for s, q in enumerate(self._queues)
                if s not in blocked and q and isinstance(q[0], PendingWindow)
            ]
            if not heads:
                break
            *_, stream = min(heads)
            self._serial += 1
            self._last_served[stream] = self._serial
            queue = self._queues[stream]
            batch.append(queue.popleft())  # type: ignore[arg-type]
            self._windows[stream] -= 1
            if queue and isinstance(queue[0], Notice):
                blocked.add(stream)
                while queue and isinstance(queue[0], Notice):
                    after.append(queue.popleft())  # type: ignore[arg-type]
        return batch, after

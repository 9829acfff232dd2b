"""What a stream's thread hands on for the model: its windows and its state notices, in order
(``StreamWorker`` puts them through an ``Inlet`` into the one ``engine.batching`` queue), and
how they come back scored from a queue the watch shares with others (the server's).

A watch's own queue holds its ``PendingWindow``s and ``Notice``s, key ``i`` for stream ``i``
(``OwnInlet``). In the server's queue (``SharedQueue``) they ride as ``RoutedWindow`` and
``RoutedNotice``, keyed ``(mailbox, i)``; the server's model loop scores a take in one model
call (``score_routed``) and leaves each watch its share, in order, in its ``Mailbox``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from slowfast_deploy.engine.batching import BatchQueue, Take
from slowfast_deploy.live.events import StreamEvent
from slowfast_deploy.runtime import Backend
from slowfast_deploy.timeline.run import score_windows
from slowfast_deploy.timeline.windows import WindowClip, WindowRecord

logger = logging.getLogger(__name__)


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


class Inlet(Protocol):
    """Where a stream's thread puts its windows and notices (never blocks for long)."""

    def put(self, item: PendingWindow | Notice) -> None: ...

    def wake(self) -> None:
        """The stream's thread ends: whoever waits for its work looks again."""
        ...


@dataclass(slots=True)
class Delivery:
    """A served watch's share of one take of the server's queue, scored: notices, windows
    with their records, notices (in this order)."""

    before: list[Notice] = field(default_factory=list)
    batch: list[PendingWindow] = field(default_factory=list)
    records: list[WindowRecord] = field(default_factory=list)
    after: list[Notice] = field(default_factory=list)
    model_s: float = 0.0
    error: Exception | None = None  # the model call failed: the watch raises it


class Mailbox:
    """Where the server's model loop leaves a served watch's deliveries."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Delivery | None] = queue.Queue()


@dataclass(frozen=True, slots=True, eq=False)
class RoutedWindow:
    """A served watch's window in the server's queue, and where its result goes."""

    mailbox: Mailbox
    window: PendingWindow


@dataclass(frozen=True, slots=True, eq=False)
class RoutedNotice:
    """A served watch's notice in the server's queue, and where it goes."""

    mailbox: Mailbox
    notice: Notice


SharedQueue = BatchQueue[RoutedWindow, RoutedNotice]


def score_routed(take: Take[RoutedWindow, RoutedNotice], backend: Backend) -> float:
    """Score a take of the server's queue holding served watches' windows in one model call,
    and hand each watch its share in order; returns the model's seconds (0: no call)."""
    shares: dict[Mailbox, Delivery] = {}
    for notice in take.before:
        shares.setdefault(notice.mailbox, Delivery()).before.append(notice.notice)
    seconds = 0.0
    if take.batch:
        t0 = time.perf_counter()
        clips = [r.window.clip for r in take.batch]
        try:
            records = list(score_windows(clips, backend, batchsize=len(clips)))
        except Exception as err:  # fails the watches it was for, not the server
            logger.exception("model call for %d stream windows failed", len(clips))
            for routed in take.batch:
                shares.setdefault(routed.mailbox, Delivery()).error = err
        else:
            seconds = time.perf_counter() - t0
            for routed, record in zip(take.batch, records, strict=True):
                delivery = shares.setdefault(routed.mailbox, Delivery())
                delivery.batch.append(routed.window)
                delivery.records.append(record)
                delivery.model_s = seconds
    for notice in take.after:
        shares.setdefault(notice.mailbox, Delivery()).after.append(notice.notice)
    for mailbox, delivery in shares.items():
        mailbox.queue.put(delivery)
    return seconds


class OwnInlet:
    """A watch's own queue: stream ``i`` is key ``i``."""

    def __init__(self, batching: BatchQueue[PendingWindow, Notice]) -> None:
        self._queue = batching

    def put(self, item: PendingWindow | Notice) -> None:
        if isinstance(item, PendingWindow):
            self._queue.put(item.stream, item, item.arrival_mono)
        else:
            self._queue.put_notice(item.stream, item)

    def wake(self) -> None:
        self._queue.wake()


class SharedInlet:
    """A served watch's streams in the server's queue: stream ``i`` is key ``(mailbox, i)``;
    counts what it put, so the watch knows when all of it has come back."""

    def __init__(self, batching: SharedQueue, mailbox: Mailbox) -> None:
        self._queue, self._mailbox = batching, mailbox
        self.put_count = 0
        self._lock = threading.Lock()

    def put(self, item: PendingWindow | Notice) -> None:
        key = (self._mailbox, item.stream)
        with self._lock:
            self.put_count += 1
        if isinstance(item, PendingWindow):
            self._queue.put(key, RoutedWindow(self._mailbox, item), item.arrival_mono)
        else:
            self._queue.put_notice(key, RoutedNotice(self._mailbox, item))

    def wake(self) -> None:
        self._mailbox.queue.put(None)

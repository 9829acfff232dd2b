"""What a stream's thread hands on for the model: its windows and its state notices, in order
(``StreamWorker`` puts them through an ``Inlet`` into the one ``engine.batching`` queue)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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


class Inlet(Protocol):
    """Where a stream's thread puts its windows and notices (never blocks for long)."""

    def put(self, item: PendingWindow | Notice) -> None: ...

    def wake(self) -> None:
        """The stream's thread ends: whoever waits for its work looks again."""
        ...

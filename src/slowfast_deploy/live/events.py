"""What a watch reports: segments found as windows arrive, and per-stream statistics.

``SegmentTracker`` finds, window by window, the segments ``timeline.segments.find_segments``
finds on the whole list: the same centred smoothing (``smooth_scores`` over the ``smooth``
windows around each), the same threshold, the same boundaries (midway between the centres of
the windows on either side; the first segment starts at the first window's start, the last
ends at the last window's end). Centred smoothing needs ``smooth // 2`` later windows, so a
window's segment decision comes that many windows after it.

``LatencyHistogram`` keeps latencies in logarithmic bins (1% wide): percentiles within 1%,
in constant memory however long the watch runs.

The events themselves are dataclasses, one per kind, each holding the values its JSON holds
(rounded as written) and one ``to_dict`` giving that JSON, keys in order: ``WindowEvent``,
``SegmentStartEvent``, ``SegmentEndEvent``, ``StreamEvent`` (opened, lost, restored, ended,
failed), ``StatsEvent``, and ``DeliveryReport`` (what a sink such as the webhook sent, at the
end). ``Event`` is their union; every one has a ``kind``, the JSON's ``"event"``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from slowfast_deploy.labels import class_name
from slowfast_deploy.timeline.output import top_classes
from slowfast_deploy.timeline.segments import Segment, smooth_scores, window_boundaries
from slowfast_deploy.timeline.windows import WindowRecord

TopEntry = tuple[int, str | None, float]  # (class, name or None, score)
StreamKind = Literal[
    "stream_opened", "stream_lost", "stream_restored", "stream_ended", "stream_failed"
]


def _top_entry(index: int, name: str | None, score: float) -> dict[str, Any]:
    """One top-k entry as ``timeline`` writes it (``timeline.output``)."""
    return {"class": index, **({"name": name} if name is not None else {}), "score": score}


@dataclass(frozen=True, slots=True)
class WindowEvent:
    """A window scored: ``timeline``'s window record (stream times), when its last frame
    arrived and its decision was emitted (wall clock), and every score when asked for."""

    kind: ClassVar[Literal["window"]] = "window"
    stream: str
    connection: int
    index: int
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    topk: tuple[TopEntry, ...]
    arrival_wall: float
    emit_wall: float
    latency_s: float
    scores: tuple[float, ...] | None = None

    @classmethod
    def from_record(
        cls,
        stream: str,
        connection: int,
        record: WindowRecord,
        *,
        topk: int,
        labels: Sequence[str] | None,
        arrival_wall: float,
        emit_wall: float,
        scores: bool = False,
    ) -> WindowEvent:
        top = tuple(
            (c, None if labels is None else class_name(c, labels), round(score, 6))
            for c, score in top_classes(record.scores, topk)
        )
        return cls(
            stream,
            connection,
            record.index,
            record.start_frame,
            record.end_frame,
            round(record.start_s, 4),
            round(record.end_s, 4),
            top,
            round(arrival_wall, 3),
            round(emit_wall, 3),
            round(emit_wall - arrival_wall, 3),
            tuple(record.scores.tolist()) if scores else None,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event": self.kind,
            "stream": self.stream,
            "connection": self.connection,
            "index": self.index,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "topk": [_top_entry(*entry) for entry in self.topk],
            "arrival_wall": self.arrival_wall,
            "emit_wall": self.emit_wall,
            "latency_s": self.latency_s,
        }
        if self.scores is not None:
            out["scores"] = list(self.scores)
        return out


@dataclass(frozen=True, slots=True)
class SegmentStartEvent:
    """A segment began (``smooth // 2`` windows after its first window arrived)."""

    kind: ClassVar[Literal["segment_start"]] = "segment_start"
    stream: str
    connection: int
    class_index: int
    name: str | None
    start_s: float
    start_frame: int
    window: int
    score: float  # its first window's smoothed score
    emit_wall: float

    @classmethod
    def from_start(
        cls,
        stream: str,
        connection: int,
        start: SegmentStart,
        *,
        labels: Sequence[str] | None,
        emit_wall: float,
    ) -> SegmentStartEvent:
        name = None if labels is None else class_name(start.class_index, labels)
        return cls(
            stream,
            connection,
            start.class_index,
            name,
            round(start.start_s, 4),
            start.start_frame,
            start.first_window,
            round(start.score, 6),
            round(emit_wall, 3),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.kind,
            "stream": self.stream,
            "connection": self.connection,
            "class": self.class_index,
            **({"name": self.name} if self.name is not None else {}),
            "start_s": self.start_s,
            "start_frame": self.start_frame,
            "window": self.window,
            "score": self.score,
            "emit_wall": self.emit_wall,
        }


@dataclass(frozen=True, slots=True)
class SegmentEndEvent:
    """A segment ended: ``timeline``'s segment record (``timeline.output.segment_entry``)."""

    kind: ClassVar[Literal["segment_end"]] = "segment_end"
    stream: str
    connection: int
    class_index: int
    name: str | None
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int
    windows: tuple[int, int]  # first and last
    mean_score: float
    emit_wall: float

    @classmethod
    def from_segment(
        cls,
        stream: str,
        connection: int,
        segment: Segment,
        *,
        labels: Sequence[str] | None,
        emit_wall: float,
    ) -> SegmentEndEvent:
        name = None if labels is None else class_name(segment.class_index, labels)
        return cls(
            stream,
            connection,
            segment.class_index,
            name,
            round(segment.start_s, 4),
            round(segment.end_s, 4),
            segment.start_frame,
            segment.end_frame,
            (segment.first_window, segment.last_window),
            round(segment.mean_score, 6),
            round(emit_wall, 3),
        )

    @property
    def label(self) -> str:
        """Its class name, or ``class N`` without names."""
        return self.name if self.name is not None else class_name(self.class_index, None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.kind,
            "stream": self.stream,
            "connection": self.connection,
            "class": self.class_index,
            **({"name": self.name} if self.name is not None else {}),
            "start_s": self.start_s,
            "end_s": self.end_s,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "windows": list(self.windows),
            "mean_score": self.mean_score,
            "emit_wall": self.emit_wall,
        }


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a stream's opening found: its picture size, frame rate and codec."""

    width: int
    height: int
    fps: float
    codec: str


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """A stream's state changed: ``stream_opened`` (``connection``, ``video``),
    ``stream_lost`` / ``stream_ended`` / ``stream_failed`` (``reason``, ``message``),
    ``stream_restored`` (``connection``, ``reason`` of the loss, ``down_s``, ``video``)."""

    kind: StreamKind
    stream: str
    wall: float
    connection: int | None = None
    reason: str | None = None
    message: str | None = None
    down_s: float | None = None
    video: StreamInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind, "stream": self.stream}
        for key in ("connection", "reason", "message", "down_s"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.video is not None:
            v = self.video
            out |= {"width": v.width, "height": v.height, "fps": v.fps, "codec": v.codec}
        out["wall"] = self.wall
        return out


@dataclass(frozen=True, slots=True)
class StatsEvent:
    """One stream's figures: for the last period, or (``final``) for the whole watch."""

    kind: ClassVar[Literal["stats"]] = "stats"
    stream: str
    final: bool
    state: str
    period_s: float
    windows: int
    windows_per_s: float | None
    latency_p50_s: float | None
    latency_p99_s: float | None
    dropped: int  # in the period (final: in all)
    dropped_total: int
    frames: int
    connections: int
    wall: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.kind,
            "stream": self.stream,
            "final": self.final,
            "state": self.state,
            "period_s": self.period_s,
            "windows": self.windows,
            "windows_per_s": self.windows_per_s,
            "latency_p50_s": self.latency_p50_s,
            "latency_p99_s": self.latency_p99_s,
            "dropped": self.dropped,
            "dropped_total": self.dropped_total,
            "frames": self.frames,
            "connections": self.connections,
            "wall": self.wall,
        }


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a sink that sends events away (``kind``: ``webhook``) sent, gave up on after
    every retry (``failed``) and dropped (its queue full, or left at closing)."""

    kind: str
    url: str
    sent: int
    failed: int
    dropped: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.kind,
            "url": self.url,
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
        }


Event = (
    WindowEvent | SegmentStartEvent | SegmentEndEvent | StreamEvent | StatsEvent | DeliveryReport
)


@dataclass(frozen=True, slots=True)
class SegmentStart:
    """A segment that began: its class, where it starts, its first window's smoothed score."""

    class_index: int
    start_s: float
    start_frame: int
    first_window: int
    score: float


class SegmentTracker:
    """``find_segments`` over windows that arrive one by one (see the module doc)."""

    def __init__(self, *, smooth: int, threshold: float) -> None:
        if smooth < 1 or smooth % 2 == 0:
            raise ValueError(f"smooth must be an odd number of windows >= 1, got {smooth}")
        self.smooth = smooth
        self.threshold = threshold
        self.half = smooth // 2
        self._records: deque[WindowRecord] = deque()  # from the previous decided one on
        self._base = 0  # position (in arrival order) of _records[0]
        self._count = 0  # windows added
        self._next = 0  # position of the next window to decide
        self._open: SegmentStart | None = None
        self._open_scores: list[float] = []  # smoothed top-1 scores of the open segment
        self._open_last = 0  # the open segment's last window so far
        self._last: WindowRecord | None = None  # the last decided window

    def add(self, record: WindowRecord) -> list[SegmentStart | Segment]:
        """A window's record; the segment starts and ends now known, in order."""
        self._records.append(record)
        self._count += 1
        out: list[SegmentStart | Segment] = []
        while self._next + self.half < self._count:
            out += self._decide(self._next, self._count)
        return out

    def finish(self) -> list[SegmentStart | Segment]:
        """The stream ended (or was lost): decide the last windows and close the open segment."""
        out: list[SegmentStart | Segment] = []
        while self._next < self._count:
            out += self._decide(self._next, self._count)
        if self._open is not None and self._last is not None:
            out.append(self._close(self._last.end_s, self._last.end_frame))
        return out

    @property
    def open_segment(self) -> SegmentStart | None:
        return self._open

    def _get(self, position: int) -> WindowRecord:
        return self._records[position - self._base]

    def _decide(self, i: int, available: int) -> list[SegmentStart | Segment]:
        lo, hi = max(0, i - self.half), min(available, i + self.half + 1)
        rows = np.stack([self._get(p).scores for p in range(lo, hi)])
        smoothed = smooth_scores(rows, self.smooth)[i - lo]  # rows: exactly i's span
        record = self._get(i)
        top = int(smoothed.argmax())
        score = float(smoothed[top])
        out: list[SegmentStart | Segment] = []
        previous = self._last
        if previous is not None:
            mid_f, mid_s = (float(a[0]) for a in window_boundaries([previous, record]))
        else:
            mid_f, mid_s = float(record.start_frame), record.start_s
        if self._open is not None and (score < self.threshold or top != self._open.class_index):
            out.append(self._close(mid_s, math.ceil(mid_f)))
        if self._open is None and score >= self.threshold:
            start_frame = record.start_frame if previous is None else math.ceil(mid_f)
            self._open = SegmentStart(top, mid_s, start_frame, record.index, score)
            self._open_scores = []
            out.append(self._open)
        if self._open is not None:
            self._open_scores.append(score)
            self._open_last = record.index
        self._last = record
        self._next += 1
        while self._base < self._next - self.half:
            self._records.popleft()  # no longer in any smoothing span
            self._base += 1
        return out

    def _close(self, end_s: float, end_frame: int) -> Segment:
        start = self._open
        if start is None:  # pragma: no cover - callers check
            raise RuntimeError("no open segment")
        segment = Segment(
            class_index=start.class_index,
            start_s=start.start_s,
            end_s=end_s,
            start_frame=start.start_frame,
            end_frame=end_frame,
            first_window=start.first_window,
            last_window=self._open_last,
            mean_score=float(np.mean(np.asarray(self._open_scores, dtype=np.float32))),
        )
        self._open = None
        self._open_scores = []
        return segment


@dataclass(slots=True)
class LatencyHistogram:
    """Latencies in 1%-wide logarithmic bins from 1 ms (below: the first bin) up."""

    counts: dict[int, int] = field(default_factory=dict)
    total: int = 0

    _BASE = 1e-3
    _STEP = math.log(1.01)

    def add(self, seconds: float) -> None:
        b = max(0, int(math.log(max(seconds, self._BASE) / self._BASE) / self._STEP))
        self.counts[b] = self.counts.get(b, 0) + 1
        self.total += 1

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0..100) in seconds (the bin's upper edge); None if empty."""
        if not self.total:
            return None
        rank = max(1, math.ceil(q / 100 * self.total))
        seen = 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return self._BASE * math.exp((b + 1) * self._STEP)
        return None  # pragma: no cover


@dataclass(slots=True)
class StreamStats:
    """One stream's figures since the start and since the last report."""

    windows: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    period_windows: int = 0
    period_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    period_dropped_from: int = 0  # the batcher's drop count at the start of the period

    def scored(self, latency_s: float) -> None:
        self.windows += 1
        self.period_windows += 1
        self.latency.add(latency_s)
        self.period_latency.add(latency_s)

    def report(
        self,
        stream: str,
        *,
        state: str,
        frames: int,
        connections: int,
        dropped: int,
        period_s: float,
        final: bool,
        wall: float,
    ) -> StatsEvent:
        """The ``stats`` event of the period (``final``: of the whole watch); starts a new
        period."""
        windows = self.windows if final else self.period_windows
        latency = self.latency if final else self.period_latency
        p50, p99 = latency.percentile(50), latency.percentile(99)
        event = StatsEvent(
            stream,
            final,
            state,
            round(period_s, 3),
            windows,
            round(windows / period_s, 3) if period_s > 0 else None,
            None if p50 is None else round(p50, 3),
            None if p99 is None else round(p99, 3),
            dropped if final else dropped - self.period_dropped_from,
            dropped,
            frames,
            connections,
            round(wall, 3),
        )
        self.period_windows = 0
        self.period_latency = LatencyHistogram()
        self.period_dropped_from = dropped
        return event

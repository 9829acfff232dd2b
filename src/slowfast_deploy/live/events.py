"""What a watch reports: segments found as windows arrive, and per-stream statistics.

``SegmentTracker`` finds, window by window, the segments ``timeline.segments.find_segments``
finds on the whole list: the same centred smoothing (``smooth_scores`` over the ``smooth``
windows around each), the same threshold, the same boundaries (midway between the centres of
the windows on either side; the first segment starts at the first window's start, the last
ends at the last window's end). Centred smoothing needs ``smooth // 2`` later windows, so a
window's segment decision comes that many windows after it.

``LatencyHistogram`` keeps latencies in logarithmic bins (1% wide): percentiles within 1%,
in constant memory however long the watch runs.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from slowfast_deploy.timeline.segments import Segment, smooth_scores, window_boundaries
from slowfast_deploy.timeline.windows import WindowRecord


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

    def report(self, *, dropped: int, period_s: float, final: bool) -> dict[str, object]:
        """The figures of a ``stats`` event; starts a new period."""
        windows = self.windows if final else self.period_windows
        latency = self.latency if final else self.period_latency
        p50, p99 = latency.percentile(50), latency.percentile(99)
        out: dict[str, object] = {
            "windows": windows,
            "windows_per_s": round(windows / period_s, 3) if period_s > 0 else None,
            "latency_p50_s": None if p50 is None else round(p50, 3),
            "latency_p99_s": None if p99 is None else round(p99, 3),
            "dropped": dropped if final else dropped - self.period_dropped_from,
            "dropped_total": dropped,
        }
        self.period_windows = 0
        self.period_latency = LatencyHistogram()
        self.period_dropped_from = dropped
        return out

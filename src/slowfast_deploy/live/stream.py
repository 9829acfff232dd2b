"""One live stream: its own thread decodes it, cuts windows as ``timeline`` does, and
hands them to the batcher; it reopens the stream when it is lost.

Windows are those ``timeline.windows.plan_windows`` plans for a video longer than the
stream has lasted: window ``k`` covers frames ``[k * stride, k * stride + window)``, sampled
with ``sample_clip_indices(window, clip)``, and ``timeline.windows.assemble_windows``
preprocesses them. Frame ``k`` is the ``k``-th frame decoded since the stream was (re)opened,
so a stream that delivers a file's frames gives that file's windows, frame for frame. Frames
come from ``video.frames.decode_timed`` and are timed by its clock, the one files use, from
the first frame (bad timestamps: frame / fps from there on, see ``video.frames``). Only
frames some window samples are converted to RGB and resized (at once, so no full-size frame
is held), and ``assemble_windows`` keeps about one window of crops: memory per stream is flat.

States, each a notice in the stream's queue (``pending.Notice``)::

    open ──ok──> stream_opened ──frames──> ... ──ends/errors/stalls──> stream_lost
      │                                                                   │ reconnect
      └─fails the first time──> stream_failed (one plain line, for good)  ▼ (capped backoff)
                                                   stream_restored <──ok── open again

Without reconnecting, a lost stream ends with ``stream_ended`` (a file played to its end, or
a stream that stopped).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy._optional import require
from slowfast_deploy.errors import Reason
from slowfast_deploy.live.events import StreamEvent, StreamInfo, StreamKind
from slowfast_deploy.live.pending import Inlet, Notice, PendingWindow
from slowfast_deploy.live.sources import (
    OpenOptions,
    Source,
    StreamError,
    classify_error,
    open_source,
)
from slowfast_deploy.runtime.base import InputDType
from slowfast_deploy.timeline.windows import TimelineStats, Window, WindowPlan, assemble_windows
from slowfast_deploy.video.decode import frame_to_rgb
from slowfast_deploy.video.frames import FrameClock, TimedFrame, decode_timed
from slowfast_deploy.video.preprocess import resize_frame
from slowfast_deploy.video.sampling import sample_clip_indices

logger = logging.getLogger(__name__)

_ENDLESS = 1 << 52  # windows "planned" for a stream: more than any stream will deliver


class EndlessWindows(Sequence[Window]):
    """The windows of a stream of unknown length, as ``plan_windows`` plans a long video.

    >>> windows = EndlessWindows(WindowPlan(64, 16))
    >>> windows[2].start_frame, windows[2].end_frame, windows[2].frame_indices[:3].tolist()
    (32, 96, [32, 34, 36])
    """

    def __init__(self, plan: WindowPlan) -> None:
        self.plan = plan
        self.offsets = sample_clip_indices(plan.window, plan.clip)[0]  # the same for every window
        # frame k is sampled by some window iff k - o is a window start (a multiple of stride)
        # for an offset o <= k: kept as the smallest such o per residue of k mod stride
        self._first_by_residue: dict[int, int] = {}
        for offset in sorted(int(o) for o in self.offsets):
            self._first_by_residue.setdefault(offset % plan.stride, offset)

    def __len__(self) -> int:
        return _ENDLESS

    @overload
    def __getitem__(self, index: int) -> Window: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Window]: ...

    def __getitem__(self, index: int | slice) -> Window | Sequence[Window]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(_ENDLESS))]
        if index < 0:
            index += _ENDLESS
        if not 0 <= index < _ENDLESS:
            raise IndexError(index)
        start = index * self.plan.stride
        return Window(index, start, start + self.plan.window, self.offsets + start)

    def wanted(self, frame_index: int) -> bool:
        """Whether some window samples frame ``frame_index``."""
        first = self._first_by_residue.get(frame_index % self.plan.stride)
        return first is not None and first <= frame_index


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Reopen a lost stream after ``first_s``, doubling the wait per failed try up to
    ``max_s``; ``enabled`` False: a lost stream ends."""

    enabled: bool
    first_s: float = 0.5
    max_s: float = 8.0


class _Lost(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class StreamWorker:
    """Decodes one source in its own thread; windows and notices go to ``batcher``."""

    def __init__(
        self,
        index: int,
        source: Source,
        plan: WindowPlan,
        batcher: Inlet,
        *,
        options: OpenOptions,
        reconnect: Reconnect,
        realtime: bool = False,
        stop: threading.Event,
        input_dtype: InputDType = "float32",
    ) -> None:
        """``input_dtype``: what the model takes (``runtime.base.model_input``): windows are
        assembled as float32 clips or, for a uint8-input model, as bytes."""
        self.index = index
        self.input_dtype = input_dtype
        self.source = source
        self.plan = plan
        self.windows = EndlessWindows(plan)
        self.batcher = batcher
        self.options = options
        self.reconnect = reconnect
        self.realtime = realtime
        self.stop = stop
        self.stats = TimelineStats()
        self.state = "opening"  # opening, open, lost, ended, failed, stopped
        self.connections = 0  # successful opens
        self.frames = 0  # frames decoded, all connections
        self._arrival = (0.0, 0.0)  # (wall, monotonic) of the last frame decoded
        self._thread = threading.Thread(
            target=self._run,
            name=f"live-{index}",
            daemon=True,  # a stalled read never hangs exit
        )

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # --- the thread -----------------------------------------------------------------------

    def _notice(self, kind: StreamKind, **fields: Any) -> None:
        event = StreamEvent(kind, self.source.name, round(time.time(), 3), **fields)
        self.batcher.put(Notice(self.index, event))

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as err:  # a bug must not pass silently: the stream fails visibly
            logger.exception("%s: stream thread failed", self.source.name)
            self.state = "failed"
            self._notice("stream_failed", reason=Reason.ERROR, message=f"{self.source.name}: {err}")
        finally:
            self.batcher.wake()

    def _loop(self) -> None:
        lost: _Lost | None = None
        lost_at = 0.0
        wait_s = self.reconnect.first_s
        while not self.stop.is_set():
            try:
                container, stream = open_source(self.source, self.options)
            except StreamError as err:
                if lost is None:  # never opened: one plain line, and this stream is done
                    self.state = "failed"
                    self._notice("stream_failed", reason=err.reason, message=str(err))
                    return
                logger.info("%s (%s); next try in %.1f s", err, err.reason, wait_s)
                if self.stop.wait(wait_s):
                    break
                wait_s = min(wait_s * 2, self.reconnect.max_s)
                continue
            info = _stream_info(stream)
            connection = self.connections
            self.connections += 1
            if lost is None:
                self._notice("stream_opened", connection=connection, video=info)
            else:
                self._notice(
                    "stream_restored",
                    connection=connection,
                    reason=lost.reason,
                    down_s=round(time.monotonic() - lost_at, 3),
                    video=info,
                )
            self.state = "open"
            frames_before = self.frames
            try:
                lost = self._play(container, stream, connection, info.fps)
            finally:
                container.close()
            lost_at = time.monotonic()
            if self.frames > frames_before:  # it played: the backoff starts over
                wait_s = self.reconnect.first_s
            if self.stop.is_set():
                break
            if not self.reconnect.enabled:
                self.state = "ended"
                self._notice("stream_ended", reason=lost.reason, message=str(lost))
                return
            self.state = "lost"
            self._notice("stream_lost", reason=lost.reason, message=str(lost))
            if self.stop.wait(wait_s):
                break
            wait_s = min(wait_s * 2, self.reconnect.max_s)
        self.state = "stopped"

    def _play(self, container: Any, stream: Any, connection: int, fps: float) -> _Lost:
        """Windows of one connection until the stream is lost: why it was."""
        frames = self._frames(container, stream, fps)
        clips = assemble_windows(
            frames,
            self.windows,
            fps=fps,
            preprocess=self.plan.preprocess,
            stats=self.stats,
            input_dtype=self.input_dtype,
        )
        try:
            for clip in clips:  # the last frame pulled is the window's last frame
                wall, mono = self._arrival
                self.batcher.put(PendingWindow(self.index, connection, clip, wall, mono))
        except _Lost as lost:
            return lost
        raise RuntimeError("endless windows ended")  # pragma: no cover

    def _frames(self, container: Any, stream: Any, fps: float) -> Iterator[TimedFrame]:
        """The frames of one connection (``video.frames.decode_timed``, timed by its clock from
        the first frame), paced in real time if asked; ends in ``_Lost``."""
        av = require("av", extra="av", purpose="live streams")
        clock = FrameClock(fps, name=self.source.name)  # the first frame is at 0 s
        short_side = self.plan.preprocess.short_side
        paced_from: float | None = None
        count = 0  # frames decoded on this connection

        def arrive(index: int, time_s: float) -> None:
            nonlocal paced_from, count
            if self.stop.is_set():
                raise _Lost(Reason.STOPPED, f"{self.source.name}: stopped")
            if self.realtime:  # play at the stream's own pace
                if paced_from is None:
                    paced_from = time.monotonic() - time_s
                delay = paced_from + time_s - time.monotonic()
                if delay > 0 and self.stop.wait(delay):
                    raise _Lost(Reason.STOPPED, f"{self.source.name}: stopped")
            self._arrival = (time.time(), time.monotonic())
            self.frames += 1
            count = index + 1

        def convert(frame: Any, index: int) -> NDArray[np.uint8]:
            t0 = time.perf_counter()
            rgb = resize_frame(frame_to_rgb(frame), short_side)
            self.stats.preprocess_s += time.perf_counter() - t0
            return rgb

        try:
            yield from decode_timed(
                container,
                stream,
                clock,
                wanted=self.windows.wanted,
                convert=convert,
                on_frame=arrive,
            )
        except (av.FFmpegError, OSError) as err:
            reason, what = classify_error(err, self.options)
            if reason == Reason.UNREACHABLE:  # a read that timed out: no data for stall_timeout_s
                reason = Reason.STALLED
                what = f"no data for {self.options.stall_timeout_s:g} s (stalled)"
            elif reason == Reason.NOT_A_VIDEO:  # data FFmpeg cannot read, mid-stream
                reason, what = Reason.CORRUPT, "undecodable data"
            raise _Lost(reason, f"{self.source.name}: {what} after {count} frames") from err
        raise _Lost(Reason.ENDED, f"{self.source.name}: the stream ended after {count} frames")


def _stream_info(stream: Any) -> StreamInfo:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    context = stream.codec_context
    return StreamInfo(
        int(context.width), int(context.height), float(rate) if rate else 0.0, str(context.name)
    )

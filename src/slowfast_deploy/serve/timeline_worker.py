"""A timeline's decoding in a process of its own, so a decoder that crashes or hangs on an
uploaded file fails that request alone, never the server (as ``engine.pool`` does for whole
videos).

The child opens the video, plans the windows and sends each window's model input as soon as
it is complete (``timeline.windows.assemble_windows``, the code ``timeline`` runs in-process),
over a pipe whose small buffer keeps it at most one window ahead: memory stays flat for any
video length. The parent scores the windows through the server's batcher. A child that dies
fails the request (``decoder_died``); one whose heartbeat shows no progress for
``timeout_s`` is killed (``decode_timeout``): the child is an ``engine.worker``, with the
stall rule of the decode pool.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait

from slowfast_deploy.engine.worker import Channel, Heartbeat, WorkerProcess, describe_exit
from slowfast_deploy.errors import Reason, VideoDecodeError
from slowfast_deploy.runtime.base import InputDType
from slowfast_deploy.timeline.windows import (
    TimelineStats,
    WindowClip,
    WindowPlan,
    assemble_windows,
    frame_range,
    plan_windows,
    wanted_frames,
)
from slowfast_deploy.video.decode import Decoder, TimedFrame, VideoInfo, iter_frames, open_video

logger = logging.getLogger(__name__)

_POLL_S = 1.0  # how often a waiting parent looks at the child's heartbeat


@dataclass(frozen=True, slots=True)
class TimelineOpened:
    """Child -> parent, first: the video's info and its number of windows."""

    info: VideoInfo
    num_windows: int


@dataclass(frozen=True, slots=True)
class TimelineWindow:
    """Child -> parent: one window's model input."""

    clip: WindowClip


@dataclass(frozen=True, slots=True)
class TimelineDone:
    """Child -> parent, last on success: decoding and preprocessing times."""

    stats: TimelineStats


@dataclass(frozen=True, slots=True)
class TimelineFailed:
    """Child -> parent, last on failure: the reason code and one plain sentence."""

    reason: Reason
    message: str


TimelineMessage = TimelineOpened | TimelineWindow | TimelineDone | TimelineFailed


def _beating(frames: Iterable[TimedFrame], heartbeat: Heartbeat) -> Iterator[TimedFrame]:
    for frame in frames:
        heartbeat.beat()
        yield frame


def _decode_timeline(
    channel: Channel, path: str, plan: WindowPlan, decoder: Decoder, input_dtype: InputDType
) -> None:
    """The child: sends ``TimelineOpened``, ``TimelineWindow``..., then ``TimelineDone`` or
    ``TimelineFailed``. Its heartbeat beats per frame and is idle while a send waits for the
    parent (the pipe is full: the parent is scoring)."""
    heartbeat = channel.heartbeat

    def send(message: TimelineMessage) -> None:
        heartbeat.idle()
        channel.send(message)
        heartbeat.beat()

    stats = TimelineStats()
    heartbeat.start(0)
    try:
        with open_video(path, decoder=decoder) as reader:
            info = reader.info
            first, stop = frame_range(info)
            windows = plan_windows(info.num_frames, plan, first=first, stop=stop)
            send(TimelineOpened(info, len(windows)))
            frames = iter_frames(reader, wanted_frames(windows), first=windows[0].start_frame)
            for clip in assemble_windows(
                _beating(frames, heartbeat),
                windows,
                fps=info.fps,
                preprocess=plan.preprocess,
                stats=stats,
                input_dtype=input_dtype,
            ):
                send(TimelineWindow(clip))
        send(TimelineDone(stats))
    except VideoDecodeError as err:
        send(TimelineFailed(err.reason, str(err)))
    except ValueError as err:
        send(TimelineFailed(Reason.INVALID, str(err)))
    except Exception as err:  # a decoder error inside the file: this request fails
        send(
            TimelineFailed(
                Reason.DECODER_CRASH, f"the decoder crashed ({type(err).__name__}: {err})"
            )
        )
    finally:
        heartbeat.done()
        channel.conn.close()


class TimelineDecoder:
    """Iterate for ``WindowClip``s of ``path``; ``info`` and ``num_windows`` are set once the
    first one (or the end) has come. ``VideoDecodeError`` (with a reason) for any failure."""

    def __init__(
        self,
        path: str,
        plan: WindowPlan,
        *,
        decoder: Decoder = "pyav",
        input_dtype: InputDType = "float32",
        timeout_s: float | None = 300.0,
    ) -> None:
        self.path, self.timeout_s = path, timeout_s
        self.info: VideoInfo | None = None
        self.num_windows = 0
        self.stats = TimelineStats()
        self._process = WorkerProcess(_decode_timeline, path, plan, decoder, input_dtype)

    @property
    def pid(self) -> int:
        return self._process.pid

    def _receive(self) -> TimelineMessage:
        """The child's next message; raises when it stalls (``engine.worker``'s rule:
        working with no progress for ``timeout_s``) or dies."""
        process = self._process
        while not process.conn.poll():
            if process.stalled(self.timeout_s):
                self.close()
                raise VideoDecodeError(
                    f"{self.path}: decoding made no progress for {self.timeout_s:g} s and was "
                    "stopped (a hung decoder)",
                    reason=Reason.DECODE_TIMEOUT,
                )
            if not process.is_alive():
                break
            wait([process.conn, process.sentinel], timeout=_POLL_S)
        try:
            message = process.conn.recv()
        except (EOFError, OSError) as err:
            process.join(5)
            raise VideoDecodeError(
                f"{self.path}: the decoder process died ({describe_exit(process.exitcode)}) "
                "while decoding it; the file is probably corrupt",
                reason=Reason.DECODER_DIED,
            ) from err
        assert isinstance(message, TimelineMessage), message
        return message

    def open(self) -> None:
        """Wait for the video's info (raises as iteration does)."""
        message = self._receive()
        if isinstance(message, TimelineFailed):
            self.close()
            raise VideoDecodeError(message.message, reason=message.reason)
        assert isinstance(message, TimelineOpened), message
        self.info, self.num_windows = message.info, message.num_windows

    def __iter__(self) -> Iterator[WindowClip]:
        if self.info is None:
            self.open()
        t0 = time.perf_counter()
        try:
            while True:
                message = self._receive()
                if isinstance(message, TimelineWindow):
                    yield message.clip
                elif isinstance(message, TimelineDone):
                    self.stats = message.stats
                    return
                elif isinstance(message, TimelineFailed):
                    raise VideoDecodeError(message.message, reason=message.reason)
        finally:
            logger.debug("%s decoded in %.1f s", self.path, time.perf_counter() - t0)
            self.close()

    def close(self) -> None:
        self._process.close()

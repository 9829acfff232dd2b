"""Frames in decoding order with their times: the one frame loop and the one clock, for files
(``decode.iter_frames``: ``timeline``, the server's timelines) and live streams
(``live.stream``) alike.

The clock (``FrameClock``) has one rule for timestamps::

    time of frame k = pts_k - origin      while every pts so far is known, finite, >= 0 after
                                          the origin and later than the frame before
                    = k / fps             from the first frame where that fails, for the rest
                                          of the opening (one warning)

``origin`` is the container's start time for a file (its times are the file's: ``--start``
and ``--end`` mean the same seconds), and the first frame's pts for a live stream (stream
time starts at 0 at the first frame received, however long the stream ran before).

Why counting frames, for good, rather than mending each bad frame from the one before: a
missing or backward pts means the demuxer or decoder is guessing (AVI with packed B-frames:
FFmpeg numbers the decoded frames 1, 2, 4, 3, 5, 7, 6, ...), so the later pts that happen
to increase are guesses too. Counting gives every frame its place in a constant-rate video
(``test.avi`` of the golden set: ``k / 25`` from frame 3 on, exactly), where mending from
the previous frame carried the early guesses along (``(k + 1) / 25``, a frame late for the
whole video). The frame numbering of windows is by count already (frame ``k`` is the
``k``-th decoded), so times by count stay consistent with it. A stream's clock starts
afresh when it is reopened.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

# frames per second assumed where the container gives none (a live guess; files give one)
UNKNOWN_FPS = 30.0


@dataclass(frozen=True, slots=True)
class TimedFrame:
    """One decoded frame in presentation order; ``rgb`` only for frames asked for."""

    index: int
    time_s: float  # seconds from the origin (see the module doc)
    rgb: NDArray[np.uint8] | None  # [H, W, 3]; None when the caller does not need the pixels


class FrameClock:
    """The time of each frame, by the module's rule: presentation times from ``origin_s``
    while they make sense, frame / fps from the first one that does not.

    ``origin_s`` None: the first frame's own time (a live stream's clock starts at 0).
    ``name`` (a path, a stream) names the source in the one warning.

    >>> clock = FrameClock(25.0, origin_s=0.0)
    >>> [clock.time_s(i, pts) for i, pts in enumerate([0.0, 0.04, 0.12, 0.08, None])]
    [0.0, 0.04, 0.12, 0.12, 0.16]
    """

    def __init__(self, fps: float, *, origin_s: float | None = None, name: object = "") -> None:
        self.fps = fps if fps > 0 else UNKNOWN_FPS
        self.origin_s = origin_s
        self.name = name
        self.previous = -1.0  # the last frame's time (before the first frame: -1)
        self.counting = False  # True from the first bad timestamp on

    def time_s(self, index: int, pts_s: float | None) -> float:
        """Seconds of frame ``index`` (0, 1, ... in decoding order) whose presentation time
        is ``pts_s`` seconds (None: the container gives none)."""
        if self.origin_s is None and pts_s is not None and math.isfinite(pts_s):
            self.origin_s = pts_s  # the first frame with a time is at 0
        if not self.counting:
            if pts_s is None or self.origin_s is None:
                self._start_counting(index)
            else:
                time_s = pts_s - self.origin_s
                if not math.isfinite(time_s) or time_s < 0 or time_s <= self.previous:
                    self._start_counting(index)
        if self.counting:
            time_s = index / self.fps
        self.previous = time_s
        return time_s

    def _start_counting(self, index: int) -> None:
        logger.warning(
            "%s: presentation timestamps missing or out of order at frame %d; times from "
            "there on are frame / %.3f fps",
            self.name,
            index,
            self.fps,
        )
        self.counting = True


def decode_timed(
    container: Any,
    stream: Any,
    clock: FrameClock,
    *,
    wanted: Callable[[int], bool],
    convert: Callable[[Any, int], NDArray[np.uint8]],
    first: int = 0,
    stop: int | None = None,
    on_frame: Callable[[int, float], None] | None = None,
) -> Generator[TimedFrame, None, int]:
    """The frames of a PyAV ``stream``, decoded in order from where ``container`` is, numbered
    from 0: ``first .. stop - 1`` are timed by ``clock`` and yielded, with the pixels
    ``convert(frame, index)`` gives where ``wanted(index)``; frames before ``first`` are
    decoded and skipped. ``on_frame(index, time_s)`` runs before a frame's pixels are
    converted (a live stream paces itself there). Returns the number of frames decoded
    (fewer than ``stop``: the stream ended first). Decoding errors propagate.
    """
    decoded = 0
    for index, frame in enumerate(container.decode(stream)):
        if stop is not None and index >= stop:
            break
        decoded = index + 1
        if index < first:
            continue
        time_s = clock.time_s(index, frame.time)
        if on_frame is not None:
            on_frame(index, time_s)
        rgb = convert(frame, index) if wanted(index) else None
        yield TimedFrame(index, time_s, rgb)
    return decoded

"""Action timelines of long videos: overlapping windows, each scored exactly as ``predict``
scores a video of the window's length.

Window ``k`` covers frames ``[s_k, s_k + window)`` with ``s_k = first + k * stride``, for as
many windows as fit; a range shorter than one window gets one window of all its frames. Inside
a window, frames are sampled as mmaction2's test pipeline samples a video of that many frames
(``sample_clip_indices(window, clip)`` offset by ``s_k``; windows of 32..62 frames wrap, as a
short video does), then resized, cropped and normalised by ``video.preprocess``, the code
``predict`` uses: a video one window long gives ``predict``'s scores.

One pass over the video, in order::

    frames ──(needed by a window? resize, crop, model_input)──> frame cache
       │                                        (frames no future window needs are dropped:
    decoded once                                 memory is flat)
                                                       │ window complete: stack its frames
                                                       ▼
                          WindowRecord <── score_views <── batch of windows

Each frame is normalised once however many windows share it; normalisation is per element,
so a window's input is bit-identical to ``normalize_to_ncthw`` of its crops (tested); a
uint8-input model gets the crops' bytes instead (``runtime.base.model_input``).

``plan_windows`` / ``assemble_windows`` (here) and ``run.score_windows`` are the pieces
(frames in, records out) for other sources, such as live streams; ``run.TimelineRun`` puts
them together for one video file. ``segments`` turns records into labelled segments.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.runtime.base import InputDType, ModelInput, model_input
from slowfast_deploy.specs import SINGLE_VIEW, ClipSpec, PreprocessSpec
from slowfast_deploy.video.decode import TimedFrame, VideoInfo
from slowfast_deploy.video.preprocess import crop_views
from slowfast_deploy.video.sampling import sample_clip_indices


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """Windows in frames: ``window`` frames long, a new one every ``stride`` frames."""

    window: int = 64  # 64 frames: the span of one 32x2 test clip (63) rounded up
    stride: int = 16
    clip: ClipSpec = SINGLE_VIEW.clip  # 32 frames, interval 2, one clip: the reference protocol
    preprocess: PreprocessSpec = SINGLE_VIEW.preprocess  # short side 256, center crop 224

    def __post_init__(self) -> None:
        if self.window < self.clip.clip_len:
            raise ValueError(
                f"window must be at least the model's clip length ({self.clip.clip_len} frames), "
                f"got {self.window}"
            )
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1 frame, got {self.stride}")
        if self.clip.num_clips != 1 or self.preprocess.num_crops != 1:
            raise ValueError("timeline windows take one view each (1 clip, center crop)")


@dataclass(frozen=True, slots=True, eq=False)
class Window:
    index: int
    start_frame: int
    end_frame: int  # exclusive
    frame_indices: NDArray[np.int64]  # [clip_len], absolute frame indices, in clip order


@dataclass(frozen=True, slots=True, eq=False)
class WindowClip:
    """A window's frames resized, cropped and normalised: its model input (one view)."""

    window: Window
    start_s: float  # presentation time of the first frame
    end_s: float  # presentation time of the last frame + one frame
    input: ModelInput  # [3, T, S, S], as model_input makes it


@dataclass(frozen=True, slots=True, eq=False)
class WindowRecord:
    index: int
    start_frame: int
    end_frame: int  # exclusive
    start_s: float
    end_s: float
    scores: NDArray[np.float32]  # [classes], softmax

    @property
    def center_s(self) -> float:
        return (self.start_s + self.end_s) / 2

    @property
    def center_frame(self) -> float:
        return (self.start_frame + self.end_frame) / 2


@dataclass(slots=True)
class TimelineStats:
    """Where the time went, in seconds (``decode`` includes waiting for the file)."""

    decode_s: float = 0.0
    preprocess_s: float = 0.0  # resize + crop + normalise
    model_s: float = 0.0
    peak_cached_frames: int = 0  # most frames held at once (flat for any video length)


def plan_windows(
    num_frames: int, plan: WindowPlan, *, first: int = 0, stop: int | None = None
) -> list[Window]:
    """The windows over frames ``first .. stop - 1`` (default: the whole video)."""
    stop = num_frames if stop is None else stop
    if not 0 <= first < stop <= num_frames:
        raise ValueError(f"frame range {first}..{stop} is empty or outside 0..{num_frames}")
    length = stop - first
    if length <= plan.window:  # one window of all the frames, sampled as a short video
        offsets = sample_clip_indices(length, plan.clip)[0]
        return [Window(0, first, stop, offsets + first)]
    offsets = sample_clip_indices(plan.window, plan.clip)[0]  # the same for every window
    starts = range(first, stop - plan.window + 1, plan.stride)
    return [Window(k, s, s + plan.window, offsets + s) for k, s in enumerate(starts)]


def wanted_frames(windows: Sequence[Window]) -> NDArray[np.bool_]:
    """Mask over frames ``0 .. last window end - 1``: true where some window samples it."""
    mask = np.zeros(windows[-1].end_frame, dtype=bool)
    for window in windows:
        mask[window.frame_indices] = True
    return mask


def assemble_windows(
    frames: Iterable[TimedFrame],
    windows: Sequence[Window],
    *,
    fps: float,
    preprocess: PreprocessSpec = SINGLE_VIEW.preprocess,
    stats: TimelineStats | None = None,
    input_dtype: InputDType = "float32",
) -> Iterator[WindowClip]:
    """Frames in increasing index order -> each window's model input, as soon as it is complete.

    Each needed frame is resized, cropped and normalised once, on arrival, and kept only while
    a window not yet emitted starts at or before it. For a uint8-input model
    (``input_dtype="uint8"``) the crops are kept as bytes (``runtime.base.model_input``).
    ``frames`` must carry ``rgb`` for every frame a
    window samples (``wanted_frames``).
    """
    stats = stats if stats is not None else TimelineStats()
    frame_s = 1.0 / fps if fps > 0 else 0.0
    cache: dict[int, ModelInput] = {}  # frame index -> [3, S, S], insertion ordered
    start_times: dict[int, float] = {}
    next_window = 0
    stop = windows[-1].end_frame
    iterator = iter(frames)
    while next_window < len(windows):
        t0 = time.perf_counter()
        frame = next(iterator, None)
        t1 = time.perf_counter()
        stats.decode_s += t1 - t0
        if frame is None:
            window = windows[next_window]
            raise ValueError(
                f"frames ended before window {window.index} (frame {window.end_frame - 1})"
            )
        if frame.rgb is not None:
            crop = crop_views(frame.rgb[None], preprocess)  # [1 crop, 1 frame, S, S, 3]
            cache[frame.index] = model_input(crop, preprocess, input_dtype)[0, :, 0]  # [3, S, S]
            stats.peak_cached_frames = max(stats.peak_cached_frames, len(cache))
        stats.preprocess_s += time.perf_counter() - t1
        start_times[frame.index] = frame.time_s
        while next_window < len(windows) and frame.index >= windows[next_window].end_frame - 1:
            window = windows[next_window]
            t2 = time.perf_counter()
            clip_input = np.stack([cache[i] for i in window.frame_indices.tolist()], axis=1)
            stats.preprocess_s += time.perf_counter() - t2
            start_s = start_times.get(window.start_frame, window.start_frame * frame_s)
            yield WindowClip(window, start_s, frame.time_s + frame_s, clip_input)
            next_window += 1
            # frames before the next window's start are needed by no window to come
            keep_from = windows[next_window].start_frame if next_window < len(windows) else stop
            for index in [i for i in cache if i < keep_from]:
                del cache[index]
            for index in [i for i in start_times if i < keep_from]:
                del start_times[index]


def frame_range(
    info: VideoInfo, *, start_s: float | None = None, end_s: float | None = None
) -> tuple[int, int]:
    """``[first, stop)`` frames for a time range in seconds (frame = round(seconds * fps))."""
    duration_s = info.num_frames / info.fps if info.fps > 0 else float("nan")
    first = 0 if start_s is None else round(start_s * info.fps)
    stop = info.num_frames if end_s is None else min(info.num_frames, round(end_s * info.fps))
    if start_s is not None and start_s < 0:
        raise ValueError(f"--start must be >= 0 seconds, got {start_s}")
    if first >= info.num_frames:
        raise ValueError(
            f"--start {start_s} s is at or past the end of the video ({duration_s:.2f} s)"
        )
    if stop <= first:
        raise ValueError(f"--end {end_s} s must be after --start {start_s or 0} s")
    return first, stop

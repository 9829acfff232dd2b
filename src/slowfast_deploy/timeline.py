"""Action timelines of long videos: overlapping windows, each scored exactly as ``predict``
scores a video of the window's length.

Window ``k`` covers frames ``[s_k, s_k + window)`` with ``s_k = first + k * stride``, for as
many windows as fit; a range shorter than one window gets one window of all its frames. Inside
a window, frames are sampled as mmaction2's test pipeline samples a video of that many frames
(``sample_clip_indices(window, clip)`` offset by ``s_k``; windows of 32..62 frames wrap, as a
short video does), then resized, cropped and normalised by ``video.preprocess``, the code
``predict`` uses: a video one window long gives ``predict``'s scores.

One pass over the video, in order::

    frames ──(needed by a window? resize, crop, normalize_to_ncthw)──> frame cache
       │                                        (frames no future window needs are dropped:
    decoded once                                 memory is flat)
                                                       │ window complete: stack its frames
                                                       ▼
                          WindowRecord <── score_views <── batch of windows

Each frame is normalised once however many windows share it; normalisation is per element,
so a window's input is bit-identical to ``normalize_to_ncthw`` of its crops (tested).

``plan_windows`` / ``assemble_windows`` / ``score_windows`` are the pieces (windows in, records
out) for other engines; ``TimelineRun`` puts them together for one video file.
``smooth_scores`` and ``find_segments`` turn records into labelled segments; both are pure.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from queue import Empty, Full, Queue
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.pipeline import score_views
from slowfast_deploy.runtime.base import Backend, check_input_shape
from slowfast_deploy.specs import SINGLE_VIEW, ClipSpec, PreprocessSpec
from slowfast_deploy.video.decode import (
    Decoder,
    TimedFrame,
    VideoInfo,
    iter_frames,
    open_video,
)
from slowfast_deploy.video.preprocess import crop_views, normalize_to_ncthw
from slowfast_deploy.video.sampling import sample_clip_indices

T = TypeVar("T")


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
    input: NDArray[np.float32]  # [3, T, S, S], as normalize_to_ncthw makes it


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


@dataclass(frozen=True, slots=True)
class Segment:
    """Consecutive windows with the same smoothed top-1 class, scored at least the threshold.

    Boundaries lie midway between the centres of the windows on either side; the first and
    last segment of a timeline end at the edges of the windows.
    """

    class_index: int
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int  # exclusive
    first_window: int
    last_window: int
    mean_score: float  # mean smoothed score of the class over the segment's windows


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
) -> Iterator[WindowClip]:
    """Frames in increasing index order -> each window's model input, as soon as it is complete.

    Each needed frame is resized, cropped and normalised once, on arrival, and kept only while
    a window not yet emitted starts at or before it. ``frames`` must carry ``rgb`` for every frame a
    window samples (``wanted_frames``).
    """
    stats = stats if stats is not None else TimelineStats()
    frame_s = 1.0 / fps if fps > 0 else 0.0
    cache: dict[int, NDArray[np.float32]] = {}  # frame index -> [3, S, S], insertion ordered
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
            cache[frame.index] = normalize_to_ncthw(crop, preprocess)[0, :, 0]  # [3, S, S]
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


def score_windows(
    clips: Iterable[WindowClip],
    backend: Backend,
    *,
    batchsize: int = 1,
    stats: TimelineStats | None = None,
    prefetch: int = 0,
) -> Iterator[WindowRecord]:
    """Windows in, records out: ``batchsize`` windows per model call, one view each.

    The scores come from ``pipeline.score_views``, as ``predict``'s do. With ``prefetch`` > 0,
    ``clips`` (decoding, resizing, normalising) is consumed in a background thread, up to
    ``prefetch`` batches ahead of the model (decoders, OpenCV and numpy release the GIL, so
    this work overlaps inference).
    """
    if batchsize < 1:
        raise ValueError(f"batchsize must be >= 1, got {batchsize}")
    stats = stats if stats is not None else TimelineStats()
    batches: Generator[tuple[list[WindowClip], NDArray[np.float32]], None, None]
    batches = _model_inputs(clips, batchsize, stats)
    if prefetch > 0:
        batches = _in_background(batches, prefetch)
    try:
        for pending, batch in batches:
            t0 = time.perf_counter()
            scores = score_views(backend, batch[:, None])  # [N, 1, 3, T, S, S]: one view each
            stats.model_s += time.perf_counter() - t0
            for clip, row in zip(pending, scores, strict=True):
                w = clip.window
                yield WindowRecord(
                    w.index, w.start_frame, w.end_frame, clip.start_s, clip.end_s, row
                )
    finally:  # now, not when a traceback lets go: the decoding thread must stop first
        batches.close()


def _model_inputs(
    clips: Iterable[WindowClip], batchsize: int, stats: TimelineStats
) -> Generator[tuple[list[WindowClip], NDArray[np.float32]], None, None]:
    """Batches of ``batchsize`` windows and their model input ``[N, 3, T, S, S]``."""
    pending: list[WindowClip] = []
    for clip in clips:
        pending.append(clip)
        if len(pending) == batchsize:
            yield pending, _batch(pending, stats)
            pending = []
    if pending:
        yield pending, _batch(pending, stats)


def _batch(clips: list[WindowClip], stats: TimelineStats) -> NDArray[np.float32]:
    if len(clips) == 1:
        return clips[0].input[None]
    t0 = time.perf_counter()
    batch = np.stack([c.input for c in clips])
    stats.preprocess_s += time.perf_counter() - t0
    return batch


_DONE = object()


def _in_background(items: Iterator[T], depth: int) -> Generator[T, None, None]:
    """``items`` produced by a thread, at most ``depth`` ahead; its errors are re-raised here.

    Closing the generator (an exception or Ctrl-C in the consumer) stops the thread.
    """
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        _lower_thread_priority()
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put((item, None), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put((_DONE, None))
        except BaseException as err:  # handed to the consumer, which raises it
            queue.put((_DONE, err))

    thread = threading.Thread(target=produce, name="timeline-decode", daemon=True)
    thread.start()
    try:
        while True:
            item, err = queue.get()
            if err is not None:
                raise err
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(Empty):
                queue.get(timeout=0.1)
        thread.join()


def _lower_thread_priority() -> None:
    """Run the decoding thread at nice +5 (Linux nice is per thread): preempting one of the
    model's threads stalls all of them at the next barrier (see streaming.DECODER_NICE)."""
    try:
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), current + 5)
    except (AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
        pass


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


class TimelineRun:
    """One video's windows: open the file and plan; iterate to decode once and score.

    >>> with TimelineRun("match.mp4", backend, WindowPlan(64, 16)) as run:  # doctest: +SKIP
    ...     records = list(run)   # WindowRecord per window, in order
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        backend: Backend,
        plan: WindowPlan,
        *,
        decoder: Decoder = "pyav",  # sequential; flat memory beside OpenVINO (see README)
        start_s: float | None = None,
        end_s: float | None = None,
        batchsize: int = 1,
        prefetch: int = 2,
    ) -> None:
        size = plan.preprocess.crop_size
        check_input_shape(
            backend.input_shape,
            (batchsize, 1, 3, plan.clip.clip_len, size, size),
            model_path=backend.info.model_path,
        )
        self.path = str(path)
        self.backend = backend
        self.plan = plan
        self.batchsize = batchsize
        self.prefetch = prefetch  # batches decoded ahead in a thread; 0: decode inline
        self.stats = TimelineStats()
        self._records: Generator[WindowRecord, None, None] | None = None
        self._reader = open_video(path, decoder=decoder)
        try:
            self.info: VideoInfo = self._reader.info
            self.first_frame, self.stop_frame = frame_range(self.info, start_s=start_s, end_s=end_s)
            self.windows = plan_windows(
                self.info.num_frames, plan, first=self.first_frame, stop=self.stop_frame
            )
        except BaseException:
            self._reader.close()
            raise

    def __iter__(self) -> Iterator[WindowRecord]:
        frames = iter_frames(
            self._reader, wanted_frames(self.windows), first=self.windows[0].start_frame
        )
        clips = assemble_windows(
            frames,
            self.windows,
            fps=self.info.fps,
            preprocess=self.plan.preprocess,
            stats=self.stats,
        )
        self._records = score_windows(
            clips,
            self.backend,
            batchsize=self.batchsize,
            stats=self.stats,
            prefetch=self.prefetch,
        )
        return self._records

    def close(self) -> None:
        if self._records is not None:  # stops the decoding thread before the reader closes
            self._records.close()
        self._reader.close()

    def __enter__(self) -> TimelineRun:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# --- From records to segments (pure) ------------------------------------------------------


def smooth_scores(scores: NDArray[np.float32], k: int) -> NDArray[np.float32]:
    """Centred moving average over ``k`` windows (odd); at the ends, over the windows there are.

    ``scores`` is ``[windows, classes]``; rows of the result still sum to 1.
    """
    if k < 1 or k % 2 == 0:
        raise ValueError(f"smoothing must be an odd number of windows >= 1, got {k}")
    n = scores.shape[0]
    if k == 1 or n == 0:
        return scores.astype(np.float32, copy=True)
    half = k // 2
    csum = np.concatenate(
        [np.zeros((1, scores.shape[1])), np.cumsum(scores, axis=0, dtype=np.float64)]
    )
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    return ((csum[hi] - csum[lo]) / (hi - lo)[:, None]).astype(np.float32)


def window_boundaries(
    records: Sequence[WindowRecord],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Midpoints between consecutive window centres: ``(frames, seconds)``, each ``[n - 1]``."""
    centres_f = np.array([r.center_frame for r in records], dtype=np.float64)
    centres_s = np.array([r.center_s for r in records], dtype=np.float64)
    return (centres_f[:-1] + centres_f[1:]) / 2, (centres_s[:-1] + centres_s[1:]) / 2


def find_segments(
    records: Sequence[WindowRecord], smoothed: NDArray[np.float32], *, threshold: float = 0.0
) -> list[Segment]:
    """Merge consecutive windows whose smoothed top-1 is the same class and >= ``threshold``."""
    if len(records) != smoothed.shape[0]:
        raise ValueError(f"{len(records)} records but {smoothed.shape[0]} rows of scores")
    if not records:
        return []
    top = smoothed.argmax(axis=1)
    top_score = smoothed[np.arange(len(records)), top]
    mid_f, mid_s = window_boundaries(records)
    segments: list[Segment] = []
    k = 0
    while k < len(records):
        if top_score[k] < threshold:
            k += 1
            continue
        last = k
        while (
            last + 1 < len(records) and top[last + 1] == top[k] and top_score[last + 1] >= threshold
        ):
            last += 1
        segments.append(
            Segment(
                class_index=int(top[k]),
                start_s=records[0].start_s if k == 0 else float(mid_s[k - 1]),
                end_s=records[-1].end_s if last == len(records) - 1 else float(mid_s[last]),
                start_frame=records[0].start_frame if k == 0 else math.ceil(mid_f[k - 1]),
                end_frame=(
                    records[-1].end_frame if last == len(records) - 1 else math.ceil(mid_f[last])
                ),
                first_window=records[k].index,
                last_window=records[last].index,
                mean_score=float(top_score[k : last + 1].mean()),
            )
        )
        k = last + 1
    return segments


def top_classes(scores: NDArray[np.float32], k: int) -> list[tuple[int, float]]:
    """``(class, score)`` of the ``k`` best classes, best first (ties: lower class first)."""
    order = np.argsort(-scores, kind="stable")[:k]
    return [(int(i), float(scores[i])) for i in order]


@dataclass(slots=True)
class VideoTimeline:
    """One video's timeline as it is being built (``status``: ok, interrupted or failed)."""

    video: str
    plan: WindowPlan
    info: VideoInfo | None = None
    records: list[WindowRecord] = field(default_factory=list)
    num_windows: int = 0  # planned
    status: str = "running"
    error: str | None = None
    stats: TimelineStats = field(default_factory=TimelineStats)
    wall_s: float = 0.0

    def scores(self) -> NDArray[np.float32]:
        if not self.records:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([r.scores for r in self.records])

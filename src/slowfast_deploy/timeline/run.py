"""One pass over a video: decode once, assemble windows, score them in batches.

``score_windows`` scores windows with ``engine.scoring.score_views``, as ``predict`` scores
views; ``TimelineRun`` puts the pieces together for one file, and ``VideoTimeline`` is one
video's timeline as it is built (``open`` then ``run``), kept whole whatever stops it: a decode
failure is recorded, Ctrl-C leaves the windows done so far.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from queue import Empty, Full, Queue
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.engine.scoring import score_views
from slowfast_deploy.errors import VideoDecodeError
from slowfast_deploy.runtime.base import Backend, ModelInput, check_input_shape, input_dtype_of
from slowfast_deploy.timeline.windows import (
    TimelineStats,
    WindowClip,
    WindowPlan,
    WindowRecord,
    assemble_windows,
    frame_range,
    plan_windows,
    wanted_frames,
)
from slowfast_deploy.video.decode import Decoder, VideoInfo, iter_frames, open_video

T = TypeVar("T")


def score_windows(
    clips: Iterable[WindowClip],
    backend: Backend,
    *,
    batchsize: int = 1,
    stats: TimelineStats | None = None,
    prefetch: int = 0,
) -> Generator[WindowRecord, None, None]:
    """Windows in, records out: ``batchsize`` windows per model call, one view each.

    The scores come from ``engine.scoring.score_views``, as ``predict``'s do. With ``prefetch`` > 0,
    ``clips`` (decoding, resizing, normalising) is consumed in a background thread, up to
    ``prefetch`` batches ahead of the model (decoders, OpenCV and numpy release the GIL, so
    this work overlaps inference).
    """
    if batchsize < 1:
        raise ValueError(f"batchsize must be >= 1, got {batchsize}")
    stats = stats if stats is not None else TimelineStats()
    batches: Generator[tuple[list[WindowClip], ModelInput], None, None]
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
) -> Generator[tuple[list[WindowClip], ModelInput], None, None]:
    """Batches of ``batchsize`` windows and their model input ``[N, 3, T, S, S]``."""
    pending: list[WindowClip] = []
    for clip in clips:
        pending.append(clip)
        if len(pending) == batchsize:
            yield pending, _batch(pending, stats)
            pending = []
    if pending:
        yield pending, _batch(pending, stats)


def _batch(clips: list[WindowClip], stats: TimelineStats) -> ModelInput:
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
            input_dtype=input_dtype_of(self.backend),
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


@dataclass(slots=True)
class VideoTimeline:
    """One video's timeline as it is being built (``status``: running, ok, interrupted or
    failed). ``open`` then iterate ``run()``; whatever stops it, the windows done are kept.

    >>> timeline = VideoTimeline("match.mp4", WindowPlan(64, 16))  # doctest: +SKIP
    >>> if timeline.open(backend):
    ...     for record in timeline.run():  # WindowRecord per window, in order
    ...         ...
    """

    video: str
    plan: WindowPlan
    info: VideoInfo | None = None
    records: list[WindowRecord] = field(default_factory=list)
    num_windows: int = 0  # planned
    status: str = "running"
    error: str | None = None
    stats: TimelineStats = field(default_factory=TimelineStats)
    wall_s: float = 0.0
    _run: TimelineRun | None = None
    _t0: float = 0.0

    def open(
        self,
        backend: Backend,
        *,
        decoder: Decoder = "pyav",
        start_s: float | None = None,
        end_s: float | None = None,
        batchsize: int = 1,
    ) -> bool:
        """Open the video and plan its windows; False (status ``failed``, ``error`` set) when
        the video cannot be read or the time range does not fit it."""
        self._t0 = time.perf_counter()
        try:
            self._run = TimelineRun(
                self.video,
                backend,
                self.plan,
                decoder=decoder,
                start_s=start_s,
                end_s=end_s,
                batchsize=batchsize,
            )
        except (VideoDecodeError, ValueError) as err:
            self.status, self.error = "failed", str(err)
            return False
        self.info, self.num_windows = self._run.info, len(self._run.windows)
        self.stats = self._run.stats
        return True

    def run(self) -> Iterator[WindowRecord]:
        """Decode once and score every window, keeping each record as it comes. A decoding
        error mid-way fails the video (records kept); anything that stops the iteration
        early (Ctrl-C, the caller stopping) leaves it ``interrupted``."""
        if self._run is None:
            raise RuntimeError("VideoTimeline.run() before a successful open()")
        try:
            with self._run as windows:
                for record in windows:
                    self.records.append(record)
                    yield record
            self.status = "ok"
        except (VideoDecodeError, ValueError) as err:
            self.status, self.error = "failed", str(err)
        finally:
            self.wall_s = time.perf_counter() - self._t0
            if self.status == "running":
                self.status = "interrupted"
            self._run = None

    def scores(self) -> NDArray[np.float32]:
        if not self.records:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([r.scores for r in self.records])

    def timing(self) -> dict[str, float]:
        """Where the wall time went, in seconds (the ``timing`` of the JSON output)."""
        return {
            "wall_s": round(self.wall_s, 3),
            "decode_s": round(self.stats.decode_s, 3),
            "preprocess_s": round(self.stats.preprocess_s, 3),
            "model_s": round(self.stats.model_s, 3),
        }

    def speed_line(self) -> str:
        """One line: windows, video seconds, the real-time factor and the share of each stage."""
        records, stats = self.records, self.stats
        fps = self.info.fps if self.info else 0.0
        video_s = (records[-1].end_frame - records[0].start_frame) / fps if records and fps else 0.0
        wall = max(self.wall_s, 1e-9)
        return (
            f"{self.video}: {len(records)} windows, {video_s:.1f} s of video in {wall:.1f} s "
            f"({video_s / wall:.2f}x real time; decode {stats.decode_s / wall:.0%}, "
            f"preprocess {stats.preprocess_s / wall:.0%}, model {stats.model_s / wall:.0%})"
        )

"""Timelines of many videos with one model: the loop of ``slowfast-deploy timeline``.

``Timelines`` builds one ``VideoTimeline`` per video, one after another, with one backend, and
yields each when it is done or has failed. Whatever stops the loop (Ctrl-C, the caller), every
timeline started stays in ``timelines`` with its status (the current one ``interrupted``, its
windows kept), so the partial result can be written: ``render`` gives the text of the
``timeline`` command (JSON, CSV, SRT), ``plot`` and ``annotate`` its pictures.

>>> model = sd.open_model("slowfast.onnx")  # doctest: +SKIP
>>> timelines = model.timeline(["match.mp4"], window=64, stride=16, smooth=3)
>>> for timeline in timelines:            # VideoTimeline, status "ok" or "failed"
...     print(timeline.video, len(timeline.records))
>>> text = timelines.render("json")[0]    # exactly what `slowfast-deploy timeline` prints
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slowfast_deploy.labels import names_for
from slowfast_deploy.runtime.base import Backend, check_input_shape
from slowfast_deploy.timeline.output import (
    SegmentOptions,
    render_timelines,
    timeline_records,
    timeline_segments,
)
from slowfast_deploy.timeline.render import annotate_video, frame_labels, plot_timeline
from slowfast_deploy.timeline.run import VideoTimeline
from slowfast_deploy.timeline.segments import smooth_scores
from slowfast_deploy.timeline.windows import WindowPlan, WindowRecord
from slowfast_deploy.video.decode import Decoder

# wraps one video's windows as they are scored (a progress bar): the library never shows one
WindowsHook = Callable[[VideoTimeline, Iterator[WindowRecord]], Iterable[WindowRecord]]


@dataclass(frozen=True, slots=True)
class TimelineOptions:
    """Everything about a timeline but its videos and model: the windows, how they are read
    (``decoder``, the ``start_s``..``end_s`` range, ``batchsize`` windows per model call) and
    how they are written (``topk`` classes per window, ``segments``)."""

    plan: WindowPlan = WindowPlan()  # noqa: RUF009 - frozen, so sharing it is safe
    decoder: Decoder = "pyav"  # sequential; flat memory beside OpenVINO (see README)
    start_s: float | None = None
    end_s: float | None = None
    batchsize: int = 1
    topk: int = 5
    segments: SegmentOptions = SegmentOptions()  # noqa: RUF009 - frozen

    def __post_init__(self) -> None:
        if self.start_s is not None and self.start_s < 0:
            raise ValueError(f"start_s must be >= 0 seconds, got {self.start_s}")
        if self.end_s is not None and self.end_s <= (self.start_s or 0.0):
            raise ValueError(
                f"end_s ({self.end_s} s) must be after start_s ({self.start_s or 0} s)"
            )
        if self.batchsize < 1:
            raise ValueError(f"batchsize must be >= 1, got {self.batchsize}")
        if self.topk < 1:
            raise ValueError(f"topk must be >= 1, got {self.topk}")


class Timelines:
    """The timelines of ``videos``, built in order with one open ``backend`` (see the module
    doc). ``labels``: class names (line i = class i); they name the classes only if they are
    as many as the model's (``names``). ``windows``: wraps each video's windows as they come
    (a progress bar). ``owns_backend``: close the backend when the loop ends."""

    def __init__(
        self,
        videos: Sequence[str | os.PathLike[str]],
        backend: Backend,
        options: TimelineOptions | None = None,
        *,
        labels: Sequence[str] | None = None,
        windows: WindowsHook | None = None,
        owns_backend: bool = False,
    ) -> None:
        self.options = options if options is not None else TimelineOptions()
        plan = self.options.plan
        size = plan.preprocess.crop_size
        check_input_shape(  # fails here, before any decoding
            backend.input_shape,
            (self.options.batchsize, 1, 3, plan.clip.clip_len, size, size),
            model_path=backend.info.model_path,
        )
        self.videos = [str(v) for v in videos]
        self.backend = backend
        self.names = labels  # None once a record shows they do not fit the model
        self.timelines: list[VideoTimeline] = []  # every one started, in order
        self._windows = windows
        self.owns_backend = owns_backend
        self._started = False

    def __iter__(self) -> Iterator[VideoTimeline]:
        """Each video's timeline once it is ``ok`` or ``failed``, in order. Anything that stops
        the loop leaves the current one ``interrupted`` (its windows kept) and propagates."""
        if self._started:
            raise RuntimeError("Timelines are iterated once; build another")
        self._started = True
        options = self.options
        try:
            for video in self.videos:
                timeline = VideoTimeline(video, options.plan)
                self.timelines.append(timeline)
                opened = timeline.open(
                    self.backend,
                    decoder=options.decoder,
                    start_s=options.start_s,
                    end_s=options.end_s,
                    batchsize=options.batchsize,
                )
                if opened:
                    records: Iterable[WindowRecord] = timeline.run()
                    if self._windows is not None:
                        records = self._windows(timeline, iter(records))
                    for record in records:
                        self.names = names_for(self.names, len(record.scores))
                yield timeline
        finally:
            if self.owns_backend:
                self.backend.close()

    def run(self) -> list[VideoTimeline]:
        """Build every timeline; the list of them (``failed`` ones included)."""
        for _ in self:
            pass
        return self.timelines

    def _built(self) -> list[VideoTimeline]:
        """The timelines, built now if the loop has not been started."""
        return self.timelines if self._started else self.run()

    @property
    def num_windows(self) -> int:
        """Windows scored so far, all videos."""
        return sum(len(t.records) for t in self.timelines)

    def to_dicts(self) -> list[dict[str, Any]]:
        """The records of ``timeline --format json``: one per video started (all of them, built
        now, if the loop has not been started)."""
        return timeline_records(
            self._built(),
            topk=self.options.topk,
            segments=self.options.segments,
            labels=self.names,
        )

    def render(self, fmt: str = "json") -> list[str]:
        """The text of ``timeline --format fmt``: one text for ``json`` and ``csv`` (every
        video started; all of them, built now, if the loop has not been started), one per
        video for ``srt``."""
        return render_timelines(
            self._built(),
            fmt=fmt,
            topk=self.options.topk,
            segments=self.options.segments,
            labels=self.names,
        )

    def plot(self, timeline: VideoTimeline, path: str | os.PathLike[str]) -> bool:
        """A PNG of ``timeline``'s top classes over time; False (nothing written) when it has
        no windows."""
        if not timeline.records:
            return False
        segments = self.options.segments
        smoothed = smooth_scores(timeline.scores(), segments.smooth)
        found = timeline_segments(timeline, smooth=segments.smooth, threshold=segments.threshold)
        plan = self.options.plan
        title = f"{Path(timeline.video).name}: window {plan.window} frames, stride {plan.stride}"
        if segments.smooth > 1:
            title += f", smoothed over {segments.smooth}"
        plot_timeline(path, timeline.records, smoothed, found, labels=self.names, title=title)
        return True

    def annotated_range(self, timeline: VideoTimeline) -> tuple[int, int]:
        """The frames ``[first, stop)`` an annotated video of ``timeline`` covers: from its
        first window to the end of the range asked for (or of its last window, if later)."""
        if not timeline.records:
            return 0, 0
        first = timeline.records[0].start_frame
        stop = int(timeline.info.num_frames) if timeline.info else 0
        if self.options.end_s is not None and timeline.info is not None:
            stop = min(stop, round(self.options.end_s * timeline.info.fps))
        return first, max(timeline.records[-1].end_frame, stop)

    def annotate(
        self,
        timeline: VideoTimeline,
        path: str | os.PathLike[str],
        *,
        on_frame: Callable[[], None] | None = None,
    ) -> int:
        """Re-encode ``timeline``'s video (H.264, no audio) over ``annotated_range`` with the
        current label drawn; the frames written (0: no windows, nothing written)."""
        if not timeline.records:
            return 0
        segments = self.options.segments
        smoothed = smooth_scores(timeline.scores(), segments.smooth)
        found = timeline_segments(timeline, smooth=segments.smooth, threshold=segments.threshold)
        first, stop = self.annotated_range(timeline)
        return annotate_video(
            timeline.video,
            path,
            frame_labels(timeline.records, smoothed, found, labels=self.names),
            first=first,
            stop=stop,
            on_frame=on_frame,
        )

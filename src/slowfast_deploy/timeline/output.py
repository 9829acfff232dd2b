"""Timelines as text: JSON (windows + segments), CSV (one row per window), SRT (segments).

Pure functions from ``VideoTimeline`` to strings; the CLI decides where they go.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.engine.scoring import top_k
from slowfast_deploy.labels import class_name
from slowfast_deploy.timeline.run import VideoTimeline
from slowfast_deploy.timeline.segments import Segment, find_segments, smooth_scores
from slowfast_deploy.timeline.windows import WindowRecord

FORMATS = ("json", "csv", "srt")


@dataclass(frozen=True, slots=True)
class SegmentOptions:
    """How window scores become segments: a centred moving average over ``smooth`` windows
    (odd), then a segment needs a smoothed top-1 score of at least ``threshold``."""

    smooth: int = 1
    threshold: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.smooth, int) or self.smooth < 1 or self.smooth % 2 == 0:
            raise ValueError(f"smooth must be an odd number of windows >= 1, got {self.smooth}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be a score in 0..1, got {self.threshold}")


def top_classes(scores: NDArray[np.float32], k: int) -> list[tuple[int, float]]:
    """``(class, score)`` of the ``k`` best classes, best first (``engine.scoring.top_k``)."""
    return [(int(c), float(scores[c])) for c in top_k(scores, k)]


def timeline_segments(timeline: VideoTimeline, *, smooth: int, threshold: float) -> list[Segment]:
    return find_segments(
        timeline.records, smooth_scores(timeline.scores(), smooth), threshold=threshold
    )


def _class(index: int, score: float, labels: Sequence[str] | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"class": index}
    if labels is not None:
        entry["name"] = class_name(index, labels)
    entry["score"] = round(score, 6)
    return entry


def window_entry(
    record: WindowRecord,
    smoothed: NDArray[np.float32] | None,
    *,
    topk: int,
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One window of a timeline record (``smoothed``: its smoothed scores, when smoothing)."""
    entry: dict[str, Any] = {
        "index": record.index,
        "start_frame": record.start_frame,
        "end_frame": record.end_frame,
        "start_s": round(record.start_s, 4),
        "end_s": round(record.end_s, 4),
        "topk": [_class(c, s, labels) for c, s in top_classes(record.scores, topk)],
    }
    if smoothed is not None:
        entry["smoothed_top1"] = _class(*top_classes(smoothed, 1)[0], labels)
    return entry


def segment_entry(seg: Segment, *, labels: Sequence[str] | None = None) -> dict[str, Any]:
    """One segment of a timeline record."""
    entry: dict[str, Any] = {"class": seg.class_index}
    if labels is not None:
        entry["name"] = class_name(seg.class_index, labels)
    entry |= {
        "start_s": round(seg.start_s, 4),
        "end_s": round(seg.end_s, 4),
        "start_frame": seg.start_frame,
        "end_frame": seg.end_frame,
        "windows": [seg.first_window, seg.last_window],
        "mean_score": round(seg.mean_score, 6),
    }
    return entry


def timeline_record(
    timeline: VideoTimeline,
    *,
    topk: int,
    smooth: int,
    threshold: float,
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One video's timeline as a JSON-able dict: settings, windows, segments."""
    info = timeline.info
    smoothed = smooth_scores(timeline.scores(), smooth)
    windows = [
        window_entry(record, row if smooth > 1 else None, topk=topk, labels=labels)
        for record, row in zip(timeline.records, smoothed, strict=True)
    ]
    segments = [
        segment_entry(seg, labels=labels)
        for seg in find_segments(timeline.records, smoothed, threshold=threshold)
    ]
    return {
        "video": timeline.video,
        "status": timeline.status,
        **({"error": timeline.error} if timeline.error else {}),
        "fps": info.fps if info else None,
        "num_frames": info.num_frames if info else None,
        "window": timeline.plan.window,
        "stride": timeline.plan.stride,
        "smooth": smooth,
        "threshold": threshold,
        "windows_done": len(timeline.records),
        "windows_planned": timeline.num_windows,
        "windows": windows,
        "segments": segments,
    }


def to_json(records: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(records), indent=2, ensure_ascii=False) + "\n"


def to_csv(records: Sequence[dict[str, Any]], *, topk: int, with_names: bool) -> str:
    """One row per window of every video; columns ``class_1, name_1, score_1, ...``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["video", "window", "start_frame", "end_frame", "start_s", "end_s"]
    for rank in range(1, topk + 1):
        header += [f"class_{rank}", *([f"name_{rank}"] if with_names else []), f"score_{rank}"]
    writer.writerow(header)
    for record in records:
        for window in record["windows"]:
            row = [record["video"]] + [
                window[k] for k in ("index", "start_frame", "end_frame", "start_s", "end_s")
            ]
            for top in window["topk"]:
                row += [top["class"], *([top["name"]] if with_names else []), top["score"]]
            writer.writerow(row)
    return out.getvalue()


def srt_time(seconds: float) -> str:
    """``HH:MM:SS,mmm`` (SubRip), rounded to the millisecond."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{ms:03d}"


def to_srt(record: dict[str, Any]) -> str:
    """The segments of one video as SubRip subtitles: ``name score`` while each lasts."""
    return "\n".join(
        srt_block(
            number,
            seg.get("name", f"class {seg['class']}"),
            seg["start_s"],
            seg["end_s"],
            seg["mean_score"],
        )
        for number, seg in enumerate(record["segments"], start=1)
    )


def srt_block(
    number: int, name: str, start_s: float, end_s: float, score: float, *, offset_s: float = 0.0
) -> str:
    """One subtitle: ``name score`` from ``start_s`` to ``end_s``, ``offset_s`` added."""
    start, end = srt_time(start_s + offset_s), srt_time(end_s + offset_s)
    return f"{number}\n{start} --> {end}\n{name} {score:.2f}\n"


def timeline_records(
    timelines: Sequence[VideoTimeline],
    *,
    topk: int,
    segments: SegmentOptions,
    labels: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The JSON records of ``timelines`` (``timeline_record``), with ``timing`` for videos
    that have windows."""
    records = []
    for timeline in timelines:
        record = timeline_record(
            timeline,
            topk=topk,
            smooth=segments.smooth,
            threshold=segments.threshold,
            labels=labels,
        )
        if timeline.info is not None and timeline.records:
            record["timing"] = timeline.timing()
        records.append(record)
    return records


def render_timelines(
    timelines: Sequence[VideoTimeline],
    *,
    fmt: str,
    topk: int,
    segments: SegmentOptions,
    labels: Sequence[str] | None = None,
) -> list[str]:
    """The text of ``timelines`` in ``fmt``: one text for ``json`` and ``csv`` (all videos),
    one per video for ``srt``. JSON records carry ``timing`` for videos that have windows."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    records = timeline_records(timelines, topk=topk, segments=segments, labels=labels)
    if fmt == "json":
        return [to_json(records)]
    if fmt == "csv":
        return [to_csv(records, topk=topk, with_names=labels is not None)]
    return [to_srt(record) for record in records]

"""Timelines as text: JSON (windows + segments), CSV (one row per window), SRT (segments).

Pure functions from ``VideoTimeline`` to strings; the CLI decides where they go.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from slowfast_deploy.timeline import (
    Segment,
    VideoTimeline,
    find_segments,
    smooth_scores,
    top_classes,
)

FORMATS = ("json", "csv", "srt")


def class_name(index: int, labels: Sequence[str] | None) -> str:
    return labels[index] if labels is not None and index < len(labels) else f"class {index}"


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
    windows = []
    for record, row in zip(timeline.records, smoothed, strict=True):
        entry: dict[str, Any] = {
            "index": record.index,
            "start_frame": record.start_frame,
            "end_frame": record.end_frame,
            "start_s": round(record.start_s, 4),
            "end_s": round(record.end_s, 4),
            "topk": [_class(c, s, labels) for c, s in top_classes(record.scores, topk)],
        }
        if smooth > 1:
            entry["smoothed_top1"] = _class(*top_classes(row, 1)[0], labels)
        windows.append(entry)
    segments = []
    for seg in find_segments(timeline.records, smoothed, threshold=threshold):
        entry = {"class": seg.class_index}
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
        segments.append(entry)
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
    blocks = []
    for number, seg in enumerate(record["segments"], start=1):
        name = seg.get("name", f"class {seg['class']}")
        blocks.append(
            f"{number}\n{srt_time(seg['start_s'])} --> {srt_time(seg['end_s'])}\n"
            f"{name} {seg['mean_score']:.2f}\n"
        )
    return "\n".join(blocks)

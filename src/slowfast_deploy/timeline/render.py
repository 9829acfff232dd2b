"""Timelines as pictures: a plot of class probabilities over time, and the video annotated.

matplotlib (the ``report`` extra, which brings Pillow) draws the plot; the annotated video is
decoded and re-encoded with PyAV as H.264 (libx264, else libopenh264), audio dropped, each frame
carrying the current label and score drawn with Pillow in matplotlib's bundled DejaVu Sans (so
accented, Greek and Cyrillic class names are legible).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy._optional import require
from slowfast_deploy.engine.scoring import top_k
from slowfast_deploy.errors import BackendUnavailableError, VideoDecodeError
from slowfast_deploy.timeline.segments import Segment, window_boundaries
from slowfast_deploy.timeline.windows import WindowRecord

H264_ENCODERS = ("libx264", "libopenh264")


def _name(index: int, labels: Sequence[str] | None) -> str:
    return labels[index] if labels is not None and index < len(labels) else f"class {index}"


def plot_classes(
    smoothed: NDArray[np.float32], segments: Sequence[Segment], *, max_classes: int = 5
) -> list[int]:
    """The classes worth plotting: segment labels by total duration, then by mean score."""
    duration: dict[int, float] = {}
    for seg in segments:
        duration[seg.class_index] = duration.get(seg.class_index, 0.0) + seg.end_s - seg.start_s
    chosen = sorted(duration, key=lambda c: -duration[c])[:max_classes]
    for c in top_k(smoothed.mean(axis=0), smoothed.shape[1]).tolist():
        if len(chosen) >= max_classes:
            break
        if c not in chosen:
            chosen.append(int(c))
    return chosen


def plot_timeline(
    path: str | os.PathLike[str],
    records: Sequence[WindowRecord],
    smoothed: NDArray[np.float32],
    segments: Sequence[Segment],
    *,
    labels: Sequence[str] | None = None,
    title: str = "",
    max_classes: int = 5,
) -> Path:
    """PNG: probabilities of the top classes at each window centre, segments as bands."""
    require("matplotlib", extra="report", purpose="--plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = plot_classes(smoothed, segments, max_classes=max_classes)
    colours = {c: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(classes)}
    centres = np.array([r.center_s for r in records])
    fig, ax = plt.subplots(figsize=(10, 3.6), dpi=100)
    try:
        span_s = (records[-1].end_s - records[0].start_s) if records else 0.0
        for seg in segments:
            colour = colours.get(seg.class_index, (0.6, 0.6, 0.6, 1.0))
            ax.axvspan(seg.start_s, seg.end_s, color=colour, alpha=0.15, linewidth=0)
            if seg.end_s - seg.start_s > 0.08 * span_s:  # name the band where it fits
                ax.text(
                    (seg.start_s + seg.end_s) / 2,
                    0.98,
                    _name(seg.class_index, labels),
                    ha="center",
                    va="top",
                    fontsize=7,
                    color=colour,
                    clip_on=True,
                )
        for c in classes:
            ax.plot(centres, smoothed[:, c], color=colours[c], label=_name(c, labels), lw=1.6)
        if records:
            ax.set_xlim(records[0].start_s, records[-1].end_s)
        ax.set_ylim(0, 1)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("probability")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out


def h264_encoder() -> str:
    """The first H.264 encoder PyAV's FFmpeg offers, or an error naming what is missing."""
    av = require("av", extra="av", purpose="--annotate")
    for name in H264_ENCODERS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # PyAV raises UnknownCodecError (a ValueError) or FFmpegError
            continue
        return name
    raise BackendUnavailableError(
        f"--annotate needs an H.264 encoder ({' or '.join(H264_ENCODERS)}) in PyAV's FFmpeg; "
        "none is available: install the PyAV wheel from PyPI (it bundles libx264)"
    )


@lru_cache(maxsize=8)
def _font(size: int) -> Any:
    import matplotlib
    from PIL import ImageFont

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return ImageFont.truetype(str(font), size)


@lru_cache(maxsize=256)
def _text_overlay(text: str, size: int) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """``text`` white on a dark box: RGB ``[h, w, 3]`` and alpha ``[h, w, 1]`` in 0..1."""
    from PIL import Image, ImageDraw

    font = _font(size)
    left, top, right, bottom = font.getbbox(text)
    pad = max(2, size // 4)
    image = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (0, 0, 0, 170))
    ImageDraw.Draw(image).text((pad - left, pad - top), text, font=font, fill=(255, 255, 255, 255))
    rgba: NDArray[np.uint8] = np.asarray(image, dtype=np.uint8)
    alpha: NDArray[np.float32] = rgba[..., 3:].astype(np.float32) / np.float32(255)
    return np.ascontiguousarray(rgba[..., :3]), alpha


def draw_label(frame: NDArray[np.uint8], text: str) -> NDArray[np.uint8]:
    """``frame`` ``[H, W, 3]`` with ``text`` in a box at its top-left corner (in place)."""
    height, width = frame.shape[:2]
    rgb, alpha = _text_overlay(text, max(12, height // 16))
    margin = max(2, height // 60)
    h = min(rgb.shape[0], height - margin)
    w = min(rgb.shape[1], width - margin)
    if h <= 0 or w <= 0:
        return frame
    region = frame[margin : margin + h, margin : margin + w].astype(np.float32)
    a = alpha[:h, :w]
    blended = region * (1 - a) + rgb[:h, :w].astype(np.float32) * a
    frame[margin : margin + h, margin : margin + w] = (blended + 0.5).astype(np.uint8)
    return frame


def frame_labels(
    records: Sequence[WindowRecord],
    smoothed: NDArray[np.float32],
    segments: Sequence[Segment],
    *,
    labels: Sequence[str] | None = None,
) -> Callable[[int], str | None]:
    """Frame index -> the text to draw: the label of the segment it lies in and the smoothed
    score of that class in its nearest window (the one whose centre is closest), or None."""
    if not records:
        return lambda index: None
    mid_f, _ = window_boundaries(records)
    window_class = np.full(len(records), -1)
    position = {r.index: i for i, r in enumerate(records)}
    for seg in segments:
        window_class[position[seg.first_window] : position[seg.last_window] + 1] = seg.class_index
    first, stop = records[0].start_frame, records[-1].end_frame

    def text(index: int) -> str | None:
        if not first <= index < stop:
            return None
        k = int(np.searchsorted(mid_f, index, side="right"))
        c = int(window_class[k])
        return None if c < 0 else f"{_name(c, labels)}  {smoothed[k, c]:.2f}"

    return text


def annotate_video(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    label_of: Callable[[int], str | None],
    *,
    first: int = 0,
    stop: int | None = None,
    on_frame: Callable[[], None] | None = None,
) -> int:
    """Re-encode frames ``first .. stop - 1`` of ``src`` to ``dst`` (H.264, no audio) with
    ``label_of(frame index)`` drawn on each; returns the number of frames written.

    Presentation times are kept (shifted to start at 0). The file is closed properly even
    when interrupted, so what was written plays.
    """
    av = require("av", extra="av", purpose="--annotate")
    encoder = h264_encoder()
    written = 0
    try:
        source = av.open(str(src))
    except av.FFmpegError as err:
        raise VideoDecodeError(f"{src}: PyAV cannot open it for --annotate ({err})") from err
    with source, av.open(str(dst), "w") as sink:
        in_stream = source.streams.video[0]
        rate = in_stream.average_rate or in_stream.guessed_rate or 25
        out_stream = sink.add_stream(encoder, rate=rate)
        width = in_stream.width + in_stream.width % 2
        height = in_stream.height + in_stream.height % 2
        out_stream.width, out_stream.height, out_stream.pix_fmt = width, height, "yuv420p"
        time_base = in_stream.time_base
        out_stream.time_base = time_base
        first_pts = None
        try:
            for index, frame in enumerate(source.decode(in_stream)):
                if stop is not None and index >= stop:
                    break
                if index < first:
                    continue
                rgb = frame.to_ndarray(format="rgb24")
                if rgb.shape[:2] != (height, width):  # H.264 4:2:0 needs even sizes: repeat edge
                    pad = ((0, height - rgb.shape[0]), (0, width - rgb.shape[1]), (0, 0))
                    rgb = np.pad(rgb, pad, "edge")
                text = label_of(index)
                if text:
                    draw_label(rgb, text)
                out = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                if frame.pts is not None:
                    first_pts = frame.pts if first_pts is None else first_pts
                    out.pts, out.time_base = frame.pts - first_pts, time_base
                else:
                    out.pts, out.time_base = written, 1 / Fraction(rate)
                sink.mux(out_stream.encode(out))
                written += 1
                if on_frame is not None:
                    on_frame()
        finally:  # flush the encoder, also when interrupted, so what was written plays
            sink.mux(out_stream.encode())
    return written

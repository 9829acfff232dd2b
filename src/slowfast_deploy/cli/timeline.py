"""``slowfast-deploy timeline``: what happens when in long videos (windows, segments, plot,
annotated video)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from slowfast_deploy._files import write_text_atomic
from slowfast_deploy._optional import require
from slowfast_deploy.cli._model_args import add_model_args, open_model
from slowfast_deploy.cli._progress import progress
from slowfast_deploy.cli._status import ExitStatus, UsageError, note
from slowfast_deploy.cli._types import positive_int
from slowfast_deploy.labels import resolve_labels
from slowfast_deploy.specs import MODEL_SPECS, ClipSpec
from slowfast_deploy.timeline.output import SegmentOptions
from slowfast_deploy.timeline.render import h264_encoder
from slowfast_deploy.timeline.run import VideoTimeline
from slowfast_deploy.timeline.videos import TimelineOptions, Timelines
from slowfast_deploy.timeline.windows import WindowPlan, WindowRecord
from slowfast_deploy.video.decode import DECODERS


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "timeline",
        help="action timeline of long videos: per-window top-k, segments, plot, annotated video",
        description="Score overlapping windows of each video (each exactly as `predict` scores "
        "a video of the window's length), decoding it once, and merge them into segments.",
    )
    p.add_argument("videos", nargs="+", type=Path, metavar="VIDEO")
    add_model_args(p)
    w = p.add_argument_group("windows")
    w.add_argument("--window", type=int, default=64, help="frames per window, >= 32 (default: 64)")
    w.add_argument(
        "--stride", type=int, default=16, help="frames from one window to the next (default: 16)"
    )
    w.add_argument("--start", type=float, default=None, metavar="S", help="start at S seconds")
    w.add_argument("--end", type=float, default=None, metavar="S", help="stop at S seconds")
    w.add_argument("--batchsize", type=positive_int, default=1, help="windows per model call")
    w.add_argument(
        "--decoder",
        choices=DECODERS,
        default="pyav",
        help="default: pyav (reads in order, as a timeline does; frames equal decord's, and "
        "memory stays flat next to OpenVINO, where decord's swings by gigabytes)",
    )
    o = p.add_argument_group("timeline")
    o.add_argument("--topk", type=positive_int, default=5, help="classes listed per window")
    o.add_argument(
        "--label-map",
        "--label_map",
        type=Path,
        help="class names, one per line (Kinetics-400: the sorted class names)",
    )
    o.add_argument(
        "--smooth",
        type=int,
        default=1,
        metavar="K",
        help="centred moving average of the scores over K windows, K odd (default: 1, none)",
    )
    o.add_argument(
        "--threshold",
        type=float,
        default=0.0,
        metavar="P",
        help="a segment needs a smoothed top-1 score >= P (default: 0)",
    )
    o.add_argument("--format", choices=("json", "csv", "srt"), default="json")
    o.add_argument(
        "--out",
        type=Path,
        help="write here instead of stdout (a directory for --format srt with several videos)",
    )
    o.add_argument(
        "--plot", type=Path, help="PNG of the top classes over time (a directory: several videos)"
    )
    o.add_argument(
        "--annotate",
        type=Path,
        help="re-encode the video (H.264, no audio) with the current label drawn "
        "(a directory: several videos)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    # the library checks the values (a ValueError is a usage error, exit 2)
    plan = WindowPlan(args.window, args.stride, ClipSpec(clip_len=MODEL_SPECS[args.spec].clip_len))
    segments = SegmentOptions(args.smooth, args.threshold)
    if args.start is not None and args.start < 0:
        raise UsageError(f"--start must be >= 0 seconds, got {args.start}")
    if args.end is not None and args.end <= (args.start or 0.0):
        raise UsageError(f"--end ({args.end} s) must be after --start ({args.start or 0} s)")
    options = TimelineOptions(
        plan,
        decoder=args.decoder,
        start_s=args.start,
        end_s=args.end,
        batchsize=args.batchsize,
        topk=args.topk,
        segments=segments,
    )
    several = len(args.videos) > 1
    if several and args.format == "srt" and args.out is None:
        raise UsageError("--format srt with several videos needs --out DIR (one .srt per video)")
    if several and len({v.stem for v in args.videos}) < len(args.videos):
        raise UsageError("several videos with the same file name; run them in separate calls")
    targets = _prepare_targets(args, several)  # fails here, before any decoding
    labels: Sequence[str] | None = resolve_labels(args.label_map)  # Kinetics-400 by default

    def bar(timeline: VideoTimeline, windows: Iterator[WindowRecord]) -> Any:
        name = Path(timeline.video).name
        total = timeline.num_windows
        return progress(windows, total=total, desc=name, quiet=args.quiet, unit="window")

    timelines = Timelines(args.videos, open_model(args), options, labels=labels, windows=bar)
    try:
        for timeline, video in zip(timelines, args.videos, strict=False):
            if timeline.status == "failed":
                print(f"failed: {video}: {timeline.error}", file=sys.stderr)
                continue
            note(args, timeline.speed_line())
            _draw(timelines, timeline, targets, video, args)
    except KeyboardInterrupt:
        _write_text(timelines, args, targets)
        last = timelines.timelines[-1] if timelines.timelines else None
        if last is not None and last.status == "interrupted" and last.records:
            _plot(timelines, last, targets["plot"], Path(last.video), args)
        where, done = args.out or "stdout", timelines.num_windows
        print(f"interrupted: kept the {done} windows done in {where}", file=sys.stderr)
        raise
    _write_text(timelines, args, targets)
    failed = sum(t.status == "failed" for t in timelines.timelines)
    return ExitStatus.SOME_FAILED if failed else ExitStatus.OK


def _prepare_targets(args: argparse.Namespace, several: bool) -> dict[str, Any]:
    """Output paths, checked writable now so that a typo fails before hours of decoding."""
    targets: dict[str, Any] = {"out": args.out, "plot": args.plot, "annotate": args.annotate}
    if args.annotate is not None:
        h264_encoder()
    if args.plot is not None:
        require("matplotlib", extra="report", purpose="--plot")
    dirs = {"plot": several, "annotate": several, "out": several and args.format == "srt"}
    suffix = {"plot": ".png", "annotate": ".mp4", "out": ".srt"}
    for key, is_dir in dirs.items():
        path = targets[key]
        if path is None:
            continue
        if is_dir:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise OSError(
                    f"{path}: cannot create the output directory ({err.strerror}); "
                    f"give --{key} a writable directory"
                ) from err
            for video in args.videos:
                _check_writable(path / f"{video.stem}{suffix[key]}", key)
        else:
            _check_writable(path, key)
    return targets


def _check_writable(path: Path, flag: str) -> None:
    existed = path.exists()
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a directory")
        with open(path, "ab"):
            pass
        if not existed:
            path.unlink()
    except OSError as err:
        raise OSError(
            f"{path}: cannot write --{flag} there ({err.strerror}); give a writable file path"
        ) from err


def _target(path: Path | None, video: Path, suffix: str, is_dir: bool) -> Path | None:
    if path is None:
        return None
    return path / f"{video.stem}{suffix}" if is_dir else path


def _draw(
    timelines: Timelines,
    timeline: VideoTimeline,
    targets: dict[str, Any],
    video: Path,
    args: argparse.Namespace,
) -> None:
    _plot(timelines, timeline, targets["plot"], video, args)
    dst = _target(targets["annotate"], video, ".mp4", len(args.videos) > 1)
    if dst is None or not timeline.records:
        return
    first, stop = timelines.annotated_range(timeline)
    bar = progress(
        range(stop - first),
        total=stop - first,
        desc=f"annotate {video.name}",
        quiet=args.quiet,
        unit="frame",
    )
    update = getattr(bar, "update", None)  # tqdm on a terminal; nothing otherwise
    try:
        count = timelines.annotate(
            timeline, dst, on_frame=(lambda: update(1)) if update is not None else None
        )
    finally:
        bar.close()
    note(args, f"annotated video: {dst} ({count} frames, H.264, audio dropped)")


def _plot(
    timelines: Timelines,
    timeline: VideoTimeline,
    path: Path | None,
    video: Path,
    args: argparse.Namespace,
) -> None:
    dst = _target(path, video, ".png", len(args.videos) > 1)
    if dst is not None and timelines.plot(timeline, dst):
        note(args, f"plot: {dst}")


def _write_text(timelines: Timelines, args: argparse.Namespace, targets: dict[str, Any]) -> None:
    out: Path | None = targets["out"]
    texts = timelines.render(args.format)
    if args.format == "srt" and len(args.videos) > 1 and out is not None:
        for text, video in zip(texts, args.videos, strict=False):
            write_text_atomic(out / f"{video.stem}.srt", text)
        return
    text = texts[0] if texts else ""
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_text_atomic(out, text)

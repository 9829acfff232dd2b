"""``slowfast-deploy watch``: recognise actions on live streams (RTSP, RTMP, HTTP/HLS,
UDP/TCP MPEG-TS, SRT, V4L2 cameras, files), many at once with one model, with bounded latency.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import IO, Any

from slowfast_deploy.cli._model_args import add_model_args, model_config
from slowfast_deploy.cli._status import ExitStatus, UsageError, note
from slowfast_deploy.cli._types import positive_int
from slowfast_deploy.labels import resolve_labels
from slowfast_deploy.live.run import watch
from slowfast_deploy.live.sources import check_names, parse_source, read_sources_file
from slowfast_deploy.live.subtitles import SubtitleFiles
from slowfast_deploy.live.webhook import Webhook
from slowfast_deploy.specs import MODEL_SPECS, ClipSpec
from slowfast_deploy.timeline.windows import WindowPlan


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "watch",
        help="live streams: per-window actions, segments and stream state as JSON Lines",
        description="Watch live sources with one model: windows exactly as `timeline` cuts "
        "and scores them, batched across streams, dropped (oldest first, counted) rather "
        "than late. Events go out as JSON Lines, one per line, flushed.",
    )
    p.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="rtsp:// rtmp:// http(s):// udp:// tcp:// srt:// URL, /dev/videoN, or a video file",
    )
    p.add_argument(
        "--sources",
        dest="sources_file",
        type=Path,
        metavar="FILE",
        help="more sources, one per line: SOURCE [NAME] (# comments)",
    )
    add_model_args(p)
    s = p.add_argument_group("sources")
    s.add_argument(
        "--realtime",
        action="store_true",
        help="play files at their frame rate, as a camera would (default: as fast as they "
        "decode, dropping nothing)",
    )
    s.add_argument("--rtsp-transport", choices=("tcp", "udp"), default="tcp")
    s.add_argument(
        "--reconnect",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="reopen a stream that ends, errors or stalls, with capped backoff (default: on "
        "for network sources and cameras, off for files)",
    )
    s.add_argument(
        "--stall-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="a network stream with no data for S seconds is lost (default: 10)",
    )
    s.add_argument(
        "--open-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="give up opening a network source after S seconds (default: 10)",
    )
    w = p.add_argument_group("windows and batching")
    w.add_argument("--window", type=int, default=64, help="frames per window, >= 32 (default: 64)")
    w.add_argument(
        "--stride", type=int, default=16, help="frames from one window to the next (default: 16)"
    )
    w.add_argument(
        "--max-batch", type=positive_int, default=4, help="windows per model call (default: 4)"
    )
    w.add_argument(
        "--max-wait-ms",
        type=float,
        default=50.0,
        metavar="MS",
        help="the longest a window waits for others to fill a batch (default: 50)",
    )
    w.add_argument(
        "--max-latency",
        type=float,
        default=1.0,
        metavar="S",
        help="latency budget: older windows are dropped, oldest first (default: 1 s)",
    )
    o = p.add_argument_group("events")
    o.add_argument("--topk", type=positive_int, default=5, help="classes listed per window")
    o.add_argument(
        "--label-map", type=Path, help="class names, one per line (default: Kinetics-400)"
    )
    o.add_argument(
        "--smooth",
        type=int,
        default=1,
        metavar="K",
        help="segments: centred moving average over K windows, K odd; delays segment events "
        "by K//2 windows (default: 1)",
    )
    o.add_argument(
        "--threshold",
        type=float,
        default=0.0,
        metavar="P",
        help="a segment needs a smoothed top-1 score >= P (default: 0)",
    )
    o.add_argument("--scores", action="store_true", help="window events carry every class score")
    o.add_argument(
        "--events", type=Path, metavar="FILE", help="append events here instead of stdout"
    )
    o.add_argument(
        "--stats-every",
        type=float,
        default=None,
        metavar="S",
        help="per-stream windows/s, p50/p99 latency and drops every S seconds",
    )
    o.add_argument("--srt-dir", type=Path, metavar="DIR", help="one subtitle file per stream")
    o.add_argument("--webhook", metavar="URL", help="POST segment events here (JSON)")
    o.add_argument(
        "--webhook-timeout", type=float, default=2.0, metavar="S", help="per POST (default: 2)"
    )
    o.add_argument(
        "--webhook-retries", type=int, default=2, metavar="N", help="per event (default: 2)"
    )
    p.set_defaults(run=run)


class Terminated(Exception):
    """SIGTERM arrived: stop as for Ctrl-C (exit 143)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated


def run(args: argparse.Namespace) -> int:
    sources = [parse_source(s) for s in args.sources]
    if args.sources_file is not None:
        sources += read_sources_file(args.sources_file)
    if not sources:
        raise UsageError("give at least one SOURCE, or --sources FILE")
    check_names(sources)
    plan = WindowPlan(args.window, args.stride, ClipSpec(clip_len=MODEL_SPECS[args.spec].clip_len))
    labels = resolve_labels(args.label_map)
    webhook = (
        Webhook(args.webhook, timeout_s=args.webhook_timeout, retries=args.webhook_retries)
        if args.webhook
        else None
    )
    out: IO[str] = sys.stdout
    if args.events is not None:
        try:
            out = open(args.events, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as err:
            raise OSError(f"{args.events}: cannot write --events there ({err.strerror})") from err
    subtitles = SubtitleFiles(args.srt_dir, [s.name for s in sources]) if args.srt_dir else None
    failed: list[str] = []

    def emit(event: dict[str, Any]) -> None:
        out.write(json.dumps(event, ensure_ascii=False) + "\n")
        out.flush()
        kind = event["event"]
        if subtitles is not None:
            subtitles.add(event)
        if webhook is not None and kind in ("segment_start", "segment_end"):
            webhook.post(event)
        if kind == "stream_failed":  # the one plain line
            failed.append(event["stream"])
            print(f"failed: {event['message']} ({event['reason']})", file=sys.stderr, flush=True)
        elif kind in ("stream_lost", "stream_restored", "stream_ended"):
            note(args, f"{kind.replace('_', ' ')}: {event['stream']} ({event['reason']})")
        elif kind == "stats":
            note(args, _stats_line(event))

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    status: int = ExitStatus.OK
    session = None
    try:
        session = watch(
            sources,
            model_config(args),
            plan=plan,
            max_batch=args.max_batch,
            max_wait_ms=args.max_wait_ms,
            max_latency_s=args.max_latency,
            topk=args.topk,
            smooth=args.smooth,
            threshold=args.threshold,
            labels=labels,
            realtime=args.realtime,
            reconnect=args.reconnect,
            stall_timeout_s=args.stall_timeout,
            open_timeout_s=args.open_timeout,
            rtsp_transport=args.rtsp_transport,
            stats_every_s=args.stats_every,
            scores=args.scores,
        )
        for event in session:
            emit(event)
    except (KeyboardInterrupt, Terminated) as err:
        status = ExitStatus.INTERRUPTED if isinstance(err, KeyboardInterrupt) else 143
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the flush below is not cut short
        if session is not None:
            for event in session.finish():
                emit(event)
        print("interrupted: outputs flushed", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if webhook is not None:
            webhook.close()
            report = webhook.report()
            out.write(json.dumps({"event": "webhook", **report}) + "\n")
            out.flush()
            note(
                args,
                f"webhook {report['url']}: {report['sent']} sent, {report['failed']} failed, "
                f"{report['dropped']} dropped",
            )
        if subtitles is not None:
            subtitles.close()
        if out is not sys.stdout:
            out.close()
    if status != ExitStatus.OK:
        return status
    if failed and len(failed) == len(sources):
        return ExitStatus.ERROR
    return ExitStatus.SOME_FAILED if failed else ExitStatus.OK


def _stats_line(event: dict[str, Any]) -> str:
    def s(value: Any) -> str:
        return "-" if value is None else f"{value:.2f} s"

    final = "final " if event["final"] else ""
    return (
        f"{final}stats {event['stream']}: {event['windows']} windows "
        f"({event['windows_per_s'] or 0:.2f}/s), latency p50 {s(event['latency_p50_s'])} "
        f"p99 {s(event['latency_p99_s'])}, dropped {event['dropped']} "
        f"({event['dropped_total']} in all), {event['state']}"
    )

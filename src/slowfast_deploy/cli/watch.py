"""``slowfast-deploy watch``: recognise actions on live streams (RTSP, RTMP, HTTP/HLS,
UDP/TCP MPEG-TS, SRT, V4L2 cameras, files), many at once with one model, with bounded latency.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from slowfast_deploy.cli._model_args import add_model_args, model_config
from slowfast_deploy.cli._status import ExitStatus, UsageError
from slowfast_deploy.cli._types import positive_int
from slowfast_deploy.labels import resolve_labels
from slowfast_deploy.live.events import DeliveryReport, Event, StatsEvent, StreamEvent
from slowfast_deploy.live.run import watch
from slowfast_deploy.live.sinks import Sink, SinkOptions, open_sinks
from slowfast_deploy.live.sources import check_names, parse_source, read_sources_file
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
    o.add_argument(
        "--mqtt",
        metavar="URL",
        help="publish every event at QoS 1 to mqtt://HOST:PORT/PREFIX, topics "
        "PREFIX/<stream>/<event>; credentials from SLOWFAST_DEPLOY_MQTT_USERNAME/_PASSWORD",
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
    notes = _Notes(quiet=args.quiet)
    sinks = _open_sinks(args, [s.name for s in sources], notes)
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
            sinks=sinks,
        )
        for _ in session:  # the sinks write every event
            pass
    except (KeyboardInterrupt, Terminated) as err:
        status = ExitStatus.INTERRUPTED if isinstance(err, KeyboardInterrupt) else 143
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the flush below is not cut short
        if session is not None:
            session.finish()
        print("interrupted: outputs flushed", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if session is not None:  # after any other error too: every output closed
            session.finish()  # (nothing left to do when it finished)
    if status != ExitStatus.OK:
        return status
    if notes.failed and len(notes.failed) == len(sources):
        return ExitStatus.ERROR
    return ExitStatus.SOME_FAILED if notes.failed else ExitStatus.OK


def _open_sinks(args: argparse.Namespace, streams: list[str], notes: _Notes) -> list[Sink]:
    """The outputs the flags ask for (``notes`` right after the events, so that it hears the
    webhook's and MQTT's counts at the end)."""
    options = SinkOptions(
        events=sys.stdout if args.events is None else args.events,
        srt_dir=args.srt_dir,
        webhook=args.webhook,
        webhook_timeout_s=args.webhook_timeout,
        webhook_retries=args.webhook_retries,
        mqtt=args.mqtt,
    )
    return open_sinks(options, streams, after_events=[notes])


class _Notes:
    """The lines on stderr: one per stream that fails (always), state changes, statistics and
    the webhook's counts (unless ``-q``); keeps the names of the streams that failed."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.failed: list[str] = []

    def write(self, event: Event) -> None:
        if isinstance(event, StreamEvent) and event.kind == "stream_failed":  # the plain line
            self.failed.append(event.stream)
            print(f"failed: {event.message} ({event.reason})", file=sys.stderr, flush=True)
        elif isinstance(event, StreamEvent) and event.kind != "stream_opened":
            self._note(f"{event.kind.replace('_', ' ')}: {event.stream} ({event.reason})")
        elif isinstance(event, StatsEvent):
            self._note(_stats_line(event))
        elif isinstance(event, DeliveryReport):
            self._note(
                f"{event.kind} {event.url}: {event.sent} sent, {event.failed} failed, "
                f"{event.dropped} dropped"
            )

    def close(self) -> None:
        pass

    def _note(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr)


def _stats_line(event: StatsEvent) -> str:
    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    final = "final " if event.final else ""
    return (
        f"{final}stats {event.stream}: {event.windows} windows "
        f"({event.windows_per_s or 0:.2f}/s), latency p50 {s(event.latency_p50_s)} "
        f"p99 {s(event.latency_p99_s)}, dropped {event.dropped} "
        f"({event.dropped_total} in all), {event.state}"
    )

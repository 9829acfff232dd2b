"""Where a watch's events go: every output is a ``Sink``, ``write(event)`` then ``close()``.

- ``JsonLinesSink``: each event's JSON on one line of a stream or file, flushed;
- ``SubtitleSink``: one SubRip file per stream, a subtitle appended as each segment ends;
- ``WebhookSink``: segment events POSTed as JSON from a bounded queue (never blocks).

``open_sinks(SinkOptions(...), streams)`` opens the outputs ``watch``'s flags name (JSON Lines,
``--srt-dir``, ``--webhook``, ``--mqtt``: ``live.mqtt``), for the CLI, ``sd.watch`` and the
server alike. ``watch(..., sinks=[...])`` writes every event to each sink in order, in the
thread that iterates it, and closes them when it finishes: in reverse order, each report a
sink gives at closing (a ``DeliveryReport``: what the webhook or MQTT sent, failed and
dropped) written to the sinks before it, still open. A new output is one class with these two
methods.

Subtitle times run from the stream's first opening: a connection's stream times are shifted by
the wall time between the first opening and its own, so reconnects keep one timeline per file
(a file source read once gives the SRT ``timeline --format srt`` gives).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlparse

from slowfast_deploy.live.events import (
    DeliveryReport,
    Event,
    SegmentEndEvent,
    SegmentStartEvent,
    StreamEvent,
)
from slowfast_deploy.live.mqtt import MqttSink
from slowfast_deploy.timeline.output import srt_block

logger = logging.getLogger(__name__)


class Sink(Protocol):
    """An output of a watch's events."""

    def write(self, event: Event) -> None:
        """Take one event; must not block for long (the model waits meanwhile)."""

    def close(self) -> Event | None:
        """Flush and release; what the sink has to report at the end (or None)."""


def close_sinks(sinks: Sequence[Sink]) -> list[Event]:
    """Close ``sinks`` in reverse order, writing what each reports to the ones before it;
    every sink is closed even if one fails (the first error is raised after)."""
    reports: list[Event] = []
    error: BaseException | None = None
    for i in reversed(range(len(sinks))):
        try:
            report = sinks[i].close()
            if report is not None:
                reports.append(report)
                for earlier in sinks[:i]:
                    earlier.write(report)
        except BaseException as err:  # the others still close; raised below
            error = error or err
    if error is not None:
        raise error
    return reports


@dataclass(frozen=True, slots=True)
class SinkOptions:
    """The outputs of a watch, as ``watch``'s flags name them; each ``None`` is left out.

    ``events``: JSON Lines to a text stream (left open) or a file (appended to); ``srt_dir``:
    one subtitle file per stream; ``webhook``: segment events POSTed as JSON; ``mqtt``: every
    event to ``mqtt://HOST:PORT/PREFIX`` (``live.mqtt.MqttSink``).
    """

    events: IO[str] | str | os.PathLike[str] | None = None
    srt_dir: str | os.PathLike[str] | None = None
    webhook: str | None = None
    webhook_timeout_s: float = 2.0
    webhook_retries: int = 2
    mqtt: str | None = None


def open_sinks(
    options: SinkOptions, streams: Sequence[str], *, after_events: Sequence[Sink] = ()
) -> list[Sink]:
    """The sinks ``options`` name for ``streams`` (their names), in the order every event
    goes to them: JSON Lines, then ``after_events`` (say, a console's lines), subtitles, the
    webhook, MQTT, so the senders' reports at closing reach every sink before them. One that
    cannot open closes the ones already open and raises (``OSError``, ``ValueError``,
    ``ConnectionError``) with one plain line naming the input."""
    opened: list[Sink] = []
    try:
        if options.events is not None:
            try:
                opened.append(JsonLinesSink(options.events))
            except OSError as err:
                where = options.events
                raise OSError(f"{where}: cannot write the events there ({err.strerror})") from err
        opened += after_events
        if options.srt_dir is not None:
            opened.append(SubtitleSink(options.srt_dir, streams))
        if options.webhook is not None:
            opened.append(
                WebhookSink(
                    options.webhook,
                    timeout_s=options.webhook_timeout_s,
                    retries=options.webhook_retries,
                )
            )
        if options.mqtt is not None:
            opened.append(MqttSink(options.mqtt))
    except BaseException:
        with contextlib.suppress(Exception):
            close_sinks([s for s in opened if s not in after_events])
        raise
    return opened


class JsonLinesSink:
    """Each event's JSON (``to_dict``) on one line, flushed per line: to ``out``, a text
    stream (left open) or a file path (appended to, closed at the end)."""

    def __init__(self, out: IO[str] | str | os.PathLike[str]) -> None:
        if isinstance(out, str | os.PathLike):
            self._out: IO[str] = open(out, "a", encoding="utf-8")  # noqa: SIM115 - see close
            self._owned = True
        else:
            self._out, self._owned = out, False

    def write(self, event: Event) -> None:
        self._out.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        self._out.flush()

    def close(self) -> None:
        if self._owned:
            self._out.close()
        else:
            self._out.flush()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def srt_file_name(name: str, taken: set[str]) -> str:
    """A file name for a stream's name (URL or path): unsafe runs become ``_``; unique."""
    stem = _UNSAFE.sub("_", name).strip("._") or "stream"
    candidate, n = f"{stem}.srt", 2
    while candidate in taken:
        candidate, n = f"{stem}-{n}.srt", n + 1
    taken.add(candidate)
    return candidate


class SubtitleSink:
    """``directory/<stream>.srt`` for each of ``streams`` (their names, as events give them),
    created now, a subtitle appended and flushed as each ``segment_end`` comes."""

    def __init__(self, directory: str | os.PathLike[str], streams: Sequence[str]) -> None:
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OSError(
                f"{directory}: cannot create the --srt-dir directory ({err.strerror})"
            ) from err
        taken: set[str] = set()
        self.paths = {name: directory / srt_file_name(name, taken) for name in streams}
        self._files: dict[str, IO[str]] = {}
        self._numbers: dict[str, int] = {}
        self._first_wall: dict[str, float] = {}
        self._offsets: dict[tuple[str, int], float] = {}
        for name, path in self.paths.items():
            self._files[name] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - see close
            self._numbers[name] = 0

    def write(self, event: Event) -> None:
        if isinstance(event, StreamEvent) and event.stream in self._files:
            if event.kind in ("stream_opened", "stream_restored") and event.connection is not None:
                first = self._first_wall.setdefault(event.stream, event.wall)
                self._offsets[(event.stream, event.connection)] = event.wall - first
        elif isinstance(event, SegmentEndEvent) and event.stream in self._files:
            name = event.stream
            self._numbers[name] += 1
            offset = self._offsets.get((name, event.connection), 0.0)
            out = self._files[name]
            if self._numbers[name] > 1:
                out.write("\n")
            text = srt_block(
                self._numbers[name],
                event.label,
                event.start_s,
                event.end_s,
                event.mean_score,
                offset_s=offset,
            )
            out.write(text)
            out.flush()

    def close(self) -> None:
        for out in self._files.values():
            out.close()


_STOP = object()


class WebhookSink:
    """Segment events POSTed to ``url`` as JSON, never holding up recognition: a bounded
    queue (``write`` never blocks: when it is full the event is dropped and counted) and one
    thread that POSTs each with a timeout and ``retries`` more tries (doubling pauses)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 2.0,
        retries: int = 2,
        queue_size: int = 256,
        backoff_s: float = 0.25,
    ) -> None:
        if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
            raise ValueError(f"webhook must be an http:// or https:// URL, got {url!r}")
        if not timeout_s > 0:
            raise ValueError(f"webhook_timeout_s must be > 0 seconds, got {timeout_s}")
        if retries < 0:
            raise ValueError(f"webhook_retries must be >= 0, got {retries}")
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.sent = 0
        self.failed = 0  # events given up on after every retry
        self.dropped = 0  # events that found the queue full, or were left at close
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._thread.start()

    def write(self, event: Event) -> None:
        if isinstance(event, SegmentStartEvent | SegmentEndEvent):
            self.post(event.to_dict())

    def post(self, body: dict[str, Any]) -> None:
        """Queue ``body`` for POSTing as JSON; never blocks."""
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            with self._lock:
                self.dropped += 1

    def close(self, timeout_s: float = 5.0) -> DeliveryReport:
        """Send what is queued for at most ``timeout_s`` more (the rest counts as dropped);
        what was sent, failed and dropped."""
        deadline = time.monotonic() + timeout_s
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout_s)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._closing.set()  # a sender still retrying gives up at once
        self._thread.join(self.timeout_s + 0.5)
        left = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            left += item is not _STOP
        with self._lock:
            self.dropped += left
        return self.report()

    def report(self) -> DeliveryReport:
        with self._lock:
            return DeliveryReport("webhook", self.url, self.sent, self.failed, self.dropped)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            ok = self._send(item)
            with self._lock:
                if ok:
                    self.sent += 1
                else:
                    self.failed += 1

    def _send(self, body: dict[str, Any]) -> bool:
        data = json.dumps(body, ensure_ascii=False).encode()
        request = urllib.request.Request(
            self.url, data=data, headers={"Content-Type": "application/json"}, method="POST"
        )
        pause = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    if 200 <= response.status < 300:
                        return True
                    why = f"HTTP {response.status}"
            except urllib.error.HTTPError as err:
                why = f"HTTP {err.code}"
            except (urllib.error.URLError, OSError) as err:  # refused, timeout, reset
                why = str(getattr(err, "reason", err))
            logger.info("webhook %s: attempt %d failed (%s)", self.url, attempt + 1, why)
            if attempt < self.retries and self._closing.wait(pause):
                break
            pause *= 2
        return False

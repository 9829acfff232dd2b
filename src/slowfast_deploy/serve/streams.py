"""Live streams behind the service: ``watch`` (``live``) per registered stream, one model.

``POST /v1/streams`` ``{"source": URL, "name": NAME}`` starts a ``live.Watch`` of that source
in a thread of its own; its windows go into the server's one queue (``model_loop``), beside
every request's clips, so one model is fed by every source (as in DeepStream) and a stream is
batched once, with ``watch``'s drops and turns across all served streams.
``GET /v1/streams[/{name}]`` gives each stream's state and latest labels;
``GET /v1/streams/{name}/events`` its events as server-sent events (one JSON event per
``data:`` line, the same JSON as ``watch`` prints); ``DELETE /v1/streams/{name}`` stops it.

Sources are checked like any client-named location: a URL only under ``--allow-url`` (its
scheme included: ``rtsp://host:8554/`` allows RTSP), a file or device only under
``--allow-dir``. A slow SSE client loses events (counted in ``dropped``), never the server's
memory: each subscriber has a bounded queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slowfast_deploy.engine.scoring import TopClassDict
from slowfast_deploy.errors import Reason
from slowfast_deploy.live import Watch, WatchOptions, parse_source
from slowfast_deploy.live.events import Event, StreamEvent, WindowEvent
from slowfast_deploy.live.pending import SharedQueue
from slowfast_deploy.live.sinks import Sink, close_sinks
from slowfast_deploy.live.sources import Source
from slowfast_deploy.runtime import Backend
from slowfast_deploy.serve.problems import Problem
from slowfast_deploy.serve.security import check_url, resolve_server_path
from slowfast_deploy.timeline.output import window_class_entry

logger = logging.getLogger(__name__)

SinkFactory = Callable[[str], Sequence[Sink]]  # a stream's name -> its outputs

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SUBSCRIBER_QUEUE = 256  # events a slow SSE client may be behind before it loses some
RECENT_EVENTS = 64  # kept per stream, replayed to a new subscriber
HEARTBEAT_S = 10.0  # an SSE comment when idle, so a gone client is noticed
_STATE_OF = {
    "stream_opened": "playing",
    "stream_restored": "playing",
    "stream_lost": "reconnecting",
    "stream_ended": "ended",
    "stream_failed": "failed",
}


@dataclass
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, object] | None]
    dropped: int = 0


@dataclass
class LiveStream:
    """One registered stream: its watch, its thread, what the page and clients read."""

    source: Source
    watch: Watch
    state: str = "starting"
    labels: list[TopClassDict] = field(default_factory=list)  # latest window's top-k
    windows: int = 0
    last_event_wall: float | None = None
    latency_s: float | None = None
    error: str | None = None
    recent: deque[dict[str, object]] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    subscribers: list[_Subscriber] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None

    def describe(self) -> dict[str, object]:
        return {
            "name": self.source.name,
            "source": self.source.url,
            "kind": self.source.kind,
            "state": self.state,
            "labels": self.labels,
            "windows": self.windows,
            "latency_s": self.latency_s,
            "last_event_wall": self.last_event_wall,
            **({"error": self.error} if self.error else {}),
        }

    def publish(self, event: dict[str, object] | None) -> None:
        """Hand ``event`` (None: the end) to every subscriber, dropping for full queues."""
        with self.lock:
            if event is not None:
                self.recent.append(event)
            subscribers = list(self.subscribers)
        for sub in subscribers:
            sub.loop.call_soon_threadsafe(_offer, sub, event)

    def run(self) -> None:
        try:
            for event in self.watch:
                self._update(event)
                self.publish(event.to_dict())  # the JSON that `watch` prints
        except Exception as err:  # a stream's failure ends that stream, never the server
            logger.exception("stream %s failed", self.source.name)
            self.state, self.error = "failed", str(err)
            self.watch.finish()  # its threads stop, its windows leave the server's queue
        finally:
            if self.state not in ("failed", "ended"):
                self.state = "stopped"
            self.publish(None)

    def _update(self, event: Event) -> None:
        if isinstance(event, WindowEvent):
            self.labels = [window_class_entry(top) for top in event.topk]
            self.windows += 1
            self.latency_s = event.latency_s
            self.last_event_wall = event.emit_wall
        elif isinstance(event, StreamEvent) and event.kind in _STATE_OF:
            self.state = _STATE_OF[event.kind]
            if event.kind == "stream_failed":
                self.error = event.message


def _offer(sub: _Subscriber, event: dict[str, object] | None) -> None:
    try:
        sub.queue.put_nowait(event)
    except asyncio.QueueFull:
        sub.dropped += 1
        if event is None:  # the end must arrive: make room for it
            sub.queue.get_nowait()
            sub.queue.put_nowait(None)


class StreamRegistry:
    """The streams of one server; at most ``max_streams`` at a time."""

    def __init__(
        self,
        backend: Backend,
        queue: SharedQueue,
        *,
        allow_dirs: tuple[str, ...],
        allow_urls: tuple[str, ...],
        labels: list[str] | None,
        max_batch: int,
        max_streams: int = 16,
    ) -> None:
        self._backend, self._queue = backend, queue
        self.allow_dirs, self.allow_urls = allow_dirs, allow_urls
        self.labels = labels
        self.max_batch = max_batch
        self.max_streams = max_streams
        self.streams: dict[str, LiveStream] = {}
        self._lock = threading.Lock()
        self.closed = False

    def _source(self, text: str, name: str) -> Source:
        try:
            source = parse_source(text, name)
        except ValueError as err:
            raise Problem(Reason.BAD_REQUEST, str(err)) from err
        if source.kind == "network":
            check_url(source.url, self.allow_urls)
            return source
        path = source.url.removeprefix("file://") if source.url.startswith("file://") else text
        resolved = resolve_server_path(path, self.allow_dirs)
        return Source(str(resolved), name, source.kind)

    def add(self, spec: Any, sinks: SinkFactory | None = None) -> LiveStream:
        """Start watching ``spec``'s source; ``sinks(name)`` (called once the request is
        accepted) are the watch's outputs besides its events (``live.sinks``)."""
        if not isinstance(spec, dict) or not isinstance(spec.get("source"), str):
            raise Problem(Reason.BAD_REQUEST, 'send {"source": URL, "name": NAME}')
        name = spec.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise Problem(
                Reason.BAD_REQUEST,
                f"name must be 1-64 letters, digits, '_', '.', '-' (first a letter or digit), "
                f"got {name!r}",
            )
        source = self._source(spec["source"], name)
        with self._lock:
            if self.closed:
                raise Problem(Reason.NOT_READY, "the server is shutting down")
            if name in self.streams:
                raise Problem(Reason.CONFLICT, f"a stream named {name!r} exists; delete it first")
            if len(self.streams) >= self.max_streams:
                raise Problem(
                    Reason.QUEUE_FULL, f"this server watches at most {self.max_streams} streams"
                )
            options = WatchOptions(max_batch=self.max_batch, realtime=True)
            outputs = sinks(name) if sinks is not None else []
            try:
                watch = Watch(
                    [source],
                    self._backend,
                    options,
                    labels=self.labels,
                    sinks=outputs,
                    queue=self._queue,
                )
            except BaseException:
                close_sinks(outputs)
                raise
            stream = LiveStream(source, watch)
            stream.thread = threading.Thread(
                target=stream.run, name=f"serve-stream-{name}", daemon=True
            )
            self.streams[name] = stream
        stream.thread.start()
        logger.info("stream %s: watching %s", name, source.url)
        return stream

    def get(self, name: str) -> LiveStream:
        stream = self.streams.get(name)
        if stream is None:
            raise Problem(Reason.UNKNOWN_STREAM, f"no stream named {name!r}")
        return stream

    def remove(self, name: str, *, wait_s: float = 5.0) -> LiveStream:
        with self._lock:
            stream = self.get(name)
            del self.streams[name]
        stream.watch.stop()
        if stream.thread is not None:
            stream.thread.join(wait_s)
        logger.info("stream %s: removed", name)
        return stream

    def close(self) -> None:
        with self._lock:
            self.closed = True
            names = list(self.streams)
        for name in names:
            self.remove(name, wait_s=2.0)

    async def events(self, name: str, draining: asyncio.Event) -> AsyncIterator[bytes]:
        """Server-sent events of stream ``name``: the recent ones, then live ones, until the
        stream ends, is removed, or the server drains."""
        stream = self.get(name)
        sub = _Subscriber(asyncio.get_running_loop(), asyncio.Queue(SUBSCRIBER_QUEUE))
        with stream.lock:
            backlog = list(stream.recent)
            ended = stream.thread is not None and not stream.thread.is_alive()
            stream.subscribers.append(sub)
        try:
            for old in backlog:
                yield _sse(old)
            if ended:
                return
            while not draining.is_set():
                try:
                    event = await asyncio.wait_for(sub.queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if event is None:
                    return
                yield _sse(event)
        finally:
            with stream.lock:
                if sub in stream.subscribers:
                    stream.subscribers.remove(sub)


def _sse(event: dict[str, object]) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()


__all__ = ["LiveStream", "StreamRegistry"]

"""Watch many live streams with one model: the events of ``slowfast-deploy watch``.

>>> w = watch(["rtsp://127.0.0.1:8554/cam1", "cam2.mp4"], "slowfast.onnx")  # doctest: +SKIP
>>> for event in w:                         # typed events; event.to_dict(): what the CLI prints
...     if isinstance(event, WindowEvent):
...         print(event.stream, event.topk[0], event.latency_s)

``sinks`` (``live.sinks``: JSON Lines, subtitle files, a webhook, ...) get every event as it
is yielded, and are closed when the watch finishes.

Threads and data::

    StreamWorker (one thread per source: decode, windows) ──put──> BatchQueue (per-stream
                                                                      │ queues; take: a batch
    events <── segments, stats <── window events <── score_windows <──┘ is due; this generator)

The model runs in the thread that iterates the watch, so a consumer that falls behind makes
windows age and be dropped, never queue without bound. A served watch (``queue=`` the
server's ``engine.batching.BatchQueue``) puts its windows in the server's one queue instead:
the server's model loop scores them with every other stream's and request's work
(``pending.score_routed``) and hands each watch its share, in order; its drops and turns are the
same rules. Events (``live.events``, every one names its stream):

- ``window``: ``timeline``'s window record (``timeline.output.window_entry``: index, frames,
  stream times ``start_s``/``end_s``, top-k) plus ``stream``, ``connection`` (0, then +1 per
  reconnect: frames and window indices restart with it), ``arrival_wall`` (wall time its last
  frame arrived), ``emit_wall`` (wall time this decision was emitted), ``latency_s`` (the
  difference), and ``scores`` (all classes) when asked for;
- ``segment_start`` / ``segment_end``: segments as ``timeline`` finds them (``segment_entry``
  fields), ``smooth // 2`` windows after the windows that decide them;
- ``stream_opened``, ``stream_lost`` (``reason``), ``stream_restored`` (``reason``, ``down_s``),
  ``stream_ended``, ``stream_failed`` (``reason``, ``message``: one plain sentence);
- ``stats`` per stream, every ``stats_every_s`` and once at the end (``final``).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, runtime_checkable

import numpy as np

from slowfast_deploy.engine.batching import BatchQueue, Take
from slowfast_deploy.labels import names_for, resolve_labels
from slowfast_deploy.live.events import (
    Event,
    SegmentEndEvent,
    SegmentStart,
    SegmentStartEvent,
    SegmentTracker,
    StreamStats,
    WindowEvent,
)
from slowfast_deploy.live.pending import (
    Mailbox,
    Notice,
    OwnInlet,
    PendingWindow,
    SharedInlet,
    SharedQueue,
)
from slowfast_deploy.live.sinks import Sink, close_sinks
from slowfast_deploy.live.sources import (
    OpenOptions,
    RtspTransport,
    Source,
    check_names,
    parse_source,
)
from slowfast_deploy.live.stream import Reconnect, StreamWorker
from slowfast_deploy.runtime import Backend, ModelConfig
from slowfast_deploy.runtime.base import check_input_shape, input_dtype_of, run_batched
from slowfast_deploy.timeline.run import score_windows
from slowfast_deploy.timeline.segments import Segment
from slowfast_deploy.timeline.windows import WindowPlan, WindowRecord

logger = logging.getLogger(__name__)

_TAKE_TIMEOUT_S = 0.2  # the loop looks at the clock (stats, the end) at least this often
_JOIN_S = 1.0  # how long stopping waits for the stream threads (daemons)


@runtime_checkable
class OpenModel(Protocol):
    """A model opened once and shared (``sd.Model``): a watch borrows its backend (left
    open) and takes its class names as the default ``labels``."""

    @property
    def backend(self) -> Backend: ...

    @property
    def labels(self) -> list[str] | None: ...


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """Everything about a watch but its sources and model (see ``watch``)."""

    plan: WindowPlan = WindowPlan()  # noqa: RUF009 - frozen, so sharing it is safe
    max_batch: int = 4
    max_wait_ms: float = 50.0
    max_latency_s: float = 1.0
    queue_depth: int = 3  # windows each stream may hold waiting for the model
    topk: int = 5
    smooth: int = 1
    threshold: float = 0.0
    realtime: bool = False
    reconnect: bool | None = None  # None: on for network sources and cameras, off for files
    open: OpenOptions = OpenOptions()  # noqa: RUF009 - frozen
    stats_every_s: float | None = None
    scores: bool = False

    def __post_init__(self) -> None:
        if self.topk < 1:
            raise ValueError(f"topk must be >= 1, got {self.topk}")
        if self.smooth < 1 or self.smooth % 2 == 0:
            raise ValueError(f"smooth must be an odd number of windows >= 1, got {self.smooth}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be a score in 0..1, got {self.threshold}")
        if self.stats_every_s is not None and not self.stats_every_s > 0:
            raise ValueError(f"stats_every_s must be > 0 seconds, got {self.stats_every_s}")


class Watch:
    """A running watch: iterate for events; ``stop()`` from any thread ends it; ``finish()``
    after an interruption returns the last events (open segments closed, final stats).
    ``sinks`` get every event, and are closed (in reverse order) when it finishes."""

    def __init__(
        self,
        sources: Sequence[Source],
        backend: Backend,
        options: WatchOptions,
        *,
        labels: Sequence[str] | None,
        owns_backend: bool = False,
        queue: SharedQueue | None = None,
        sinks: Sequence[Sink] = (),
    ) -> None:
        """``queue``: the server's queue, shared with other watches and requests (its
        batching, latency and depth limits apply, and the server's model loop scores the
        windows); None: the watch batches its streams itself (``options``' limits)."""
        if not sources:
            raise ValueError("sources must name at least one stream, got none")
        check_names(list(sources))
        plan = options.plan
        size = plan.preprocess.crop_size
        check_input_shape(
            backend.input_shape,
            (options.max_batch, 1, 3, plan.clip.clip_len, size, size),
            model_path=backend.info.model_path,
        )
        self.sources = list(sources)
        self.backend = backend
        self.options = options
        self._labels = labels
        self._names: Sequence[str] | None = None
        self._owns_backend = owns_backend
        self.sinks = list(sinks)
        self._stop = threading.Event()
        self._mailbox = Mailbox()
        self._delivered = 0  # windows and notices handed back by a shared queue
        # the watch's own queue (it scores its windows), or None: the server's ``queue``
        self._own: BatchQueue[PendingWindow, Notice] | None = None
        self.queue: BatchQueue[PendingWindow, Notice] | SharedQueue
        inlet: OwnInlet | SharedInlet
        if queue is None:
            self._own = BatchQueue(
                max_batch=options.max_batch,
                max_wait_s=options.max_wait_ms / 1e3,
                max_latency_s=options.max_latency_s,
                depth=options.queue_depth,
            )
            self.queue, inlet = self._own, OwnInlet(self._own)
            self._keys: list[Hashable] = list(range(len(self.sources)))
        else:
            self.queue, inlet = queue, SharedInlet(queue, self._mailbox)
            self._keys = [(self._mailbox, i) for i in range(len(self.sources))]
        self._inlet = inlet
        for key, source in zip(self._keys, self.sources, strict=True):
            self.queue.add_stream(key, lossless=source.kind == "file" and not options.realtime)
        self.workers = [
            StreamWorker(
                i,
                source,
                plan,
                inlet,
                options=options.open,
                reconnect=Reconnect(
                    source.kind != "file" if options.reconnect is None else options.reconnect
                ),
                realtime=options.realtime and source.kind == "file",
                stop=self._stop,
                input_dtype=input_dtype_of(backend),
            )
            for i, source in enumerate(self.sources)
        ]
        self.stats = [StreamStats() for _ in self.sources]
        self._trackers: dict[int, tuple[int, SegmentTracker]] = {}  # stream -> (connection, ..)
        self._started = 0.0
        self._period_start = 0.0
        self._finished = False
        self.model_s = 0.0  # seconds in model calls
        self.model_calls = 0

    # --- the public surface ---------------------------------------------------------------

    def __iter__(self) -> Iterator[Event]:
        for event in self._events():
            self._write(event)
            yield event
        yield from self.finish()

    def stop(self) -> None:
        """End the watch soon (any thread): the iteration yields the last events and ends."""
        self._stop.set()
        self.queue.wake()
        self._mailbox.queue.put(None)

    def finish(self) -> list[Event]:
        """Stop every stream and return the last events: segments still open are closed,
        then the final statistics, then what the sinks report as they close (a webhook's
        counts). Idempotent; iteration calls it itself when it ends."""
        if self._finished:
            return []
        self._finished = True
        self._stop.set()
        dropped: list[int] | None = None  # the counts of the final stats
        if self._own is None:
            dropped = [self.queue.dropped(key) for key in self._keys]
            for key in self._keys:  # its leftovers leave the server's queue
                self.queue.remove_stream(key)
        else:
            self._own.close()
        deadline = time.monotonic() + _JOIN_S  # one wait for all: stalled reads are abandoned
        for worker in self.workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        events: list[Event] = []
        for stream in sorted(self._trackers):
            events += self._close_segments(stream)
        events += self._stats_events(final=True, dropped=dropped)
        try:
            for event in events:
                self._write(event)
        finally:
            try:
                events += close_sinks(self.sinks)
            finally:
                if self._owns_backend:
                    self.backend.close()
        return events

    def _write(self, event: Event) -> None:
        for sink in self.sinks:
            sink.write(event)

    def __enter__(self) -> Watch:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish()

    # --- the loop -------------------------------------------------------------------------

    def _events(self) -> Iterator[Event]:
        if self._started:
            raise RuntimeError("a Watch is iterated once; start another watch()")
        self._started = self._period_start = time.monotonic()
        every = self.options.stats_every_s
        own = self._own
        if own is not None:  # a served watch's model is warm: the server probed it
            self._warm_up()
        for worker in self.workers:
            worker.start()
        # the periods start with the streams: a slow warm-up (a busy machine) must not put
        # statistics before the streams' first events
        self._period_start = time.monotonic()
        next_stats = self._period_start + every if every else float("inf")
        flushed = False
        while not self._stop.is_set():
            timeout_s = min(_TAKE_TIMEOUT_S, max(0.0, next_stats - time.monotonic()))
            if own is None:
                yield from self._delivered_events(timeout_s)
            else:
                yield from self._handle(own.take(timeout_s))
            if time.monotonic() >= next_stats:
                yield from self._stats_events(final=False)
                next_stats += every or float("inf")
            if any(w.alive for w in self.workers):
                continue
            if own is not None:
                if not own.pending():
                    break
            elif not flushed:  # every stream ended: the server scores what is left, at once
                for key in self._keys:
                    self.queue.flush(key)
                flushed = True
            elif self._all_back():
                break
        if not self._stop.is_set() and own is not None:  # score what is left, in order
            for take in own.drain():
                yield from self._handle(take)

    def _delivered_events(self, timeout_s: float) -> Iterator[Event]:
        """A served watch: what the server's model loop handed back (waits ``timeout_s``)."""
        try:
            delivery = self._mailbox.queue.get(timeout=timeout_s)
        except queue.Empty:
            return
        if delivery is None:  # a stream ended, or the watch stops
            return
        if delivery.error is not None:
            raise delivery.error
        self._delivered += len(delivery.before) + len(delivery.batch) + len(delivery.after)
        if delivery.batch:
            self.model_s += delivery.model_s
            self.model_calls += 1
        yield from self._notices(delivery.before)
        yield from self._window_events(delivery.batch, delivery.records)
        yield from self._notices(delivery.after)

    def _all_back(self) -> bool:
        """A served watch: everything its streams put was handed back or dropped."""
        assert isinstance(self._inlet, SharedInlet)
        dropped = sum(self.queue.dropped(key) for key in self._keys)
        return self._delivered + dropped >= self._inlet.put_count

    def _warm_up(self) -> None:
        """One model call before the streams start: the first call of a runtime is its
        slowest (graph set-up), and the queue learns the model's speed from it."""
        plan = self.options.plan
        size = plan.preprocess.crop_size
        shape = (1, 1, 3, plan.clip.clip_len, size, size)
        zeros = np.zeros(shape, dtype=input_dtype_of(self.backend))
        t0 = time.perf_counter()
        run_batched(self.backend, zeros)
        self.queue.observe(time.perf_counter() - t0, 1)

    def _score(self, batch: list[PendingWindow]) -> list[WindowRecord]:
        t0 = time.perf_counter()
        records = list(score_windows([p.clip for p in batch], self.backend, batchsize=len(batch)))
        seconds = time.perf_counter() - t0
        self.queue.observe(seconds, len(batch))
        self.model_s += seconds
        self.model_calls += 1
        return records

    def _notices(self, notices: list[Notice]) -> Iterator[Event]:
        for notice in notices:
            yield from self._notice(notice)

    def _handle(self, take: Take[PendingWindow, Notice]) -> Iterator[Event]:
        """A take of the watch's own queue: its notices, its windows scored, its notices."""
        yield from self._notices(take.before)
        if take.batch:
            yield from self._window_events(take.batch, self._score(take.batch))
        yield from self._notices(take.after)

    def _window_events(
        self, batch: list[PendingWindow], records: list[WindowRecord]
    ) -> Iterator[Event]:
        """Window events (and the segments they decide) of the scored windows ``batch``."""
        if self._names is None and records:
            self._names = names_for(self._labels, len(records[0].scores)) or ()
        names = self._names or None
        for pending, record in zip(batch, records, strict=True):
            stream = pending.stream
            emit = time.time()
            self.stats[stream].scored(emit - pending.arrival_wall)
            yield WindowEvent.from_record(
                self.sources[stream].name,
                pending.connection,
                record,
                topk=self.options.topk,
                labels=names,
                arrival_wall=pending.arrival_wall,
                emit_wall=emit,
                scores=self.options.scores,
            )
            for found in self._tracker(stream, pending.connection).add(record):
                yield self._segment_event(stream, pending.connection, found)

    def _tracker(self, stream: int, connection: int) -> SegmentTracker:
        current = self._trackers.get(stream)
        if current is None or current[0] != connection:
            tracker = SegmentTracker(smooth=self.options.smooth, threshold=self.options.threshold)
            self._trackers[stream] = (connection, tracker)
            return tracker
        return current[1]

    def _close_segments(self, stream: int) -> list[Event]:
        current = self._trackers.pop(stream, None)
        if current is None:
            return []
        connection, tracker = current
        return [self._segment_event(stream, connection, s) for s in tracker.finish()]

    def _segment_event(
        self, stream: int, connection: int, found: SegmentStart | Segment
    ) -> SegmentStartEvent | SegmentEndEvent:
        names = self._names or None
        name = self.sources[stream].name
        if isinstance(found, Segment):
            return SegmentEndEvent.from_segment(
                name, connection, found, labels=names, emit_wall=time.time()
            )
        return SegmentStartEvent.from_start(
            name, connection, found, labels=names, emit_wall=time.time()
        )

    def _notice(self, notice: Notice) -> Iterator[Event]:
        if notice.event.kind in ("stream_lost", "stream_ended", "stream_failed"):
            yield from self._close_segments(notice.stream)
        yield notice.event

    def _stats_events(self, *, final: bool, dropped: list[int] | None = None) -> list[Event]:
        """Each stream's stats; ``dropped``: its drop counts (default: the queue's now)."""
        now = time.monotonic()
        period_s = now - (self._started if final else self._period_start)
        self._period_start = now
        events: list[Event] = []
        for i, (source, stats) in enumerate(zip(self.sources, self.stats, strict=True)):
            worker = self.workers[i]
            report = stats.report(
                source.name,
                state=worker.state,
                frames=worker.frames,
                connections=worker.connections,
                dropped=self.queue.dropped(self._keys[i]) if dropped is None else dropped[i],
                period_s=period_s,
                final=final,
                wall=time.time(),
            )
            events.append(report)
        return events


def watch(
    sources: Sequence[str | Source],
    model: OpenModel | Backend | ModelConfig | str | os.PathLike[str],
    *,
    plan: WindowPlan | None = None,
    max_batch: int = 4,
    max_wait_ms: float = 50.0,
    max_latency_s: float = 1.0,
    queue_depth: int = 3,
    topk: int = 5,
    smooth: int = 1,
    threshold: float = 0.0,
    labels: Sequence[str] | None = None,
    realtime: bool = False,
    reconnect: bool | None = None,
    stall_timeout_s: float = 10.0,
    open_timeout_s: float = 10.0,
    rtsp_transport: RtspTransport = "tcp",
    stats_every_s: float | None = None,
    scores: bool = False,
    sinks: Sequence[Sink] = (),
) -> Watch:
    """Watch live ``sources`` (URLs, ``/dev/videoN``, files) with one ``model``: iterate the
    returned ``Watch`` for events (``live.events``; ``to_dict()`` is the JSON, see the module
    doc).

    ``model``: an ``sd.Model`` (its open backend is borrowed, its class names are the default
    ``labels``), an open ``Backend`` (the caller closes both) or a model file /
    ``ModelConfig`` (opened here, closed when the watch finishes). ``labels``: class names
    (default: the Kinetics-400 names, shown for 400-class models). ``max_latency_s`` is the
    latency budget and ``queue_depth`` the windows a stream may hold waiting (see
    ``engine.batching``). ``sinks`` (``live.sinks``) get every event; the watch closes them when it
    finishes, or here if it cannot start.
    """
    try:
        return _start(
            sources,
            model,
            WatchOptions(
                plan=plan or WindowPlan(),
                max_batch=max_batch,
                max_wait_ms=max_wait_ms,
                max_latency_s=max_latency_s,
                queue_depth=queue_depth,
                topk=topk,
                smooth=smooth,
                threshold=threshold,
                realtime=realtime,
                reconnect=reconnect,
                open=OpenOptions(
                    rtsp_transport=rtsp_transport,  # checked there
                    open_timeout_s=open_timeout_s,
                    stall_timeout_s=stall_timeout_s,
                ),
                stats_every_s=stats_every_s,
                scores=scores,
            ),
            labels=labels,
            sinks=sinks,
        )
    except BaseException:
        close_sinks(sinks)
        raise


def _start(
    sources: Sequence[str | Source],
    model: OpenModel | Backend | ModelConfig | str | os.PathLike[str],
    options: WatchOptions,
    *,
    labels: Sequence[str] | None,
    sinks: Sequence[Sink],
) -> Watch:
    parsed = [s if isinstance(s, Source) else parse_source(s) for s in sources]
    check_names(parsed)
    if isinstance(model, str | os.PathLike):
        model = ModelConfig(str(model))
    if not isinstance(model, ModelConfig) and isinstance(model, OpenModel):
        labels = labels if labels is not None else model.labels
        model = model.backend
    names = labels if labels is not None else resolve_labels(None)
    if isinstance(model, ModelConfig):
        backend = model.open()
        try:
            return Watch(parsed, backend, options, labels=names, owns_backend=True, sinks=sinks)
        except BaseException:
            backend.close()
            raise
    return Watch(parsed, model, options, labels=names, sinks=sinks)

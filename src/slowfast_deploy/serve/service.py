"""The service behind the routes: the model, the batcher, the decoders, the budgets (vLLM's
``serving.py``).

``InferenceService`` owns everything a request needs, opened once (``start``) and closed once
(``close``): the backend behind the ``ModelLoop`` (one queue for requests' clips and the
streams' windows), the decode pools (``DecodeService``),
the live streams, a private 0700 directory for uploads, and the limits that keep a busy
server's memory flat (``admitted``, ``tensor_memory``, the decoded-clip budget). Its methods
take parsed requests (``protocol``) and return typed results: model rows, a
``api.Prediction``, a ``timeline.run.VideoTimeline``, a ``streams.LiveStream``. Nothing here
knows HTTP; failures are ``Problem``s.

Videos are scored by the library's code, as the commands score them: ``predict`` through
``engine.scoring.score_views`` (softmax per view, ``ViewMean``) and ``Prediction.from_scores``;
``timeline`` through ``timeline.run.score_windows`` into a ``VideoTimeline``. Their model calls
go through ``BatchedBackend``, so they join other requests' batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.api import Model, Prediction
from slowfast_deploy.engine.base import DecodedVideo
from slowfast_deploy.engine.batching import Clips
from slowfast_deploy.engine.scoring import check_model_views, score_views
from slowfast_deploy.errors import ModelFormatError, Reason, VideoDecodeError
from slowfast_deploy.export.onnx import INPUT_NAME, OUTPUT_NAME
from slowfast_deploy.live.sinks import Sink, SinkOptions, open_sinks
from slowfast_deploy.runtime import Backend, ModelConfig
from slowfast_deploy.runtime.base import (
    BackendInfo,
    InputDType,
    OutputKind,
    input_dtype_of,
    model_input,
)
from slowfast_deploy.serve import kserve
from slowfast_deploy.serve.budget import Budget
from slowfast_deploy.serve.decoding import DecodeService
from slowfast_deploy.serve.metrics import Metrics
from slowfast_deploy.serve.model_loop import ModelLoop
from slowfast_deploy.serve.options import ServeOptions
from slowfast_deploy.serve.problems import Problem, video_problem
from slowfast_deploy.serve.protocol import (
    ModelFacts,
    PredictQuery,
    RemoteVideo,
    ServerPath,
    StreamOutputs,
    VideoSource,
)
from slowfast_deploy.serve.security import check_url, resolve_server_path
from slowfast_deploy.serve.streams import LiveStream, StreamRegistry
from slowfast_deploy.serve.timeline_worker import TimelineDecoder
from slowfast_deploy.serve.uploads import fetch_url, receive_upload
from slowfast_deploy.specs import SINGLE_VIEW, VIEWS, ViewSpec, view_spec
from slowfast_deploy.timeline.run import VideoTimeline, score_windows
from slowfast_deploy.timeline.windows import TimelineStats, WindowPlan

logger = logging.getLogger(__name__)

# what a server serves: an ``sd.Model``, a model file (opened at start-up and closed at
# shutdown), its ``ModelConfig``, or a backend already open (left open, as a Model's is)
ServedModel: TypeAlias = Model | ModelConfig | Backend | str | os.PathLike[str]
T = TypeVar("T")


class BatchedBackend:
    """The backend contract over the model loop: a timeline's or a video's model calls join
    other requests' batches (a live stream's windows go into the loop's queue themselves).
    Any batch size is taken (the loop cuts and pads for the model). Each call waits at most
    ``timeout_s``; after ``cancel()`` (its request timed out) the clips it has queued are
    dropped and every call raises, so the work behind it stops."""

    def __init__(self, backend: Backend, batcher: ModelLoop, timeout_s: float) -> None:
        self.info: BackendInfo = backend.info
        self.input_shape = (None, *backend.input_shape[1:])
        self.output_kind: OutputKind = backend.output_kind
        self.input_dtype: InputDType = input_dtype_of(backend)
        self._batcher, self._timeout_s = batcher, timeout_s
        self._cancelled = threading.Event()
        self._waiting: list[Future[NDArray[np.float32]]] = []
        self._lock = threading.Lock()

    def run(self, video: NDArray[Any]) -> NDArray[np.float32]:
        futures = self._submit(video)
        deadline = time.monotonic() + self._timeout_s
        try:
            parts = [f.result(max(0.0, deadline - time.monotonic())) for f in futures]
        except CancelledError as err:
            raise Problem(Reason.TIMEOUT, "the request timed out") from err
        except TimeoutError as err:
            raise Problem(Reason.TIMEOUT, "the model did not answer in time") from err
        finally:
            for f in futures:
                f.cancel()
            with self._lock:
                self._waiting = [f for f in self._waiting if f not in futures]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _submit(self, video: NDArray[Any]) -> list[Future[NDArray[np.float32]]]:
        with self._lock:
            if self._cancelled.is_set():
                raise Problem(Reason.TIMEOUT, "the request timed out")
            futures = self._batcher.submit(Clips.of(video))
            self._waiting.extend(futures)
        return futures

    def cancel(self) -> None:
        with self._lock:
            self._cancelled.set()
            for f in self._waiting:
                f.cancel()

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class VideoFile:
    """A request's video on disk (``path``) and the name the client knows it by."""

    path: str
    name: str


@dataclass
class _Parts:
    """What ``InferenceService.start`` opens."""

    backend: Backend
    owns_backend: bool
    model: ModelFacts
    batcher: ModelLoop
    decoder: DecodeService
    streams: StreamRegistry
    upload_dir: str
    work: ThreadPoolExecutor  # requests' blocking work: scoring through the batcher, timelines


def _probe(backend: Backend) -> tuple[tuple[int, ...], int]:
    """The model input shape to advertise (-1: any) and its number of classes (one run of
    zeros, which also warms the model up)."""
    declared = backend.input_shape
    fill = (1, 1, 3, SINGLE_VIEW.clip.clip_len, *(2 * [SINGLE_VIEW.preprocess.crop_size]))
    if len(declared) != len(fill):
        raise ModelFormatError(
            f"{backend.info.model_path}: input has {len(declared)} axes; the serving contract "
            "is video [N, 1, 3, T, H, W]"
        )
    shape = tuple(d if d is not None else f for d, f in zip(declared, fill, strict=True))
    out = backend.run(np.zeros((1, *shape[1:]), dtype=input_dtype_of(backend)))
    advertised = (-1, *(d if d is not None else -1 for d in declared[1:]))
    return advertised, int(out.shape[-1])


def model_facts(backend: Backend, name: str) -> ModelFacts:
    """What ``backend`` takes and answers, served as ``name``."""
    advertised, num_classes = _probe(backend)
    supported: dict[int, str | None] = {}
    for num in VIEWS:
        try:
            check_model_views(backend, view_spec(num))
            supported[num] = None
        except ModelFormatError as err:
            supported[num] = str(err)
    return ModelFacts(
        name=name,
        backend=backend.info.name,
        precision=backend.info.precision,
        input=kserve.TensorSpec(
            INPUT_NAME, advertised, kserve.KSERVE_DTYPES[input_dtype_of(backend)]
        ),
        output=kserve.TensorSpec(OUTPUT_NAME, (-1, num_classes)),
        num_classes=num_classes,
        views=supported,
    )


def _backend_of(model: ServedModel) -> tuple[Backend, bool]:
    """The backend to serve and whether the service opened it (and so closes it)."""
    if isinstance(model, Model):
        return model.backend, False
    if isinstance(model, str | os.PathLike):
        return ModelConfig(os.fspath(model)).open(), True
    if isinstance(model, ModelConfig):
        return model.open(), True
    return model, False


def _open_parts(model: ServedModel, options: ServeOptions, metrics: Metrics) -> _Parts:
    """Open everything a request needs (in a thread: loading a model takes seconds)."""
    backend, owns = _backend_of(model)
    try:
        facts = model_facts(backend, options.name)
        batcher = ModelLoop(
            backend,
            max_batch=options.batch.max_batch,
            max_wait_ms=options.batch.max_wait_ms,
            max_queue=options.limits.max_queued_clips,
            on_batch=metrics.observe_batch,
        )
        decoder = DecodeService(
            options.decode,
            num_workers=options.num_workers,
            timeout_s=options.decode_timeout_s,
            max_pending=options.limits.max_queued_videos,
        )
        decoder.start()
        upload_dir = tempfile.mkdtemp(prefix="slowfast-serve-", dir=options.tmp_dir)  # 0700
        streams = StreamRegistry(
            backend,
            batcher.queue,
            allow_dirs=options.allow_dirs,
            allow_urls=options.allow_urls,
            labels=_labels(model, options),
            max_batch=options.batch.max_batch,
            max_streams=options.limits.max_streams,
        )
    except BaseException:
        if owns:
            backend.close()
        raise
    work = ThreadPoolExecutor(options.limits.max_requests, thread_name_prefix="serve-work")
    return _Parts(backend, owns, facts, batcher, decoder, streams, upload_dir, work)


def _close_parts(parts: _Parts) -> None:
    parts.streams.close()
    parts.batcher.close()
    parts.decoder.close()
    parts.work.shutdown(wait=True)
    shutil.rmtree(parts.upload_dir, ignore_errors=True)
    if parts.owns_backend:
        parts.backend.close()
    logger.info("stopped; removed %s", parts.upload_dir)


def _labels(model: ServedModel, options: ServeOptions) -> list[str] | None:
    """Class names: the options', else an ``sd.Model``'s own."""
    if options.labels is not None:
        return options.labels
    return model.labels if isinstance(model, Model) else None


async def _in_a_thread(fn: Callable[..., None], *args: Any) -> None:
    """``fn(*args)`` in a thread, or here if the interpreter is exiting (``serve``'s handle
    stopped at exit: executors take no new work then)."""
    try:
        done = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    except RuntimeError:
        fn(*args)
    else:
        await done


def mean_scores(backend: Backend, crops: NDArray[np.uint8], views: ViewSpec) -> NDArray[np.float32]:
    """One video's decoded views -> its scores, as ``predict`` computes them: model input
    (``runtime.base.model_input``), softmax per view averaged (``engine.scoring.score_views``)."""
    batch = model_input(crops, views.preprocess, input_dtype_of(backend))[None]
    scores: NDArray[np.float32] = score_views(backend, batch)[0]
    return scores


class InferenceService:
    """One model served: ``start()`` (in the event loop), requests, ``close()``."""

    def __init__(
        self, model: ServedModel, options: ServeOptions, metrics: Metrics | None = None
    ) -> None:
        self.options = options
        self.metrics = metrics if metrics is not None else Metrics()
        self.labels = _labels(model, options)
        self.in_progress = 0  # heavy requests admitted (one event loop: no lock needed)
        self.draining = asyncio.Event()  # SIGTERM: event streams end now
        self._model = model
        self._parts: _Parts | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: threading.Thread | None = None  # begin_drain's, joined at close
        # memory held at once (see ``budget``): tensor bodies, and decoded clips not yet scored
        self._tensor_memory = Budget(options.limits.max_tensor_bytes)
        self._decoded_clips = Budget(max(2 * options.batch.max_batch, 2 * max(VIEWS)))
        self._changed = threading.Condition()  # notified as requests come, go and progress
        self.timeline_decoders: dict[int, int] = {}  # running decoder pid -> windows scored

    # ---- life
    async def start(self) -> None:
        """Open the model and the pools (in a thread: the event loop goes on meanwhile)."""
        self._loop = asyncio.get_running_loop()
        self._parts = await asyncio.to_thread(_open_parts, self._model, self.options, self.metrics)
        info = self._parts.backend.info
        logger.info(
            "serving %s (%s, %d classes) as %r",
            info.model_path,
            info.name,
            self._parts.model.num_classes,
            self.options.name,
        )

    async def close(self) -> None:
        parts, self._parts = self._parts, None
        if parts is not None:
            await _in_a_thread(_close_parts, parts)
        if self._stopping is not None:
            await _in_a_thread(self._stopping.join)

    def begin_drain(self) -> None:
        """From any thread (SIGTERM): end the event streams and stop the live streams now, so
        they do not hold the drain open."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.draining.set)
        parts = self._parts
        if parts is not None and self._stopping is None:
            self._stopping = threading.Thread(
                target=parts.streams.close, name="serve-streams-stop", daemon=True
            )
            self._stopping.start()

    @property
    def ready(self) -> bool:
        return self._parts is not None

    def _opened(self) -> _Parts:
        if self._parts is None:
            raise Problem(
                Reason.NOT_READY, "the model is still loading", headers={"Retry-After": "1"}
            )
        return self._parts

    def require_ready(self) -> None:
        """503 ``not_ready`` (with ``Retry-After``) while the model loads."""
        self._opened()

    @property
    def model(self) -> ModelFacts:
        """The served model (503 ``not_ready`` while it loads)."""
        return self._opened().model

    # ---- what tests and /metrics read
    @property
    def queued_clips(self) -> int:
        return self._parts.batcher.queued if self._parts is not None else 0

    @property
    def pending_videos(self) -> int:
        return self._parts.decoder.pending if self._parts is not None else 0

    def observe_queues(self) -> None:
        self.metrics.queue_depth.set(self.queued_clips)
        self.metrics.decode_depth.set(self.pending_videos)

    def wait_for(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``condition()`` holds (checked whenever a request is admitted or ends,
        or a timeline scores a window); False if ``timeout_s`` passed first."""
        with self._changed:
            return self._changed.wait_for(condition, timeout_s)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # ---- limits
    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """At most ``max_requests`` heavy requests (tensors, videos) at a time, bodies
        included: past it 429 before a byte of the body is read, so memory stays bounded."""
        limit = self.options.limits.max_requests
        if self.in_progress >= limit:
            raise Problem(
                Reason.QUEUE_FULL,
                f"{self.in_progress} requests are in progress (--max-queue {limit}); retry later",
            )
        self.in_progress += 1
        self._notify()
        try:
            yield
        finally:
            self.in_progress -= 1
            self._notify()

    async def with_timeout(
        self, work: Awaitable[T], on_timeout: Callable[[], None] | None = None
    ) -> T:
        timeout_s = self.options.limits.timeout_s
        try:
            return await asyncio.wait_for(work, timeout_s)
        except TimeoutError as err:
            if on_timeout is not None:
                on_timeout()
            raise Problem(
                Reason.TIMEOUT, f"the request took longer than this server allows ({timeout_s:g} s)"
            ) from err

    @contextlib.asynccontextmanager
    async def tensor_memory(self, nbytes: int) -> AsyncIterator[None]:
        """Hold ``nbytes`` of the tensor body budget (waiting for them) while the block runs."""
        held = await self.with_timeout(self._tensor_memory.acquire(nbytes))
        try:
            yield
        finally:
            await self._tensor_memory.release(held)

    # ---- tensors
    async def infer(self, request: kserve.InferRequest) -> NDArray[np.float32]:
        """The model's output rows for the request's tensor (through the batcher)."""
        return await self.with_timeout(self._model_rows(self._opened(), Clips.of(request.tensor)))

    async def _model_rows(self, parts: _Parts, clips: Clips) -> NDArray[np.float32]:
        futures = parts.batcher.submit(clips)
        self.observe_queues()
        try:
            rows = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        except asyncio.CancelledError:
            for f in futures:
                f.cancel()
            raise
        return rows[0] if len(rows) == 1 else np.concatenate(rows)

    # ---- videos
    @contextlib.asynccontextmanager
    async def video_file(self, source: VideoSource) -> AsyncIterator[VideoFile]:
        """The video on disk while the block runs: a server path, a fetched URL, an upload
        (the last two in a private file, removed after)."""
        parts, options = self._opened(), self.options
        if isinstance(source, ServerPath):
            yield VideoFile(str(resolve_server_path(source.path, options.allow_dirs)), source.path)
            return
        if isinstance(source, RemoteVideo):
            url = check_url(source.url, options.allow_urls)
            if not url.lower().startswith(("http://", "https://")):
                raise Problem(Reason.BAD_REQUEST, f"{url!r}: only http(s) videos are fetched")
            fetched = fetch_url(
                url, directory=parts.upload_dir, limit=options.limits.max_upload_bytes
            )
            upload = await asyncio.to_thread(fetched.__enter__)
            try:
                yield VideoFile(upload.path, url)
            finally:
                fetched.__exit__(None, None, None)
            return
        async with receive_upload(
            source.stream,
            source.headers,
            directory=parts.upload_dir,
            limit=options.limits.max_upload_bytes,
        ) as received:
            yield VideoFile(received.path, received.name)

    def _batched(self, parts: _Parts) -> BatchedBackend:
        return BatchedBackend(parts.backend, parts.batcher, self.options.limits.timeout_s)

    async def predict(self, video: VideoFile, query: PredictQuery) -> Prediction:
        """``predict --format json``'s answer for one video (within the request timeout)."""
        parts = self._opened()
        backend = self._batched(parts)
        return await self.with_timeout(self._predict(parts, backend, video, query), backend.cancel)

    async def _predict(
        self, parts: _Parts, backend: BatchedBackend, video: VideoFile, query: PredictQuery
    ) -> Prediction:
        held = await self._decoded_clips.acquire(query.views)  # decoded clips wait: bounded
        try:
            decoded = await self._decode(parts, video.path, query.views)
            if decoded.crops is None:
                reason = decoded.reason or Reason.CORRUPT
                message = (decoded.error or "cannot be decoded").replace(video.path, video.name)
                raise video_problem(reason, message)
            crops, views = decoded.crops, view_spec(query.views)
            loop = asyncio.get_running_loop()
            scores = await loop.run_in_executor(parts.work, mean_scores, backend, crops, views)
        finally:
            await self._decoded_clips.release(held)
        return Prediction.from_scores(
            video.name,
            scores,
            views=int(crops.shape[0]),
            topk=query.topk,
            labels=self.labels,
            info=decoded.info,
        )

    async def _decode(self, parts: _Parts, path: str, views: int) -> DecodedVideo:
        future = parts.decoder.submit(path, views)
        self.observe_queues()
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:  # the request timed out or went away
            parts.decoder.cancel(future)
            raise
        finally:
            self.observe_queues()

    async def timeline(self, video: VideoFile, plan: WindowPlan) -> VideoTimeline:
        """``timeline``'s windows for one video, decoded in a process of its own."""
        parts = self._opened()
        backend = self._batched(parts)
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(parts.work, self._run_timeline, backend, video, plan)
        return await self.with_timeout(work, backend.cancel)

    def _run_timeline(
        self, backend: BatchedBackend, video: VideoFile, plan: WindowPlan
    ) -> VideoTimeline:
        t0 = time.perf_counter()
        decoding = TimelineDecoder(
            video.path,
            plan,
            decoder="pyav",  # as `timeline` decodes: in order, flat memory
            input_dtype=backend.input_dtype,
            timeout_s=self.options.decode_timeout_s,
        )
        stats = TimelineStats()
        try:
            decoding.open()
            result = VideoTimeline(
                video.path, plan, info=decoding.info, num_windows=decoding.num_windows
            )
            self._scored(decoding.pid, 0)
            batchsize = self.options.batch.max_batch
            for record in score_windows(
                decoding, backend, batchsize=batchsize, stats=stats, prefetch=2
            ):
                result.records.append(record)
                self._scored(decoding.pid, len(result.records))
        except VideoDecodeError as err:  # the child's reason code, as the CLI reports it
            raise video_problem(err.reason, str(err).replace(video.path, video.name)) from err
        finally:
            decoding.close()
            self._scored(decoding.pid, None)
        stats.decode_s = decoding.stats.decode_s
        stats.preprocess_s += decoding.stats.preprocess_s
        result.status, result.stats, result.wall_s = "ok", stats, time.perf_counter() - t0
        result.video = video.name
        return result

    def _scored(self, pid: int, windows: int | None) -> None:
        if windows is None:
            self.timeline_decoders.pop(pid, None)
        else:
            self.timeline_decoders[pid] = windows
        self._notify()

    # ---- live streams
    async def add_stream(self, spec: Any) -> LiveStream:
        """Start watching ``spec["source"]`` as ``spec["name"]``, with the outputs
        ``spec`` names (``protocol.StreamOutputs``), checked against the allow-lists first."""
        registry = self._opened().streams
        sinks = self._stream_sinks(StreamOutputs.parse(spec))
        return await asyncio.to_thread(registry.add, spec, sinks)

    def _stream_sinks(self, outputs: StreamOutputs) -> Callable[[str], list[Sink]]:
        """A stream's sinks, once its name is accepted: every location checked now."""
        directory = None
        if outputs.srt_dir is not None:
            directory = resolve_server_path(outputs.srt_dir, self.options.allow_dirs)
        url = None
        if outputs.webhook is not None:
            url = check_url(outputs.webhook, self.options.allow_urls)
            if not url.lower().startswith(("http://", "https://")):
                raise Problem(Reason.BAD_REQUEST, f"{url!r}: a webhook is an http(s) URL")
        broker = None
        if outputs.mqtt is not None:
            broker = check_url(outputs.mqtt, self.options.allow_urls)
        options = SinkOptions(srt_dir=directory, webhook=url, mqtt=broker)

        def stream_sinks(name: str) -> list[Sink]:
            try:
                return open_sinks(options, [name])
            except (OSError, ValueError) as err:  # ConnectionError: an unreachable broker
                raise Problem(Reason.BAD_REQUEST, str(err)) from err

        return stream_sinks

    def streams(self) -> list[LiveStream]:
        return list(self._opened().streams.streams.values())

    def stream(self, name: str) -> LiveStream:
        return self._opened().streams.get(name)

    async def remove_stream(self, name: str) -> LiveStream:
        return await asyncio.to_thread(self._opened().streams.remove, name)

    def stream_events(self, name: str) -> AsyncIterator[bytes]:
        """The stream's server-sent events (404 now, before the first byte, if unknown)."""
        registry = self._opened().streams
        registry.get(name)
        return registry.events(name, self.draining)


__all__ = ["BatchedBackend", "InferenceService", "ServedModel", "VideoFile", "mean_scores"]

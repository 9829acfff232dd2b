"""The ASGI app: the Open Inference Protocol for tensors, video endpoints, metrics, the page.

``create_app(model, options)`` builds one Starlette app; ``server.run_server`` runs it on
uvicorn, ``ray_serve`` deploys the same object on Ray Serve. Everything a request needs is
opened once in the app's lifespan: the model (behind the ``ModelLoop``), the decode pools
(``DecodeService``) and a private 0700 directory for uploads, removed at shutdown.

| route                                   | what                                              |
| --------------------------------------- | ------------------------------------------------- |
| ``GET /``                               | the page: drop a video, see top-5 and a timeline  |
| ``GET /v2``, ``/v2/health/{live,ready}``| KServe v2 server metadata and probes               |
| ``GET /v2/models/{name}[/ready]``       | model metadata (its real input and output)        |
| ``POST /v2/models/{name}/infer``        | tensors in, the model's output out (JSON, binary) |
| ``POST /v1/predict?views=&topk=``       | a video -> ``predict --format json``'s records    |
| ``POST /v1/timeline?window=&stride=...``| a video -> ``timeline``'s output (json, csv, srt) |
| ``GET /v1/info``                        | the model, the limits (for the page)              |
| ``GET /metrics``                        | Prometheus                                        |

A video is a multipart upload (field ``video``), or JSON ``{"path": ...}`` (under
``--allow-dir``) or ``{"url": ...}`` (under ``--allow-url``). Every failure is a ``Problem``:
JSON with a ``reason`` code and its HTTP status; nothing a client sends stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Match, Route

from slowfast_deploy import __version__
from slowfast_deploy.api import Prediction
from slowfast_deploy.engine.base import DecodedVideo, DecodeOptions
from slowfast_deploy.engine.batching import BatcherClosed, Clips, QueueFull
from slowfast_deploy.engine.scoring import ViewMean, check_model_views
from slowfast_deploy.errors import ModelFormatError, SlowFastDeployError, VideoDecodeError
from slowfast_deploy.export.onnx import INPUT_NAME, OUTPUT_NAME
from slowfast_deploy.labels import names_for
from slowfast_deploy.runtime import Backend, ModelConfig
from slowfast_deploy.runtime.base import (
    BackendInfo,
    InputDType,
    OutputKind,
    input_dtype_of,
    model_input,
    to_probs,
)
from slowfast_deploy.serve import kserve
from slowfast_deploy.serve.budget import Budget
from slowfast_deploy.serve.decoding import DecodeService
from slowfast_deploy.serve.metrics import Metrics, ObserveMiddleware
from slowfast_deploy.serve.model_loop import ModelLoop
from slowfast_deploy.serve.options import ServeOptions
from slowfast_deploy.serve.problems import Problem, video_problem
from slowfast_deploy.serve.security import ApiKeyMiddleware, check_url, resolve_server_path
from slowfast_deploy.serve.streams import StreamRegistry
from slowfast_deploy.serve.timeline_worker import TimelineDecoder
from slowfast_deploy.serve.uploads import fetch_url, read_body, receive_upload
from slowfast_deploy.specs import SINGLE_VIEW, VIEWS, view_spec
from slowfast_deploy.timeline.output import SegmentOptions, render_timelines
from slowfast_deploy.timeline.run import VideoTimeline, score_windows
from slowfast_deploy.timeline.windows import TimelineStats, WindowPlan

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 1
# one clip of the reference contract, [1, 3, 32, 224, 224] float32: the unit of the tensor
# body budget (--max-queue clips' worth of request bodies in memory at once)
CLIP_BYTES = 3 * 32 * 224 * 224 * 4
TIMELINE_FORMATS = {"json": "application/json", "csv": "text/csv", "srt": "application/x-subrip"}


@dataclass
class ServeState:
    """What the lifespan opens; None until the app has started."""

    backend: Backend
    batcher: ModelLoop
    decoder: DecodeService
    upload_dir: str
    input: kserve.TensorSpec
    output: kserve.TensorSpec
    num_classes: int
    views: dict[int, str | None]  # protocol -> None if the model takes it, else why not
    streams: StreamRegistry
    owns_backend: bool = True


class BatchedBackend:
    """The backend contract over the model loop: a timeline's model calls join other
    requests' batches. Each call waits at most ``timeout_s``; after ``cancel()``
    (its request timed out) every call raises, so the work behind it stops."""

    def __init__(self, backend: Backend, batcher: ModelLoop, timeout_s: float) -> None:
        self.info: BackendInfo = backend.info
        self.input_shape = backend.input_shape
        self.output_kind: OutputKind = backend.output_kind
        self.input_dtype: InputDType = input_dtype_of(backend)
        self._batcher, self._timeout_s = batcher, timeout_s
        self._cancelled = threading.Event()

    def run(self, video: NDArray[np.float32]) -> NDArray[np.float32]:
        if self._cancelled.is_set():
            raise Problem("timeout", "the request timed out")
        try:
            return self._batcher.run(Clips.of(video), self._timeout_s)
        except TimeoutError as err:
            raise Problem("timeout", "the model did not answer in time") from err

    def cancel(self) -> None:
        self._cancelled.set()

    def close(self) -> None:
        pass


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


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as err:
        raise Problem("invalid", f"{name} must be an integer, got {value!r}") from err


def _float_param(request: Request, name: str, default: float) -> float:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError as err:
        raise Problem("invalid", f"{name} must be a number, got {value!r}") from err


def create_app(
    model: ModelConfig | Backend,
    options: ServeOptions,
) -> Starlette:
    """The service for ``model``: a file to open at start-up, or a backend already open
    (left open)."""
    metrics = Metrics()
    holder: dict[str, ServeState] = {}
    draining = asyncio.Event()
    # memory held at once (see ``budget``): tensor bodies, and decoded clips not yet scored
    body_budget = Budget(options.max_queue * CLIP_BYTES)
    clip_budget = Budget(max(2 * options.max_batch, 2 * max(VIEWS)))
    active = [0]  # heavy requests in progress (one event loop: no lock needed)

    def state() -> ServeState:
        if "state" not in holder:
            raise Problem("not_ready", "the model is still loading", headers={"Retry-After": "1"})
        return holder["state"]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opened = await asyncio.to_thread(_open, model, options, metrics)
        holder["state"] = opened
        app.state.serve = opened
        loop = asyncio.get_running_loop()

        def begin_drain() -> None:  # SIGTERM (server.run_server): end event streams now
            loop.call_soon_threadsafe(draining.set)
            threading.Thread(target=opened.streams.close, daemon=True).start()

        app.state.begin_drain = begin_drain
        logger.info(
            "serving %s (%s, %d classes) as %r",
            opened.backend.info.model_path,
            opened.backend.info.name,
            opened.num_classes,
            options.name,
        )
        try:
            yield
        finally:
            holder.pop("state", None)
            await asyncio.to_thread(_close, opened)

    # ---- errors: every failure is JSON with a reason and a status
    def problem_response(problem: Problem) -> JSONResponse:
        metrics.failure(problem.reason)
        headers = dict(problem.headers)
        if problem.status in (429, 503) and "Retry-After" not in headers:
            headers["Retry-After"] = str(RETRY_AFTER_S)
        return JSONResponse(problem.body(), status_code=problem.status, headers=headers)

    def handler(
        fn: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            try:
                return await fn(request)
            except ClientDisconnect:
                logger.info("%s %s: the client went away", request.method, request.url.path)
                return Response(status_code=400)
            except Problem as problem:
                return problem_response(problem)
            except (QueueFull, BatcherClosed) as err:
                busy = isinstance(err, QueueFull)
                return problem_response(
                    Problem(
                        "queue_full" if busy else "not_ready", str(err), status=429 if busy else 503
                    )
                )
            except VideoDecodeError as err:
                return problem_response(video_problem(err.reason, str(err)))
            except (SlowFastDeployError, ValueError) as err:  # the library's checks: they
                return problem_response(Problem("invalid", str(err)))  # name value and range
            except Exception:
                logger.exception("%s %s failed", request.method, request.url.path)
                return problem_response(
                    Problem("internal", "internal error (logged on the server)")
                )

        return wrapped

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        return problem_response(
            Problem(
                reason, f"{request.method} {request.url.path}: {exc.detail}", status=exc.status_code
            )
        )

    @contextlib.contextmanager
    def admitted() -> Iterator[None]:
        """At most ``max_queue`` heavy requests (tensors, videos) at a time, bodies included:
        past it 429 before a byte of the body is read, so memory stays bounded."""
        if active[0] >= options.max_queue:
            raise Problem(
                "queue_full",
                f"{active[0]} requests are in progress (--max-queue {options.max_queue}); "
                "retry later",
            )
        active[0] += 1
        try:
            yield
        finally:
            active[0] -= 1

    async def with_timeout(
        work: Awaitable[Any], on_timeout: Callable[[], None] | None = None
    ) -> Any:
        try:
            return await asyncio.wait_for(work, options.timeout_s)
        except TimeoutError as err:
            if on_timeout is not None:
                on_timeout()
            raise Problem(
                "timeout",
                f"the request took longer than this server allows ({options.timeout_s:g} s)",
            ) from err

    async def model_rows(s: ServeState, clips: Clips) -> NDArray[np.float32]:
        futures = s.batcher.submit(clips)
        metrics.queue_depth.set(s.batcher.queued)
        try:
            parts = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        except asyncio.CancelledError:
            for f in futures:
                f.cancel()
            raise
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    # ---- the Open Inference Protocol
    def check_model(s: ServeState, request: Request) -> None:
        name = request.path_params["name"]
        version = request.path_params.get("version")
        if name != options.name or version not in (None, "1"):
            shown = name if version is None else f"{name} version {version}"
            raise Problem(
                "unknown_model",
                f"unknown model {shown!r}; this server has {options.name!r} (version 1)",
            )

    @handler
    async def server_metadata(request: Request) -> Response:
        return JSONResponse(
            {
                "name": "slowfast-deploy",
                "version": __version__,
                "extensions": ["binary_tensor_data"],
            }
        )

    @handler
    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    @handler
    async def ready(request: Request) -> Response:
        if "state" not in holder:
            raise Problem("not_ready", "the model is still loading")
        return JSONResponse({"ready": True})

    @handler
    async def model_metadata(request: Request) -> Response:
        s = state()
        check_model(s, request)
        return JSONResponse(
            kserve.model_metadata(options.name, s.backend.info.name, s.input, s.output)
        )

    @handler
    async def model_config(request: Request) -> Response:
        s = state()
        check_model(s, request)
        return JSONResponse(
            kserve.model_config(
                options.name, s.backend.info.name, s.input, s.output, max_batch=options.max_batch
            )
        )

    @handler
    async def model_ready(request: Request) -> Response:
        s = state()
        check_model(s, request)
        return JSONResponse({"name": options.name, "ready": True})

    @handler
    async def infer(request: Request) -> Response:
        s = state()
        check_model(s, request)
        with admitted():
            return await _infer(s, request)

    async def _infer(s: ServeState, request: Request) -> Response:
        if request.headers.get("content-encoding", "identity") != "identity":
            raise Problem(
                "unsupported_media_type",
                f"Content-Encoding {request.headers['content-encoding']!r} is not accepted; "
                "send the request uncompressed",
            )
        declared = request.headers.get("content-length", "")
        size = int(declared) if declared.isdigit() else options.max_upload_bytes
        held = await with_timeout(body_budget.acquire(min(size, options.max_upload_bytes)))
        try:
            body = await read_body(request.stream(), request.headers, options.max_upload_bytes)
            parsed = kserve.parse_infer(body, request.headers.get(kserve.HEADER_LENGTH), s.input)
            del body
            values = await with_timeout(model_rows(s, Clips.of(parsed.tensor)))
        finally:
            await body_budget.release(held)
        content, headers = kserve.infer_response(options.name, parsed, s.output, values)
        return Response(content, headers=headers)

    # ---- videos
    @contextlib.asynccontextmanager
    async def video_source(request: Request) -> AsyncIterator[tuple[str, str]]:
        """(path on disk, the name the client knows it by): an upload, a path or a URL."""
        s = state()
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip() == "application/json":
            body = await read_body(request.stream(), request.headers, 64 * 1024)
            try:
                spec = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise Problem("bad_request", f"the request body is not valid JSON ({err})") from err
            if not isinstance(spec, dict) or len({"path", "url"} & set(spec)) != 1:
                raise Problem(
                    "bad_request", 'send {"path": ...} or {"url": ...} (or upload the video)'
                )
            if "path" in spec:
                path = resolve_server_path(str(spec["path"]), options.allow_dirs)
                yield str(path), str(spec["path"])
                return
            url = check_url(str(spec["url"]), options.allow_urls)
            if not url.lower().startswith(("http://", "https://")):
                raise Problem("bad_request", f"{url!r}: only http(s) videos are fetched")
            fetched = fetch_url(url, directory=s.upload_dir, limit=options.max_upload_bytes)
            upload = await asyncio.to_thread(fetched.__enter__)
            try:
                yield upload.path, url
            finally:
                fetched.__exit__(None, None, None)
            return
        async with receive_upload(
            request.stream(),
            request.headers,
            directory=s.upload_dir,
            limit=options.max_upload_bytes,
        ) as upload:
            yield upload.path, upload.name

    @handler
    async def predict(request: Request) -> Response:
        s = state()
        views = _int_param(request, "views", 1)
        topk = _int_param(request, "topk", 5)
        if views not in VIEWS:
            raise Problem("invalid", f"views must be one of {sorted(VIEWS)}, got {views}")
        if not 1 <= topk <= s.num_classes:
            raise Problem("invalid", f"topk must be in 1..{s.num_classes}, got {topk}")
        if s.views[views] is not None:
            raise Problem("invalid", str(s.views[views]))
        with admitted():
            return await _predict(s, request, views, topk)

    async def _predict(s: ServeState, request: Request, views: int, topk: int) -> Response:
        async with video_source(request) as (path, name):
            record = await with_timeout(_score_video(s, path, name, views, topk))
        return JSONResponse([record])

    async def _score_video(
        s: ServeState, path: str, name: str, views: int, topk: int
    ) -> dict[str, Any]:
        held = await clip_budget.acquire(views)  # decoded clips wait for the model: bounded
        try:
            future = s.decoder.submit(path, views)
            metrics.decode_depth.set(s.decoder.pending)
            try:
                decoded = await asyncio.wrap_future(future)
            except asyncio.CancelledError:  # the request timed out or went away
                s.decoder.cancel(future)
                raise
            return await _scores(s, decoded, path, name, views, topk)
        finally:
            await clip_budget.release(held)

    async def _scores(
        s: ServeState, decoded: DecodedVideo, path: str, name: str, views: int, topk: int
    ) -> dict[str, Any]:
        metrics.decode_depth.set(s.decoder.pending)
        if decoded.crops is None:
            reason = decoded.info.get("reason", "corrupt")
            raise video_problem(reason, (decoded.error or "cannot be decoded").replace(path, name))
        spec = view_spec(views)
        dtype = input_dtype_of(s.backend)
        crops = decoded.crops
        count = int(crops.shape[0])
        row_shape = (1, 3, int(crops.shape[1]), int(crops.shape[2]), int(crops.shape[3]))
        clips = Clips(count, row_shape, lambda: model_input(crops, spec.preprocess, dtype)[:, None])
        raw = await model_rows(s, clips)
        probs = to_probs(raw, s.backend.output_kind)
        mean = ViewMean()
        for row in probs:
            mean.add(row)
        prediction = Prediction.from_scores(
            name, mean.mean(), views=count, topk=topk, labels=options.labels, info=decoded.info
        )
        return prediction.to_dict(with_scores=True)  # predict --format json

    @handler
    async def timeline(request: Request) -> Response:
        s = state()
        fmt = request.query_params.get("format", "json")
        if fmt not in TIMELINE_FORMATS:
            raise Problem(
                "invalid", f"format must be one of {sorted(TIMELINE_FORMATS)}, got {fmt!r}"
            )
        plan = WindowPlan(_int_param(request, "window", 64), _int_param(request, "stride", 16))
        segments = SegmentOptions(
            _int_param(request, "smooth", 1), _float_param(request, "threshold", 0.0)
        )
        topk = _int_param(request, "topk", 5)
        if not 1 <= topk <= s.num_classes:
            raise Problem("invalid", f"topk must be in 1..{s.num_classes}, got {topk}")
        backend = BatchedBackend(s.backend, s.batcher, options.timeout_s)
        with admitted():
            async with video_source(request) as (path, name):
                text = await with_timeout(
                    asyncio.to_thread(
                        _run_timeline, backend, path, name, plan, segments, topk, fmt
                    ),
                    backend.cancel,
                )
        return Response(text, media_type=TIMELINE_FORMATS[fmt])

    def _run_timeline(
        backend: BatchedBackend,
        path: str,
        name: str,
        plan: WindowPlan,
        segments: SegmentOptions,
        topk: int,
        fmt: str,
    ) -> str:
        t0 = time.perf_counter()
        decoding = TimelineDecoder(
            path,
            plan,
            decoder="pyav",  # as `timeline` decodes: in order, flat memory
            input_dtype=backend.input_dtype,
            timeout_s=options.decode_timeout_s,
        )
        stats = TimelineStats()
        try:
            decoding.open()
            result = VideoTimeline(path, plan, info=decoding.info, num_windows=decoding.num_windows)
            for record in score_windows(
                decoding, backend, batchsize=options.max_batch, stats=stats, prefetch=2
            ):
                result.records.append(record)
        except VideoDecodeError as err:  # the child's reason code, as the CLI reports it
            raise video_problem(err.reason, str(err).replace(path, name)) from err
        finally:
            decoding.close()
        stats.decode_s = decoding.stats.decode_s
        stats.preprocess_s += decoding.stats.preprocess_s
        result.status, result.stats, result.wall_s = "ok", stats, time.perf_counter() - t0
        result.video = name
        labels = (
            names_for(options.labels, len(result.records[0].scores)) if result.records else None
        )
        return render_timelines([result], fmt=fmt, topk=topk, segments=segments, labels=labels)[0]

    # ---- live streams
    @handler
    async def add_stream(request: Request) -> Response:
        s = state()
        body = await read_body(request.stream(), request.headers, 64 * 1024)
        try:
            spec = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise Problem("bad_request", f"the request body is not valid JSON ({err})") from err
        stream = await asyncio.to_thread(s.streams.add, spec)
        return JSONResponse(stream.describe(), status_code=201)

    @handler
    async def list_streams(request: Request) -> Response:
        return JSONResponse([st.describe() for st in state().streams.streams.values()])

    @handler
    async def get_stream(request: Request) -> Response:
        return JSONResponse(state().streams.get(request.path_params["stream"]).describe())

    @handler
    async def delete_stream(request: Request) -> Response:
        s = state()
        stream = await asyncio.to_thread(s.streams.remove, request.path_params["stream"])
        return JSONResponse(stream.describe())

    @handler
    async def stream_events(request: Request) -> Response:
        s = state()
        name = request.path_params["stream"]
        s.streams.get(name)  # 404 before the stream of events starts
        return StreamingResponse(
            s.streams.events(name, draining),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # ---- the page, info, metrics
    page = resources.files("slowfast_deploy.serve").joinpath("static/index.html").read_text()

    @handler
    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    @handler
    async def info(request: Request) -> Response:
        s = state()
        return JSONResponse(
            {
                "name": options.name,
                "backend": s.backend.info.name,
                "precision": s.backend.info.precision,
                "num_classes": s.num_classes,
                "labels": names_for(options.labels, s.num_classes) is not None,
                "views": [v for v, why in s.views.items() if why is None],
                "max_upload_bytes": options.max_upload_bytes,
                "max_batch": options.max_batch,
                "streams": True,
            }
        )

    @handler
    async def prometheus(request: Request) -> Response:
        if "state" in holder:
            metrics.queue_depth.set(holder["state"].batcher.queued)
            metrics.decode_depth.set(holder["state"].decoder.pending)
        content, content_type = metrics.render()
        return Response(content, media_type=content_type)

    routes = [
        Route("/", index),
        Route("/metrics", prometheus),
        Route("/v1/info", info),
        Route("/v1/predict", predict, methods=["POST"]),
        Route("/v1/timeline", timeline, methods=["POST"]),
        Route("/v1/streams", add_stream, methods=["POST"]),
        Route("/v1/streams", list_streams, methods=["GET"]),
        Route("/v1/streams/{stream}", get_stream, methods=["GET"]),
        Route("/v1/streams/{stream}", delete_stream, methods=["DELETE"]),
        Route("/v1/streams/{stream}/events", stream_events, methods=["GET"]),
        Route("/v2", server_metadata),
        Route("/v2/health/live", live),
        Route("/v2/health/ready", ready),
        Route("/v2/models/{name}", model_metadata),
        Route("/v2/models/{name}/versions/{version}", model_metadata),
        Route("/v2/models/{name}/ready", model_ready),
        Route("/v2/models/{name}/config", model_config),
        Route("/v2/models/{name}/versions/{version}/ready", model_ready),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
    ]

    def route_of(scope: dict[str, Any]) -> str:
        for route in routes:
            match, _ = route.matches(scope)
            if match != Match.NONE:
                return route.path
        return "other"

    middleware = [Middleware(ObserveMiddleware, metrics=metrics, route_of=route_of)]
    if options.api_key:
        middleware.append(
            Middleware(ApiKeyMiddleware, api_key=options.api_key, on_reject=metrics.failure)
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    app.state.metrics = metrics
    return app


def _open(model: ModelConfig | Backend, options: ServeOptions, metrics: Metrics) -> ServeState:
    """Open everything a request needs (in a thread: loading a model takes seconds)."""
    owns = isinstance(model, ModelConfig)
    backend = model.open() if isinstance(model, ModelConfig) else model
    try:
        advertised, num_classes = _probe(backend)
        supported: dict[int, str | None] = {}
        for num in VIEWS:
            try:
                check_model_views(backend, view_spec(num))
                supported[num] = None
            except ModelFormatError as err:
                supported[num] = str(err)
        batcher = ModelLoop(
            backend,
            max_batch=options.max_batch,
            max_wait_ms=options.max_wait_ms,
            max_queue=options.max_queue,
            on_batch=metrics.observe_batch,
        )
        decoder = DecodeService(
            DecodeOptions(options.decoder, options.frame_count),  # type: ignore[arg-type]
            num_workers=options.num_workers,
            timeout_s=options.decode_timeout_s,
            max_pending=options.max_queue,
        )
        decoder.start()
        upload_dir = tempfile.mkdtemp(prefix="slowfast-serve-", dir=options.tmp_dir)  # 0700
        streams = StreamRegistry(
            backend,
            batcher.queue,
            allow_dirs=options.allow_dirs,
            allow_urls=options.allow_urls,
            labels=options.labels,
            max_batch=options.max_batch,
        )
    except BaseException:
        if owns:
            backend.close()
        raise
    return ServeState(
        backend=backend,
        batcher=batcher,
        decoder=decoder,
        upload_dir=upload_dir,
        input=kserve.TensorSpec(
            INPUT_NAME, advertised, kserve.KSERVE_DTYPES[input_dtype_of(backend)]
        ),
        output=kserve.TensorSpec(OUTPUT_NAME, (-1, num_classes)),
        num_classes=num_classes,
        views=supported,
        streams=streams,
        owns_backend=owns,
    )


def _close(state: ServeState) -> None:
    state.streams.close()
    state.batcher.close()
    state.decoder.close()
    shutil.rmtree(state.upload_dir, ignore_errors=True)
    if state.owns_backend:
        state.backend.close()
    logger.info("stopped; removed %s", state.upload_dir)


__all__ = ["BatchedBackend", "ServeState", "create_app"]

"""The HTTP doors: each route parses its request (``protocol``), calls the service
(``service``) and answers (vLLM's ``api_router.py``).

| route                                   | what                                              |
| --------------------------------------- | ------------------------------------------------- |
| ``GET /``                               | the page: drop a video, see top-5 and a timeline  |
| ``GET /v2``, ``/v2/health/{live,ready}``| KServe v2 server metadata and probes               |
| ``GET /v2/models/{name}[/ready]``       | model metadata (its real input and output)        |
| ``POST /v2/models/{name}/infer``        | tensors in, the model's output out (JSON, binary) |
| ``POST /v1/predict?views=&topk=``       | a video -> ``predict --format json``'s records    |
| ``POST /v1/timeline?window=&stride=...``| a video -> ``timeline``'s output (json, csv, srt) |
| ``/v1/streams[/{stream}[/events]]``     | live streams: add, list, describe, remove, SSE    |
| ``GET /v1/info``                        | the model, the limits (for the page)              |
| ``GET /metrics``                        | Prometheus                                        |

Every failure is a ``Problem``, answered as JSON with its ``reason`` and HTTP status
(``answer_problems``); nothing a client sends stops the server.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from importlib import resources

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from slowfast_deploy.engine.batching import BatcherClosed, QueueFull
from slowfast_deploy.errors import Reason, SlowFastDeployError, VideoDecodeError
from slowfast_deploy.labels import names_for
from slowfast_deploy.serve import kserve, protocol
from slowfast_deploy.serve.metrics import Metrics
from slowfast_deploy.serve.problems import Problem, video_problem
from slowfast_deploy.serve.service import InferenceService

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 1
Handler = Callable[["Api", Request], Awaitable[Response]]


def problem_response(problem: Problem, metrics: Metrics) -> JSONResponse:
    metrics.failure(problem.reason)
    headers = dict(problem.headers)
    if problem.status in (429, 503) and "Retry-After" not in headers:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return JSONResponse(problem.body(), status_code=problem.status, headers=headers)


def problem_of(err: Exception) -> Problem | None:
    """The problem an exception of the service or the library is, if it is one."""
    if isinstance(err, Problem):
        return err
    if isinstance(err, QueueFull | BatcherClosed):
        busy = isinstance(err, QueueFull)
        return Problem(Reason.QUEUE_FULL if busy else Reason.NOT_READY, str(err))
    if isinstance(err, VideoDecodeError):
        return video_problem(err.reason, str(err))
    if isinstance(err, SlowFastDeployError | ValueError):  # the library's checks: they name
        return Problem(Reason.INVALID, str(err))  # the value and the range
    return None


def answer_problems(fn: Handler) -> Handler:
    """The route, with every failure answered as a problem (a bug: 500, logged)."""

    @functools.wraps(fn)
    async def wrapped(api: Api, request: Request) -> Response:
        try:
            return await fn(api, request)
        except ClientDisconnect:
            logger.info("%s %s: the client went away", request.method, request.url.path)
            return Response(status_code=400)
        except Exception as err:
            problem = problem_of(err)
            if problem is None:
                logger.exception("%s %s failed", request.method, request.url.path)
                problem = Problem(Reason.INTERNAL, "internal error (logged on the server)")
            return problem_response(problem, api.metrics)

    return wrapped


async def http_error(request: Request, exc: Exception, metrics: Metrics) -> Response:
    """Starlette's own 404 and 405, as problems."""
    assert isinstance(exc, HTTPException)
    reason = {404: Reason.NOT_FOUND, 405: Reason.METHOD_NOT_ALLOWED}.get(
        exc.status_code, Reason.BAD_REQUEST
    )
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return problem_response(Problem(reason, message, status=exc.status_code), metrics)


class Api:
    """The routes of one service."""

    def __init__(self, service: InferenceService) -> None:
        self.service = service
        self.metrics = service.metrics
        page = resources.files("slowfast_deploy.serve").joinpath("static/index.html")
        self.page = page.read_text()

    # ---- the Open Inference Protocol
    @answer_problems
    async def server_metadata(self, request: Request) -> Response:
        return JSONResponse(protocol.SERVER_METADATA)

    @answer_problems
    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    @answer_problems
    async def ready(self, request: Request) -> Response:
        if not self.service.ready:
            raise Problem(Reason.NOT_READY, "the model is still loading")
        return JSONResponse({"ready": True})

    @answer_problems
    async def model_metadata(self, request: Request) -> Response:
        model = self.service.model
        protocol.ModelRef.parse(request.path_params, model.name)
        return JSONResponse(
            kserve.model_metadata(model.name, model.backend, model.input, model.output)
        )

    @answer_problems
    async def model_config(self, request: Request) -> Response:
        model = self.service.model
        protocol.ModelRef.parse(request.path_params, model.name)
        max_batch = self.service.options.batch.max_batch
        config = kserve.model_config(
            model.name, model.backend, model.input, model.output, max_batch=max_batch
        )
        return JSONResponse(config)

    @answer_problems
    async def model_ready(self, request: Request) -> Response:
        model = self.service.model
        protocol.ModelRef.parse(request.path_params, model.name)
        return JSONResponse({"name": model.name, "ready": True})

    @answer_problems
    async def infer(self, request: Request) -> Response:
        service, model = self.service, self.service.model
        protocol.ModelRef.parse(request.path_params, model.name)
        limit = service.options.limits.max_upload_bytes
        with service.admitted():
            protocol.check_identity_encoding(request.headers)
            async with service.tensor_memory(protocol.declared_size(request.headers, limit)):
                parsed = await protocol.read_infer(
                    request.stream(), request.headers, model.input, limit
                )
                values = await service.infer(parsed)
        content, headers = kserve.infer_response(model.name, parsed, model.output, values)
        return Response(content, headers=headers)

    # ---- videos
    @answer_problems
    async def predict(self, request: Request) -> Response:
        service = self.service
        query = protocol.PredictQuery.parse(request.query_params, service.model)
        with service.admitted():
            source = await protocol.read_video_source(request.stream(), request.headers)
            async with service.video_file(source) as video:
                prediction = await service.predict(video, query)
        return JSONResponse([prediction.to_dict(with_scores=True)])  # predict --format json

    @answer_problems
    async def timeline(self, request: Request) -> Response:
        service = self.service
        query = protocol.TimelineQuery.parse(request.query_params, service.model)
        with service.admitted():
            source = await protocol.read_video_source(request.stream(), request.headers)
            async with service.video_file(source) as video:
                timeline = await service.timeline(video, query.plan)
        return Response(query.render(timeline, service.labels), media_type=query.media_type)

    # ---- live streams
    @answer_problems
    async def add_stream(self, request: Request) -> Response:
        self.service.require_ready()  # 503 while loading, before the body is read
        spec = await protocol.read_json(request.stream(), request.headers)
        stream = await self.service.add_stream(spec)
        return JSONResponse(stream.describe(), status_code=201)

    @answer_problems
    async def list_streams(self, request: Request) -> Response:
        return JSONResponse([stream.describe() for stream in self.service.streams()])

    @answer_problems
    async def get_stream(self, request: Request) -> Response:
        return JSONResponse(self.service.stream(request.path_params["stream"]).describe())

    @answer_problems
    async def delete_stream(self, request: Request) -> Response:
        stream = await self.service.remove_stream(request.path_params["stream"])
        return JSONResponse(stream.describe())

    @answer_problems
    async def stream_events(self, request: Request) -> Response:
        return StreamingResponse(
            self.service.stream_events(request.path_params["stream"]),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # ---- the page, info, metrics
    @answer_problems
    async def index(self, request: Request) -> Response:
        return HTMLResponse(self.page)

    @answer_problems
    async def info(self, request: Request) -> Response:
        model, options = self.service.model, self.service.options
        return JSONResponse(
            model.info(
                labels=names_for(self.service.labels, model.num_classes) is not None,
                max_upload_bytes=options.limits.max_upload_bytes,
                max_batch=options.batch.max_batch,
            )
        )

    @answer_problems
    async def prometheus(self, request: Request) -> Response:
        self.service.observe_queues()
        content, content_type = self.metrics.render()
        return Response(content, media_type=content_type)

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index),
            Route("/metrics", self.prometheus),
            Route("/v1/info", self.info),
            Route("/v1/predict", self.predict, methods=["POST"]),
            Route("/v1/timeline", self.timeline, methods=["POST"]),
            Route("/v1/streams", self.add_stream, methods=["POST"]),
            Route("/v1/streams", self.list_streams, methods=["GET"]),
            Route("/v1/streams/{stream}", self.get_stream, methods=["GET"]),
            Route("/v1/streams/{stream}", self.delete_stream, methods=["DELETE"]),
            Route("/v1/streams/{stream}/events", self.stream_events, methods=["GET"]),
            Route("/v2", self.server_metadata),
            Route("/v2/health/live", self.live),
            Route("/v2/health/ready", self.ready),
            Route("/v2/models/{name}", self.model_metadata),
            Route("/v2/models/{name}/versions/{version}", self.model_metadata),
            Route("/v2/models/{name}/ready", self.model_ready),
            Route("/v2/models/{name}/config", self.model_config),
            Route("/v2/models/{name}/versions/{version}/ready", self.model_ready),
            Route("/v2/models/{name}/infer", self.infer, methods=["POST"]),
            Route("/v2/models/{name}/versions/{version}/infer", self.infer, methods=["POST"]),
        ]


__all__ = ["Api", "answer_problems", "http_error", "problem_of", "problem_response"]

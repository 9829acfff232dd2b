"""The ASGI app: the Open Inference Protocol for tensors, video endpoints, metrics, the page.

``create_app(model, options)`` builds one Starlette app over one ``InferenceService``
(``service``), its routes (``routes``), the metrics and access log, and the API key check.
``server.run_server`` and ``server.serve`` run it on uvicorn, ``ray_serve`` deploys the same
object on Ray Serve. The service opens in the app's lifespan (the model behind the batcher,
the decode pools, a private 0700 directory for uploads) and closes at shutdown.

A video is a multipart upload (field ``video``), or JSON ``{"path": ...}`` (under
``--allow-dir``) or ``{"url": ...}`` (under ``--allow-url``). Every failure is a ``Problem``:
JSON with a ``reason`` code and its HTTP status; nothing a client sends stops the server.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Match, Route

from slowfast_deploy.serve.metrics import Metrics, ObserveMiddleware
from slowfast_deploy.serve.options import ServeOptions
from slowfast_deploy.serve.routes import Api, http_error
from slowfast_deploy.serve.security import ApiKeyMiddleware
from slowfast_deploy.serve.service import BatchedBackend, InferenceService, ServedModel


def _route_of(routes: list[Route], scope: dict[str, Any]) -> str:
    """The template of the route ``scope`` matches (metrics label it so), or ``other``."""
    for route in routes:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            return route.path
    return "other"


def create_app(model: ServedModel, options: ServeOptions | None = None) -> Starlette:
    """The service for ``model``: an ``sd.Model`` (its backend and labels, left open), a
    model file or ``ModelConfig`` (opened at start-up, closed at shutdown), or a backend
    already open (left open)."""
    options = options if options is not None else ServeOptions()
    metrics = Metrics()
    service = InferenceService(model, options, metrics)
    routes = Api(service).routes()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await service.start()
        except BaseException as err:  # kept for ``server.serve`` to raise in its caller
            app.state.startup_error = err
            raise
        try:
            yield
        finally:
            await service.close()

    middleware = [
        Middleware(
            ObserveMiddleware, metrics=metrics, route_of=functools.partial(_route_of, routes)
        )
    ]
    if options.api_key:
        middleware.append(
            Middleware(ApiKeyMiddleware, api_key=options.api_key, on_reject=metrics.failure)
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: functools.partial(http_error, metrics=metrics)},
    )
    app.state.metrics = metrics
    app.state.service = service
    app.state.begin_drain = service.begin_drain  # SIGTERM (server.run_server): streams end
    return app


__all__ = ["BatchedBackend", "InferenceService", "create_app"]

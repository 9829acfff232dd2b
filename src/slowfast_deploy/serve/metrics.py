"""Prometheus metrics (``/metrics``) and the access log, as one ASGI middleware.

| metric                                   | what                                           |
| ---------------------------------------- | ---------------------------------------------- |
| ``slowfast_requests_total``              | requests by route, method and status           |
| ``slowfast_request_latency_seconds``     | histogram of request latency, by route         |
| ``slowfast_batch_size``                  | histogram of clips per model call              |
| ``slowfast_model_latency_seconds``       | histogram of model-call latency                |
| ``slowfast_queue_depth``                 | clips waiting for the model                    |
| ``slowfast_decode_queue_depth``          | videos waiting for a decoder                   |
| ``slowfast_failures_total``              | failed requests by reason code                 |

Each app has its own registry, so several apps (tests) never share counters. Routes are
labelled by their template (``/v2/models/{name}/infer``), never by the raw path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

access_log = logging.getLogger("slowfast_deploy.serve.access")

BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "slowfast_requests", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "slowfast_request_latency_seconds",
            "request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "slowfast_batch_size", "clips per model call", buckets=BATCH_BUCKETS, registry=r
        )
        self.model_latency = Histogram(
            "slowfast_model_latency_seconds",
            "model call latency",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("slowfast_queue_depth", "clips waiting for the model", registry=r)
        self.decode_depth = Gauge(
            "slowfast_decode_queue_depth", "videos waiting for a decoder", registry=r
        )
        self.failures = Counter("slowfast_failures", "failed requests", ["reason"], registry=r)

    def observe_batch(self, num_clips: int, infer_s: float) -> None:
        self.batch_size.observe(num_clips)
        self.model_latency.observe(infer_s)

    def failure(self, reason: str) -> None:
        self.failures.labels(reason).inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ObserveMiddleware:
    """Counts and times every HTTP request and writes one access-log line for it."""

    def __init__(self, app: Any, metrics: Metrics, route_of: Callable[[dict[str, Any]], str]):
        self.app, self.metrics, self.route_of = app, metrics, route_of

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500
        sent = 0

        async def observe(message: dict[str, Any]) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            elapsed = time.perf_counter() - t0
            route = self.route_of(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            client = scope.get("client") or ("-", 0)
            query = scope.get("query_string", b"").decode("latin-1")
            access_log.info(
                '%s "%s %s%s" %d %d %.1fms',
                client[0],
                scope["method"],
                scope["path"],
                f"?{query}" if query else "",
                status,
                sent,
                elapsed * 1e3,
            )

"""The same app on Ray Serve: ``slowfast-deploy serve --engine ray [--replicas N]``.

One code path: each replica builds ``app.create_app`` (``@serve.ingress`` over the ASGI app,
its lifespan run by Ray Serve), so the endpoints, limits, batching and metrics are those of
the embedded server; Ray Serve's proxy spreads requests over the replicas and restarts a
replica that dies. The model file's bytes go through Ray's object store (as the Ray engine
does), so a replica on another node needs no copy of it.

Without ``--ray-address`` Ray runs on this machine only, on loopback, and its processes die
with this one (``engine._reaper``). Ray is never stopped from here (``ray stop`` would stop
other users' Ray): this process shuts its own Serve application and Ray session down.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from slowfast_deploy.engine._reaper import start_reaper
from slowfast_deploy.engine.ray_data import check_reachable
from slowfast_deploy.errors import BackendUnavailableError
from slowfast_deploy.runtime import ModelConfig, model_files
from slowfast_deploy.serve.app import create_app
from slowfast_deploy.serve.options import ServeOptions
from slowfast_deploy.serve.server import check_can_serve

logger = logging.getLogger(__name__)

APP_NAME = "slowfast"


def _ray_serve() -> tuple[Any, Any]:
    try:
        import ray
        from ray import serve
    except ImportError as err:
        raise BackendUnavailableError(
            f"--engine ray needs Ray Serve, which is not installed ({err.name}); "
            "pip install 'slowfast-deploy[ray,serve]'"
        ) from None
    return ray, serve


def init_ray(ray_address: str | None) -> bool:
    """Join ``ray_address``, or start Ray on this machine on loopback; True if started here."""
    ray, _ = _ray_serve()
    if ray.is_initialized():
        return False
    common = {"logging_level": logging.ERROR, "log_to_driver": False}
    if ray_address:
        check_reachable(ray_address)
        ray.init(address=ray_address, **common)
        return False
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(
        address="local",
        _node_ip_address="127.0.0.1",  # this machine only: loopback
        num_cpus=os.cpu_count() or 1,
        include_dashboard=False,
        **common,
    )
    start_reaper()  # Ray's processes die with this driver
    return True


def build_application(config: ModelConfig, options: ServeOptions, *, replicas: int) -> Any:
    """The Ray Serve application: ``replicas`` copies of ``create_app(config, options)``."""
    ray, serve = _ray_serve()
    files_ref = ray.put({p.name: p.read_bytes() for p in model_files(config.path)})
    model_name = Path(config.path).name

    def build_app() -> Any:  # runs on each replica: the model file from the object store
        directory = tempfile.mkdtemp(prefix="slowfast-serve-model-")
        for name, data in ray.get(files_ref).items():
            (Path(directory) / name).write_bytes(data)
        return create_app(config.at(Path(directory) / model_name), options)

    @serve.deployment(
        name="SlowFast",
        num_replicas=replicas,
        ray_actor_options={"num_cpus": 0},  # the model's threads are its own business
        max_ongoing_requests=max(16, 4 * options.limits.max_requests),
        health_check_period_s=2,
        health_check_timeout_s=30,
        graceful_shutdown_timeout_s=30,
    )
    @serve.ingress(build_app)
    class SlowFast:
        pass

    return SlowFast.bind()  # type: ignore[attr-defined]  # added by @serve.deployment


def run_ray_serve(
    config: ModelConfig,
    options: ServeOptions,
    *,
    host: str,
    port: int,
    replicas: int,
    ray_address: str | None,
) -> None:
    """Deploy on Ray Serve and block until SIGTERM/SIGINT, then shut the application down."""
    ray, serve = _ray_serve()
    check_can_serve(options)
    owned = init_ray(ray_address)
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(
            build_application(config, options, replicas=replicas),
            name=APP_NAME,
            route_prefix="/",
        )
        logger.info("Ray Serve: %d replica(s) on http://%s:%d", replicas, host, port)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        logger.info("stopping: the replicas finish their requests")
        serve.delete(APP_NAME)
        serve.shutdown()
    finally:
        if owned:
            ray.shutdown()

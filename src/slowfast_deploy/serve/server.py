"""Run the app on uvicorn: 127.0.0.1 unless told otherwise; SIGTERM drains, then exits.

``run_server`` is ``slowfast-deploy serve``: it blocks until SIGTERM (or Ctrl-C), when uvicorn
stops accepting connections, lets the requests in flight finish (up to ``drain_s`` seconds),
then the app's lifespan closes the batcher, the decoders and the upload directory.
``serve`` starts the same server from Python, in a thread, and hands back a
``RunningServer`` that stops it the same way::

    import slowfast_deploy as sd

    model = sd.open_model("slowfast.onnx")
    with sd.serve(model, port=8000) as server:     # returns once the model answers
        httpx.post(server.url + "/v1/predict", files={"video": open("a.mp4", "rb")})
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from slowfast_deploy._optional import require
from slowfast_deploy.labels import resolve_labels
from slowfast_deploy.serve.options import ServeOptions

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_DRAIN_S = 60.0
SERVE_MODULES = ("starlette", "uvicorn", "python_multipart", "prometheus_client")


def _uvicorn_server(app: Any, *, host: str, port: int, drain_s: float) -> Any:
    """uvicorn's server for ``app``, but a drained SIGTERM exits 0 (uvicorn re-raises the
    signal after its graceful shutdown, which ends the process by that signal), and the app
    hears of it at once (``app.state.begin_drain``: event streams end, so they do not hold
    the drain open). Off the main thread it installs no signal handlers."""
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning(
            "listening on %s: reachable from other machines; use --api-key and a TLS proxy", host
        )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,  # the app writes its own (slowfast_deploy.serve.access)
        log_config=None,  # the caller configured logging
        timeout_graceful_shutdown=int(drain_s),
        lifespan="on",
    )

    class Server(uvicorn.Server):
        def __init__(self, config: uvicorn.Config) -> None:
            super().__init__(config)
            self.listening = threading.Event()  # set once the sockets are bound (or it failed)

        def handle_exit(self, sig: int, frame: Any) -> None:
            begin = getattr(getattr(app, "state", None), "begin_drain", None)
            if begin is not None and not self.should_exit:
                begin()
            super().handle_exit(sig, frame)

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            self.listening.set()

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server(config)


def check_can_serve(options: ServeOptions) -> None:
    """The serve extra is installed and every ``allow_dirs`` entry is a directory."""
    for module in SERVE_MODULES:
        require(module, extra="serve", purpose="slowfast-deploy serve")
    for directory in options.allow_dirs:
        if not Path(directory).is_dir():
            raise OSError(f"--allow-dir {directory}: not a directory")


def build_app(model: Any, options: ServeOptions) -> Any:
    """``app.create_app``, after ``check_can_serve``."""
    check_can_serve(options)
    from slowfast_deploy.serve.app import create_app  # Starlette: the 'serve' extra

    return create_app(model, options)


def run_server(
    model: Any,
    options: ServeOptions,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    drain_s: float = DEFAULT_DRAIN_S,
) -> None:
    """Serve ``model`` (what ``create_app`` takes) until SIGTERM/SIGINT; returns after the
    drain."""
    server = _uvicorn_server(build_app(model, options), host=host, port=port, drain_s=drain_s)
    logger.info("listening on http://%s:%d", host, port)
    server.run()
    if not server.started:
        raise OSError(f"the server could not start on {host}:{port} (see the log above)")


class RunningServer:
    """A server started by ``serve``: ``url`` (``http://host:port``), ``port`` (the one bound,
    also for ``port=0``), ``app``; ``stop()`` (or leaving the ``with`` block) drains it as
    SIGTERM does and waits until its threads and processes are gone."""

    def __init__(self, server: Any, thread: threading.Thread, host: str, drain_s: float) -> None:
        self._server, self._thread, self._drain_s = server, thread, drain_s
        self.app = server.config.app
        self.host = host
        self.port = int(server.servers[0].sockets[0].getsockname()[1])
        self.url = f"http://{host}:{self.port}"

    @property
    def service(self) -> Any:
        """The app's ``service.InferenceService`` (its counters and hooks)."""
        return self.app.state.service

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self._thread.is_alive():
            self._server.handle_exit(signal.SIGTERM, None)
            self._thread.join(self._drain_s + 60)
        if self._thread.is_alive():
            raise RuntimeError(f"the server at {self.url} did not stop")

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningServer({self.url!r})"


def serve(
    model: Any,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    options: ServeOptions | None = None,
    drain_s: float = DEFAULT_DRAIN_S,
) -> RunningServer:
    """Start ``slowfast-deploy serve``'s server for ``model`` (an ``sd.Model``, a model file,
    a ``ModelConfig`` or an open backend) in a background thread; returns once it listens
    with the model loaded. ``port=0`` takes a free port (``.port`` says which). ``options``
    default to the CLI's defaults: the model named after its file, the Kinetics-400 class
    names (an ``sd.Model``'s own labels)."""
    if options is None:  # the CLI's: the file's stem, the Kinetics-400 names (an sd.Model's own)
        labels = None if hasattr(model, "labels") else resolve_labels(None)
        options = ServeOptions(name=_default_name(model), labels=labels)
    server = _uvicorn_server(build_app(model, options), host=host, port=port, drain_s=drain_s)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as err:  # uvicorn exits (SystemExit) when startup fails
            failure.append(err)
        finally:
            server.listening.set()

    thread = threading.Thread(target=run, name=f"slowfast-serve-{port}", daemon=True)
    thread.start()
    server.listening.wait()
    if not server.started:
        thread.join()
        error = getattr(server.config.app.state, "startup_error", None)
        if isinstance(error, Exception):
            raise error
        raise OSError(f"the server could not start on {host}:{port} (see the log)") from (
            failure[0] if failure else None
        )
    running = RunningServer(server, thread, host, drain_s)
    atexit.register(running.stop)  # a script that ends without stop() still drains
    return running


def _default_name(model: Any) -> str:
    """The CLI's default model name: the model file's stem."""
    path = getattr(getattr(model, "config", model), "path", model)
    if isinstance(path, str | os.PathLike):
        return Path(path).stem or "slowfast"
    return ServeOptions().name

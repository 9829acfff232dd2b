"""Run the app on uvicorn: 127.0.0.1 unless told otherwise; SIGTERM drains, then exits.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections, lets the requests in flight
finish (up to ``drain_s`` seconds), then the app's lifespan closes the batcher, the decoders
and the upload directory.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_DRAIN_S = 60.0


def run_server(
    app: Any,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    drain_s: float = DEFAULT_DRAIN_S,
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT; returns after the drain."""
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
        log_config=None,  # the CLI configured logging
        timeout_graceful_shutdown=int(drain_s),
        lifespan="on",
    )

    class Server(uvicorn.Server):
        """uvicorn's server, but a drained SIGTERM exits 0 (uvicorn re-raises the signal
        after its graceful shutdown, which ends the process by that signal), and the app
        hears of it at once (``app.state.begin_drain``: event streams end, so they do not
        hold the drain open)."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            begin = getattr(getattr(app, "state", None), "begin_drain", None)
            if begin is not None and not self.should_exit:
                begin()
            super().handle_exit(sig, frame)

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

    server = Server(config)
    logger.info("listening on http://%s:%d", host, port)
    server.run()
    if not server.started:
        raise OSError(f"the server could not start on {host}:{port} (see the log above)")

"""Run the app on uvicorn: 127.0.0.1 unless told otherwise; SIGTERM drains, then exits.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections, lets the requests in flight
finish (up to ``drain_s`` seconds), then the app's lifespan closes the batcher, the decoders
and the upload directory.
"""

from __future__ import annotations

import logging
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
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise OSError(f"the server could not start on {host}:{port} (see the log above)")

"""A real server on loopback for the serve tests: uvicorn in a thread, on a free port of
127.0.0.1 (plain helpers, imported as ``tests.serve.helpers``; the fixture is in conftest.py)."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("python_multipart")
pytest.importorskip("prometheus_client")
httpx = pytest.importorskip("httpx")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    port: int
    app: Any

    def client(self, **kwargs: Any) -> Any:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)


@contextlib.contextmanager
def running(model: Path, **options: Any) -> Iterator[RunningServer]:
    """``create_app(model, ServeOptions(**options))`` served by uvicorn in a thread."""
    import uvicorn

    from slowfast_deploy.runtime import ModelConfig
    from slowfast_deploy.serve.app import create_app
    from slowfast_deploy.serve.options import ServeOptions

    options.setdefault("name", "tiny")
    app = create_app(ModelConfig(str(model)), ServeOptions(**options))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    while httpx.get(f"{url}/v2/health/ready", timeout=5).status_code != 200:  # model loading
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not become ready")
        time.sleep(0.05)
    try:
        yield RunningServer(url, port, app)
    finally:
        server.should_exit = True
        thread.join(30)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text ``text`` (0 if absent)."""
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return 0.0

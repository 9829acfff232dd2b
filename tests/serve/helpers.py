"""A real server on loopback for the serve tests: uvicorn in a thread, on a free port of
127.0.0.1 (plain helpers, imported as ``tests.serve.helpers``; the fixture is in conftest.py)."""

from __future__ import annotations

import contextlib
import re
import socket
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

    @property
    def service(self) -> Any:
        """The app's ``InferenceService``: its counters and ``wait_for`` hook."""
        return self.app.state.service

    def client(self, **kwargs: Any) -> Any:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)


@contextlib.contextmanager
def running(model: Path, **options: Any) -> Iterator[RunningServer]:
    """``slowfast_deploy.serve.serve(model, ServeOptions(**options))`` on a free port: the
    CLI's server (uvicorn) in a thread, returned once it listens with the model loaded."""
    from slowfast_deploy.runtime import ModelConfig
    from slowfast_deploy.serve import serve
    from slowfast_deploy.serve.options import ServeOptions

    options.setdefault("name", "tiny")
    with serve(ModelConfig(str(model)), port=0, options=ServeOptions(**options)) as server:
        yield RunningServer(server.url, server.port, server.app)


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

"""A real server on loopback: uvicorn in a thread, on a free port of 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.serve.helpers import RunningServer, running


@pytest.fixture(scope="session")
def server(tiny_onnx: Path, video_dir: Path) -> Iterator[RunningServer]:
    """The tiny model, batching up to 8 clips, server paths allowed under ``video_dir``."""
    from slowfast_deploy.serve.options import BatchOptions

    batch = BatchOptions(max_batch=8, max_wait_ms=20)
    with running(tiny_onnx, batch=batch, allow_dirs=(str(video_dir),)) as s:
        yield s

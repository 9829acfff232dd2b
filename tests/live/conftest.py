"""Fixtures of the live tests: senders stopped by their own handles, test videos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.live.senders import Server, write_h264


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers a test starts; every one is killed when the test ends."""
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


@pytest.fixture(scope="session")
def h264_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of 340x256 H.264 at 30 fps (120 frames)."""
    return write_h264(tmp_path_factory.mktemp("live") / "pattern.mp4", seconds=4)


@pytest.fixture(scope="session")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """15 s of 340x256 H.264 at 30 fps: outlasts any test's stream."""
    return write_h264(tmp_path_factory.mktemp("live") / "long.mp4", seconds=15)

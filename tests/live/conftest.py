"""Real stream senders on loopback for the live tests: FFmpeg and GStreamer's RTSP server.

Every server binds 127.0.0.1 and is stopped through its own handle; nothing else is touched.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DEBIAN_PYTHON = "/usr/bin/python3"  # python3-gi is Debian's, not the venv's


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def have_rtsp_server() -> bool:
    if not Path(DEBIAN_PYTHON).exists():
        return False
    probe = subprocess.run(
        [DEBIAN_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg")
needs_rtsp = pytest.mark.skipif(
    not have_rtsp_server(),
    reason="needs GStreamer's RTSP server (python3-gi gir1.2-gst-rtsp-server-1.0, see .ci/run)",
)


def write_h264(path: Path, *, seconds: float, size: str = "340x256", fps: int = 30) -> Path:
    """An H.264 (yuv420p, no B-frames) mp4 of FFmpeg's moving test pattern."""
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc2=size={size}:rate={fps}", "-t", str(seconds),
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(fps),
         "-bf", "0", str(path)],
        check=True,
    )  # fmt: skip
    return path


class Server:
    """A sender subprocess: started, waited for, and stopped by its own handle."""

    def __init__(self, args: list[str], *, ready: str | None = None, port: int) -> None:
        self.args, self.ready, self.port = args, ready, port
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout_s: float = 20.0) -> Server:
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        if self.ready is not None:  # the server prints a line once it listens
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            assert self.ready in line, f"server did not start: {line!r} {self.proc.stderr!r}"
        else:  # wait until the port listens
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", self.port)) == 0:
                        break
                assert self.proc.poll() is None, "sender exited"
                time.sleep(0.05)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def rtsp_server(video: Path, port: int) -> Server:
    args = [DEBIAN_PYTHON, str(HERE / "rtsp_server.py"), str(video), str(port)]
    return Server(args, ready="ready", port=port)


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


def watch_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "slowfast_deploy", "watch", *args]

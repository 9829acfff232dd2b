"""Real stream senders on loopback for the live tests: FFmpeg and GStreamer's RTSP server.

Every server binds 127.0.0.1 and is stopped through its own handle; nothing else is touched.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DEBIAN_PYTHON = "/usr/bin/python3"  # python3-gi is Debian's, not the venv's


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    """Whether a TCP socket listens on 127.0.0.1:``port`` (Linux /proc/net/tcp, state 0A)."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        return any(
            fields[1] == wanted and fields[3] == "0A"
            for fields in (line.split() for line in table.readlines()[1:])
        )


def udp_bound(port: int) -> bool:
    """Whether a UDP socket is bound to 127.0.0.1:``port`` (Linux /proc/net/udp)."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as table:
        return any(line.split()[1] == wanted for line in table.readlines()[1:])


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
    reason="needs GStreamer's RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0: test.sh)",
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
        elif self.args[-1].startswith("udp://"):  # a sender: nothing listens
            pass
        else:  # wait until the port listens (read from /proc: a probe would be its client)
            deadline = time.monotonic() + timeout_s
            while not listening(self.port):
                assert self.proc.poll() is None, f"sender exited: {self.proc.stderr.read()}"  # type: ignore[union-attr]
                assert time.monotonic() < deadline, f"nothing listens on {self.port}"
                time.sleep(0.05)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def rtsp_server(video: Path, port: int) -> Server:
    args = [DEBIAN_PYTHON, str(HERE / "rtsp_server.py"), str(video), str(port)]
    return Server(args, ready="ready", port=port)


def mpegts_server(video: Path, port: int) -> Server:
    """FFmpeg serving ``video``'s bitstream (``-c copy``) as MPEG-TS over TCP, in real time,
    to the first client that connects."""
    args = ["ffmpeg", "-loglevel", "error", "-re", "-i", str(video), "-c", "copy",
            "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1"]  # fmt: skip
    return Server(args, port=port)


def udp_sender(video: Path, port: int) -> Server:
    """FFmpeg sending ``video``'s bitstream (``-c copy``) as MPEG-TS over UDP, in real time;
    start it once the receiver is bound (``udp_bound``): UDP keeps nothing for a late one."""
    args = ["ffmpeg", "-loglevel", "error", "-re", "-i", str(video), "-c", "copy",
            "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"]  # fmt: skip
    return Server(args, ready=None, port=port)


def rtmp_server(video: Path, port: int) -> Server:
    """FFmpeg as an RTMP server sending ``video``'s bitstream (``-c copy``, FLV) in real time
    to the first client that plays ``rtmp://127.0.0.1:PORT/live/stream``."""
    args = ["ffmpeg", "-loglevel", "error", "-re", "-i", str(video), "-c", "copy", "-f", "flv",
            "-listen", "1", f"rtmp://127.0.0.1:{port}/live/stream"]  # fmt: skip
    return Server(args, port=port)


def watch_cmd(*args: str) -> list[str]:
    """``slowfast-deploy watch ARGS`` as a subprocess command line."""
    return [sys.executable, "-m", "slowfast_deploy", "watch", *args]

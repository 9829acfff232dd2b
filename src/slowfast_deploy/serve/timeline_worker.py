"""A timeline's decoding in a process of its own, so a decoder that crashes or hangs on an
uploaded file fails that request alone, never the server (as ``engine.pool`` does for whole
videos).

The child opens the video, plans the windows and sends each window's model input as soon as
it is complete (``timeline.windows.assemble_windows``, the code ``timeline`` runs in-process),
over a pipe whose small buffer keeps it at most one window ahead: memory stays flat for any
video length. The parent scores the windows through the server's batcher. A child that dies
fails the request (``decoder_died``); one that sends nothing for ``timeout_s`` while the
parent waits is killed (``decode_timeout``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

from slowfast_deploy.errors import Reason, VideoDecodeError
from slowfast_deploy.runtime.base import InputDType
from slowfast_deploy.timeline.windows import (
    TimelineStats,
    WindowClip,
    WindowPlan,
    assemble_windows,
    frame_range,
    plan_windows,
    wanted_frames,
)
from slowfast_deploy.video.decode import Decoder, VideoInfo, iter_frames, open_video

logger = logging.getLogger(__name__)


# a fresh interpreter importing only this module, never the server's ``__main__`` (as
# ``engine.pool`` starts its decoders)
_CHILD = "from slowfast_deploy.serve.timeline_worker import _child_main; _child_main()"


def _child_main() -> None:
    """Entry of the child: ``argv[1]`` is its end of the pipe."""
    with contextlib.suppress(OSError, AttributeError):  # Linux: die with the server
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(int(sys.argv[1]))
    path, plan, decoder, input_dtype = conn.recv()
    _decode(conn, path, plan, decoder, input_dtype)


def _decode(
    conn: Connection, path: str, plan: WindowPlan, decoder: Decoder, input_dtype: InputDType
) -> None:
    """Sends ("info", info, windows), ("clip", WindowClip)..., then ("done", stats) or
    ("error", reason, message)."""
    stats = TimelineStats()
    try:
        with open_video(path, decoder=decoder) as reader:
            info = reader.info
            first, stop = frame_range(info)
            windows = plan_windows(info.num_frames, plan, first=first, stop=stop)
            conn.send(("info", info, len(windows)))
            frames = iter_frames(reader, wanted_frames(windows), first=windows[0].start_frame)
            for clip in assemble_windows(
                frames,
                windows,
                fps=info.fps,
                preprocess=plan.preprocess,
                stats=stats,
                input_dtype=input_dtype,
            ):
                conn.send(("clip", clip))
        conn.send(("done", stats))
    except VideoDecodeError as err:
        conn.send(("error", err.reason, str(err)))
    except ValueError as err:
        conn.send(("error", "invalid", str(err)))
    except Exception as err:  # a decoder error inside the file: this request fails
        conn.send(("error", "decoder_crash", f"the decoder crashed ({type(err).__name__}: {err})"))
    finally:
        conn.close()


class TimelineDecoder:
    """Iterate for ``WindowClip``s of ``path``; ``info`` and ``num_windows`` are set once the
    first one (or the end) has come. ``VideoDecodeError`` (with a reason) for any failure."""

    def __init__(
        self,
        path: str,
        plan: WindowPlan,
        *,
        decoder: Decoder = "pyav",
        input_dtype: InputDType = "float32",
        timeout_s: float | None = 300.0,
    ) -> None:
        self.path, self.timeout_s = path, timeout_s
        self.info: VideoInfo | None = None
        self.num_windows = 0
        self.stats = TimelineStats()
        parent, child = Pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            child.close()
        self._conn = parent
        with contextlib.suppress(OSError):  # a child that died at once: recv says so
            parent.send((path, plan, decoder, input_dtype))

    @property
    def pid(self) -> int:
        return self._process.pid

    def _receive(self) -> Any:
        if self.timeout_s and not self._conn.poll(self.timeout_s):
            self.close()
            raise VideoDecodeError(
                f"{self.path}: decoding made no progress for {self.timeout_s:g} s and was "
                "stopped (a hung decoder)",
                reason=Reason.DECODE_TIMEOUT,
            )
        try:
            return self._conn.recv()
        except (EOFError, OSError) as err:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
            code = self._process.poll()
            raise VideoDecodeError(
                f"{self.path}: the decoder process died (exit code {code}) while decoding it; "
                "the file is probably corrupt",
                reason=Reason.DECODER_DIED,
            ) from err

    def open(self) -> None:
        """Wait for the video's info (raises as iteration does)."""
        message = self._receive()
        if message[0] == "error":
            self.close()
            raise VideoDecodeError(message[2], reason=message[1])
        _, self.info, self.num_windows = message

    def __iter__(self) -> Iterator[WindowClip]:
        if self.info is None:
            self.open()
        t0 = time.perf_counter()
        try:
            while True:
                message = self._receive()
                if message[0] == "clip":
                    yield message[1]
                elif message[0] == "done":
                    self.stats = message[1]
                    return
                else:
                    raise VideoDecodeError(message[2], reason=message[1])
        finally:
            logger.debug("%s decoded in %.1f s", self.path, time.perf_counter() - t0)
            self.close()

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._conn.close()

"""One worker process: a clean interpreter that dies with its parent, beats a shared
heartbeat and talks in typed messages over a pipe (the decode pool's and a served timeline's
decoders both run in one).

    parent                                   child (a fresh ``python -c``)
    WorkerProcess(target, *args) ──Setup──>  _child_main: sys.path, target(channel, *args)
    .send(message) / .recv()    <──pipe──>   channel.send / channel.recv (dataclasses)
    .stalled(timeout_s)          <─memfd──   channel.heartbeat.beat() per unit of progress

The child is a fresh interpreter that imports only this module and ``target``'s: never the
caller's ``__main__``. multiprocessing's spawn and forkserver both re-run the main script in
every child, so a plain script without an ``if __name__ == "__main__":`` guard (or code piped
to ``python -``) would start workers that each start workers, and die. On Linux the kernel
kills the child when its parent dies, even by ``kill -9`` (``PR_SET_PDEATHSIG``).

One stall rule for every worker: a child that is working (its heartbeat set) and makes no
progress (no beat) for ``timeout_s`` is stalled, and its owner kills it (``decode_timeout``);
a child that waits (for work, or for its parent to read) sets its heartbeat idle, so a slow
parent never looks like a hung child. A child that is gone is dead (``decoder_died``).
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

IDLE = 0.0  # the heartbeat's value while the child waits: no stall clock running
NO_TASK = -1


class Heartbeat:
    """Two values parent and child share through an anonymous memory file: the
    ``time.monotonic()`` of the child's last progress (``IDLE`` while it waits) and the id of
    the task it works on (``NO_TASK``: none)."""

    SIZE = 16

    def __init__(self, buffer: mmap.mmap) -> None:
        self._buffer = buffer
        self._time = ctypes.c_double.from_buffer(buffer, 0)
        self._task = ctypes.c_int64.from_buffer(buffer, 8)

    @classmethod
    def create(cls) -> tuple[Heartbeat, int]:
        """A new heartbeat and its file descriptor (for the child; the caller closes it)."""
        fd = os.memfd_create("slowfast-worker", 0)
        os.ftruncate(fd, cls.SIZE)
        heartbeat = cls(mmap.mmap(fd, cls.SIZE))
        heartbeat.task = NO_TASK
        return heartbeat, fd

    @property
    def time(self) -> float:
        return float(self._time.value)

    @property
    def task(self) -> int:
        return int(self._task.value)

    @task.setter
    def task(self, value: int) -> None:
        self._task.value = value

    def beat(self) -> None:
        """Progress: the stall clock starts over."""
        self._time.value = time.monotonic()

    def start(self, task: int) -> None:
        """Work on ``task`` begins (the stall clock runs)."""
        self._task.value = task
        self.beat()

    def idle(self) -> None:
        """The child waits (for work, or for the parent to read): no stall clock."""
        self._time.value = IDLE

    def done(self) -> None:
        """The task is finished: idle, and no task is blamed for what comes next."""
        self.idle()
        self._task.value = NO_TASK


@dataclass(frozen=True, slots=True)
class Setup:
    """The second message to a child (after ``sys.path``): what to run."""

    target: Callable[..., None]  # a module-level function: target(channel, *args)
    args: tuple[Any, ...]
    nice: int = 0


@dataclass(frozen=True, slots=True)
class Stop:
    """Sent to a child: finish what you hold and exit."""


class Channel:
    """The child's side: the pipe to its parent and the shared heartbeat."""

    def __init__(self, conn: Connection, heartbeat: Heartbeat) -> None:
        self.conn, self.heartbeat = conn, heartbeat

    def send(self, message: object) -> None:
        self.conn.send(message)

    def recv(self) -> object:
        return self.conn.recv()


_CHILD = "from slowfast_deploy.engine.worker import _child_main; _child_main()"


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies, even by ``kill -9``."""
    with contextlib.suppress(OSError, AttributeError):  # elsewhere the pipe's EOF ends it
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _child_main() -> None:
    """Entry of a worker process: ``argv`` = the pipe's fd, the heartbeat's fd, its role."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled once, by the parent
    conn = Connection(int(sys.argv[1]))
    heartbeat = Heartbeat(mmap.mmap(int(sys.argv[2]), Heartbeat.SIZE))
    sys.path[:] = conn.recv()  # before the Setup is unpickled: its target may be the caller's
    setup = conn.recv()
    if not isinstance(setup, Setup):
        raise TypeError(f"a worker's first message is a Setup, got {type(setup).__name__}")
    if setup.nice:
        os.nice(setup.nice)
    setup.target(Channel(conn, heartbeat), *setup.args)


class WorkerProcess:
    """A child running ``target(channel, *args)`` in a clean interpreter (see the module doc).

    ``sentinel`` is a pidfd, readable once the child has ended (for ``connection.wait``).
    """

    def __init__(self, target: Callable[..., None], *args: Any, nice: int = 0) -> None:
        parent, child = Pipe()
        self.heartbeat, heartbeat_fd = Heartbeat.create()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        role = f"{target.__module__}.{target.__qualname__}"  # shown by ps; unused by the child
        try:
            # the one place the package starts a worker process
            self.popen = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(child.fileno()), str(heartbeat_fd), role],
                pass_fds=(child.fileno(), heartbeat_fd),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            child.close()
            os.close(heartbeat_fd)
        self.conn = parent
        self.sentinel = os.pidfd_open(self.popen.pid)
        with contextlib.suppress(OSError):  # a child that died at once: its sentinel says so
            parent.send(sys.path)  # the parent's: test doubles and user modules import alike
            parent.send(Setup(target, args, nice))

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def stalled(self, timeout_s: float | None) -> bool:
        """Working, and no progress for ``timeout_s`` (None or 0: never stalled)."""
        beat = self.heartbeat.time
        return bool(timeout_s and beat != IDLE and time.monotonic() - beat > timeout_s)

    def send(self, message: object) -> None:
        """Send ``message``; a dead child is ignored here (its sentinel reports it)."""
        with contextlib.suppress(OSError):
            self.conn.send(message)

    def kill(self) -> None:
        if self.is_alive():
            self.popen.kill()

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)
        if not self.is_alive() and self.sentinel >= 0:
            os.close(self.sentinel)
            self.sentinel = -1

    def close(self, grace_s: float = 0.0) -> None:
        """Ask the child to stop (``Stop``), wait up to ``grace_s``, then kill it."""
        if grace_s > 0:
            self.send(Stop())
            self.join(grace_s)
        self.kill()
        self.join()
        self.conn.close()


def describe_exit(exitcode: int | None) -> str:
    """``exit code 3``, ``signal 9, SIGKILL``: how a child ended, for messages."""
    if exitcode is None:
        return "unknown cause"
    if exitcode < 0:
        try:
            return f"signal {-exitcode}, {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"

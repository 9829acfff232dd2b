"""Decode worker processes that survive crashed and hung decoders.

Each worker is a process fed over its own pipe, at most ``depth`` videos at a time, so the
pool always knows which video each worker holds. A worker that dies (segfault, OOM kill,
``kill -9``) is replaced; the video it was decoding is retried once in the fresh worker and
recorded as failed (``decoder_died``) if it kills that one too; the other videos it held
are handed out again without penalty. A decode that makes no progress (no heartbeat from the
decoder) for ``timeout_s`` seconds is killed and recorded as failed (``decode_timeout``): a
stall limit, so a two-hour video that keeps decoding is never cut off.

Results come back in completion order; at most ``prefetch`` videos are decoded ahead of the
consumer, so memory stays bounded whatever the number of jobs.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import mmap
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from typing import Any

from slowfast_deploy.engine.base import (
    DEFAULT_DECODE_TIMEOUT_S,
    DecodedVideo,
    DecodeOptions,
    VideoJob,
)
from slowfast_deploy.engine.decode import decode_job
from slowfast_deploy.errors import Reason
from slowfast_deploy.specs import ViewSpec

logger = logging.getLogger(__name__)

DECODER_NICE = 5  # decoders run below the model's threads (measured: +3-7% on 2 cores)
MAX_ATTEMPTS = 2  # a video that kills its decoder twice is recorded as failed


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when its parent dies, even by ``kill -9``."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the pipe's EOF still ends an idle worker


def _worker_main(
    conn: Connection,
    heartbeat: Any,
    current: Any,
    views: ViewSpec,
    options: DecodeOptions,
    decode_fn: Callable[..., DecodedVideo],
) -> None:
    """Decode jobs from ``conn``; a sender thread returns results so decoding goes on.

    ``current`` holds the seq of the video being decoded (-1 when idle), so a crash or a stall
    is blamed on that video, not on one whose result is still being sent.
    """
    _die_with_parent()
    os.nice(DECODER_NICE)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled once, by the main process
    outbox: queue.Queue[Any] = queue.Queue()

    def send() -> None:
        try:
            while (item := outbox.get()) is not None:
                conn.send(item)
        except Exception:  # a result that cannot be sent: die, so the pool sees a crash
            os._exit(70)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()

    def beat() -> None:
        heartbeat.value = time.monotonic()

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the pool is gone
            break
        if message is None:
            break
        seq, job = message
        current.value = seq
        heartbeat.value = time.monotonic()
        result = decode_fn(job, views, options, on_frame=beat)
        heartbeat.value = 0.0  # idle: no stall clock running
        current.value = -1
        outbox.put((seq, result))
    outbox.put(None)
    sender.join()


# The worker is a fresh interpreter that imports only this module: never the caller's
# ``__main__``. multiprocessing's spawn and forkserver both re-run the main script in every
# child, so a plain script without an ``if __name__ == "__main__":`` guard (or code piped to
# ``python -``) would start decoders that each start decoders, and die.
_CHILD = "from slowfast_deploy.engine.pool import _child_main; _child_main()"


def _child_main() -> None:
    """Entry of a worker process: ``argv`` = the pipe's fd and the shared state's fd."""
    conn = Connection(int(sys.argv[1]))
    shared = _Shared(mmap.mmap(int(sys.argv[2]), _Shared.SIZE))
    sys.path[:] = conn.recv()  # the parent's: test doubles and user modules import alike
    views, options, decode_fn = conn.recv()
    _worker_main(conn, shared.heartbeat, shared.current, views, options, decode_fn)


class _Shared:
    """Two values a worker and the pool share through an anonymous memory file: the time of
    the worker's last progress (0 when idle) and the seq of the video it decodes (-1: none)."""

    SIZE = 16

    def __init__(self, buffer: mmap.mmap) -> None:
        self.buffer = buffer
        self.heartbeat = ctypes.c_double.from_buffer(buffer, 0)
        self.current = ctypes.c_int64.from_buffer(buffer, 8)

    @classmethod
    def create(cls) -> tuple[_Shared, int]:
        fd = os.memfd_create("slowfast-decoder", 0)
        os.ftruncate(fd, cls.SIZE)
        shared = cls(mmap.mmap(fd, cls.SIZE))
        shared.current.value = -1
        return shared, fd


class _Process:
    """A worker process: ``subprocess.Popen`` with the few ``multiprocessing.Process``
    members the pool uses (``sentinel`` is a pidfd, readable once the process has ended)."""

    def __init__(self, conn_fd: int, shared_fd: int) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.popen = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(conn_fd), str(shared_fd)],
            pass_fds=(conn_fd, shared_fd),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        self.sentinel = os.pidfd_open(self.popen.pid)

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        if self.is_alive():
            self.popen.kill()

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)
        if not self.is_alive() and self.sentinel >= 0:
            os.close(self.sentinel)
            self.sentinel = -1


@dataclass
class _Task:
    seq: int
    job: VideoJob
    attempts: int = 0  # times this video was being decoded when its worker died


@dataclass
class _Worker:
    process: _Process
    conn: Connection
    shared: _Shared
    held: deque[_Task] = field(default_factory=deque)  # sent, result not received yet

    @property
    def heartbeat(self) -> ctypes.c_double:  # time.monotonic() of the last progress, 0: idle
        return self.shared.heartbeat

    @property
    def current(self) -> ctypes.c_int64:  # seq of the video being decoded, -1 when idle
        return self.shared.current


def _split_culprit(worker: _Worker) -> tuple[_Task | None, list[_Task]]:
    """The video the worker was decoding (by its shared ``current``), and the others."""
    seq = worker.current.value
    culprit = next((t for t in worker.held if t.seq == seq), None)
    return culprit, [t for t in worker.held if t is not culprit]


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "unknown cause"
    if exitcode < 0:
        try:
            return f"signal {-exitcode}, {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


class DecodePool:
    """``decode_job`` over jobs in ``num_workers`` processes, robust to crashes and hangs.

    Use as a context manager; ``imap`` yields one ``DecodedVideo`` per job (completion order).
    ``stats`` counts worker restarts, retried videos and timeouts.
    """

    def __init__(
        self,
        views: ViewSpec,
        options: DecodeOptions,
        *,
        num_workers: int,
        timeout_s: float | None = DEFAULT_DECODE_TIMEOUT_S,
        depth: int = 2,
        decode_fn: Callable[..., DecodedVideo] = decode_job,
    ) -> None:
        """``decode_fn`` (a module-level function, for test doubles) replaces ``decode_job``."""
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        self.views, self.options = views, options
        self.num_workers, self.depth, self.decode_fn = num_workers, depth, decode_fn
        self.timeout_s = timeout_s if timeout_s and timeout_s > 0 else None
        self._workers: list[_Worker] = []
        self._retry: deque[_Task] = deque()
        self._seq = 0  # pool-wide, so a result is never matched to another imap's video
        self.stats = {"worker_restarts": 0, "retried": 0, "timeouts": 0, "crashes": 0}

    def __enter__(self) -> DecodePool:
        self._workers = [self._start() for _ in range(self.num_workers)]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> _Worker:
        parent, child = Pipe()
        shared, shared_fd = _Shared.create()
        try:
            process = _Process(child.fileno(), shared_fd)
        finally:
            child.close()
            os.close(shared_fd)
        with contextlib.suppress(OSError):  # a worker that died at once: its sentinel says so
            parent.send(sys.path)
            parent.send((self.views, self.options, self.decode_fn))
        return _Worker(process, parent, shared)

    def close(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(OSError, BrokenPipeError):
                worker.conn.send(None)
        deadline = time.monotonic() + 2.0
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._workers = []

    def _replace(self, index: int) -> _Worker:
        old = self._workers[index]
        if old.process.is_alive():
            old.process.kill()
        old.process.join()
        old.conn.close()
        self.stats["worker_restarts"] += 1
        self._workers[index] = self._start()
        return old

    def imap(
        self, jobs: Iterable[VideoJob], *, prefetch: int | None = None
    ) -> Iterator[DecodedVideo]:
        """Decode ``jobs``; at most ``prefetch`` (default ``depth * workers``) in flight."""
        if not self._workers:
            raise RuntimeError("DecodePool.imap outside its `with` block")
        limit = max(1, prefetch or self.depth * self.num_workers)
        source = iter(jobs)
        self._retry = deque()
        for index, worker in enumerate(self._workers):
            if worker.held:  # an earlier imap was abandoned mid-way: start clean
                self._replace(index)
        while True:
            # hand out work: retries first, then new jobs, to the least loaded worker
            while True:
                free = [w for w in self._workers if len(w.held) < self.depth]
                if not free:
                    break
                if self._retry:  # retries go out first, whatever the limit
                    task = self._retry.popleft()
                elif self._in_flight() >= limit:
                    break
                else:
                    job = next(source, None)
                    if job is None:
                        break
                    task, self._seq = _Task(self._seq, job), self._seq + 1
                worker = min(free, key=lambda w: len(w.held))
                worker.held.append(task)
                with contextlib.suppress(OSError):  # a dead worker: its sentinel reports it
                    worker.conn.send((task.seq, task.job))
            if not self._in_flight():
                return
            busy = [w for w in self._workers if w.held]
            wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=1.0)
            for index, worker in enumerate(self._workers):
                while worker.held and worker.conn.poll():
                    try:
                        got_seq, result = worker.conn.recv()
                    except (EOFError, OSError):
                        break  # it died: handled below
                    found = next((t for t in worker.held if t.seq == got_seq), None)
                    if found is None:  # not one of this imap's videos
                        continue
                    task = found
                    worker.held.remove(task)
                    if task.attempts:
                        result = replace(result, info={**result.info, "retries": task.attempts})
                    yield result
                if worker.held and not worker.process.is_alive():
                    failed = self._on_death(index)
                    if failed is not None:
                        yield failed
                elif worker.held and self._stalled(worker):
                    yield self._on_stall(index)

    def _in_flight(self) -> int:
        return sum(len(w.held) for w in self._workers) + len(self._retry)

    def _stalled(self, worker: _Worker) -> bool:
        beat = worker.heartbeat.value
        decoding = any(t.seq == worker.current.value for t in worker.held)
        return bool(
            self.timeout_s and beat and decoding and time.monotonic() - beat > self.timeout_s
        )

    def _on_death(self, index: int) -> DecodedVideo | None:
        """A worker died: its current video is retried once (then failed), the rest requeued."""
        old = self._replace(index)
        cause = _signal_name(old.process.exitcode)
        culprit, others = _split_culprit(old)
        self._retry.extend(others)
        if culprit is None:  # died between videos (e.g. killed from outside): nobody to blame
            logger.warning("decoder process died (%s) between videos", cause)
            self.stats["crashes"] += 1
            return None
        culprit.attempts += 1
        self.stats["crashes"] += 1
        logger.warning("decoder process died (%s) while decoding %s", cause, culprit.job.path)
        if culprit.attempts < MAX_ATTEMPTS:
            self.stats["retried"] += 1
            self._retry.appendleft(culprit)
            return None
        return DecodedVideo(
            culprit.job,
            None,
            f"{culprit.job.path}: decoder process died ({cause}) twice while decoding it; "
            "the file is probably corrupt, or too large for the memory available",
            info={"retries": culprit.attempts - 1},
            reason=Reason.DECODER_DIED,
        )

    def _on_stall(self, index: int) -> DecodedVideo:
        """A decode stopped making progress: kill its worker, fail it, requeue the rest."""
        old = self._replace(index)
        culprit, others = _split_culprit(old)
        assert culprit is not None, "_stalled() requires a video being decoded"
        self._retry.extend(others)
        self.stats["timeouts"] += 1
        logger.warning(
            "decoding %s made no progress for %g s: killed", culprit.job.path, self.timeout_s
        )
        return DecodedVideo(
            culprit.job,
            None,
            f"{culprit.job.path}: decoding made no progress for {self.timeout_s:g} s and was "
            "stopped (a hung decoder); raise --decode-timeout if the file is only slow",
            reason=Reason.DECODE_TIMEOUT,
        )

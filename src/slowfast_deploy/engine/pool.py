"""Decode worker processes that survive crashed and hung decoders.

Each worker is an ``engine.worker.WorkerProcess`` (a clean interpreter, its heartbeat, typed
messages) fed over its own pipe, at most ``depth`` videos at a time, so the
pool always knows which video each worker holds. A worker that dies (segfault, OOM kill,
``kill -9``) is replaced; the video it was decoding is retried once in the fresh worker and
recorded as failed (``decoder_died``) if it kills that one too; the other videos it held
are handed out again without penalty. A decode that makes no progress (no heartbeat from the
decoder: ``engine.worker``'s one stall rule) for ``timeout_s`` seconds is killed and recorded
as failed (``decode_timeout``): a stall limit, so a two-hour video that keeps decoding is
never cut off.

Results come back in completion order; at most ``prefetch`` videos are decoded ahead of the
consumer, so memory stays bounded whatever the number of jobs.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait

from slowfast_deploy.engine.base import (
    DEFAULT_DECODE_TIMEOUT_S,
    DecodedVideo,
    DecodeOptions,
    VideoJob,
)
from slowfast_deploy.engine.decode import decode_job
from slowfast_deploy.engine.worker import Channel, Stop, WorkerProcess, describe_exit
from slowfast_deploy.errors import Reason
from slowfast_deploy.specs import ViewSpec

logger = logging.getLogger(__name__)

DECODER_NICE = 5  # decoders run below the model's threads (measured: +3-7% on 2 cores)
MAX_ATTEMPTS = 2  # a video that kills its decoder twice is recorded as failed


@dataclass(frozen=True, slots=True)
class DecodeTask:
    """Pool -> worker: decode ``job``; ``seq`` names it in the heartbeat and the answer."""

    seq: int
    job: VideoJob


@dataclass(frozen=True, slots=True)
class Decoded:
    """Worker -> pool: the result of task ``seq``."""

    seq: int
    result: DecodedVideo


def _decode_worker(
    channel: Channel,
    views: ViewSpec,
    options: DecodeOptions,
    decode_fn: Callable[..., DecodedVideo],
) -> None:
    """Decode tasks from ``channel``; a sender thread returns results so decoding goes on.

    The heartbeat's task is the seq of the video being decoded (none when idle), so a crash or
    a stall is blamed on that video, not on one whose result is still being sent.
    """
    heartbeat = channel.heartbeat
    outbox: queue.Queue[Decoded | None] = queue.Queue()

    def send() -> None:
        try:
            while (item := outbox.get()) is not None:
                channel.send(item)
        except Exception:  # a result that cannot be sent: die, so the pool sees a crash
            os._exit(70)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    while True:
        try:
            message = channel.recv()
        except (EOFError, OSError):  # the pool is gone
            break
        if not isinstance(message, DecodeTask):  # Stop
            break
        heartbeat.start(message.seq)
        result = decode_fn(message.job, views, options, on_frame=heartbeat.beat)
        heartbeat.done()
        outbox.put(Decoded(message.seq, result))
    outbox.put(None)
    sender.join()


@dataclass
class _Task:
    seq: int
    job: VideoJob
    attempts: int = 0  # times this video was being decoded when its worker died


@dataclass
class _Worker:
    process: WorkerProcess
    held: deque[_Task] = field(default_factory=deque)  # sent, result not received yet

    @property
    def conn(self) -> Connection:
        return self.process.conn


def _split_culprit(worker: _Worker) -> tuple[_Task | None, list[_Task]]:
    """The video the worker was decoding (by its heartbeat's task), and the others."""
    seq = worker.process.heartbeat.task
    culprit = next((t for t in worker.held if t.seq == seq), None)
    return culprit, [t for t in worker.held if t is not culprit]


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
        return _Worker(
            WorkerProcess(
                _decode_worker, self.views, self.options, self.decode_fn, nice=DECODER_NICE
            )
        )

    def close(self) -> None:
        for worker in self._workers:
            worker.process.send(Stop())
        deadline = time.monotonic() + 2.0
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            worker.process.close()
        self._workers = []

    def _replace(self, index: int) -> _Worker:
        old = self._workers[index]
        old.process.close()
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
                worker.process.send(DecodeTask(task.seq, task.job))
            if not self._in_flight():
                return
            busy = [w for w in self._workers if w.held]
            wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=1.0)
            for index, worker in enumerate(self._workers):
                while worker.held and worker.conn.poll():
                    try:
                        message = worker.conn.recv()
                    except (EOFError, OSError):
                        break  # it died: handled below
                    assert isinstance(message, Decoded), message
                    result = message.result
                    found = next((t for t in worker.held if t.seq == message.seq), None)
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

    @property
    def processes(self) -> list[WorkerProcess]:
        """The worker processes now (a test or a monitor can wait on their ``sentinel``)."""
        return [w.process for w in self._workers]

    def _in_flight(self) -> int:
        return sum(len(w.held) for w in self._workers) + len(self._retry)

    def _stalled(self, worker: _Worker) -> bool:
        decoding = any(t.seq == worker.process.heartbeat.task for t in worker.held)
        return decoding and worker.process.stalled(self.timeout_s)

    def _on_death(self, index: int) -> DecodedVideo | None:
        """A worker died: its current video is retried once (then failed), the rest requeued."""
        old = self._replace(index)
        cause = describe_exit(old.process.exitcode)
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

"""The one worker process: a clean interpreter, typed messages, one stall rule, death seen."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

from slowfast_deploy.engine.worker import Channel, WorkerProcess, describe_exit


@dataclass(frozen=True)
class Work:
    seconds: float
    beat: bool


@dataclass(frozen=True)
class Done:
    pid: int


def busy_worker(channel: Channel) -> None:  # module level: the child imports it
    """Works ``seconds`` per message, beating all along or not at all."""
    while isinstance(message := channel.recv(), Work):
        channel.heartbeat.start(1)
        end = time.monotonic() + message.seconds
        while time.monotonic() < end:
            time.sleep(0.02)
            if message.beat:
                channel.heartbeat.beat()
        channel.heartbeat.done()
        channel.send(Done(os.getpid()))


def test_messages_are_typed_and_the_child_is_a_fresh_interpreter() -> None:
    worker = WorkerProcess(busy_worker)
    try:
        worker.send(Work(0.0, beat=True))
        assert worker.conn.poll(60)
        answer = worker.conn.recv()
        assert answer == Done(worker.pid) and worker.pid != os.getpid()
        cmdline = Path(f"/proc/{worker.pid}/cmdline").read_text().split("\0")
        assert cmdline[5].endswith("test_worker.busy_worker")  # ps names its role
    finally:
        worker.close(grace_s=5)
    assert worker.exitcode == 0  # the Stop message ended it


def test_one_stall_rule_working_without_progress_is_stalled_waiting_is_not() -> None:
    worker = WorkerProcess(busy_worker)
    try:
        assert not worker.stalled(0.1)  # the child waits for work: idle, never stalled
        worker.send(Work(1.0, beat=True))  # slow but beating
        assert worker.conn.poll(60)
        worker.conn.recv()
        assert not worker.stalled(0.3)
        worker.send(Work(3600, beat=False))  # hung
        deadline = time.monotonic() + 60
        while not worker.stalled(0.3):
            assert time.monotonic() < deadline, "a hung child was never stalled"
            time.sleep(0.05)
        assert worker.heartbeat.task == 1
    finally:
        worker.close()


def test_a_dead_child_is_seen_on_its_sentinel() -> None:
    worker = WorkerProcess(busy_worker)
    os.kill(worker.pid, signal.SIGKILL)
    assert wait([worker.sentinel], timeout=60)
    worker.join()
    assert not worker.is_alive()
    assert describe_exit(worker.exitcode) == "signal 9, SIGKILL"
    worker.close()

"""Stop an embedded Ray's processes when the driver that started them dies, even by kill -9.

Ray's raylet and workers die with their driver, but its agents (dashboard, runtime-env) can
outlive it for minutes. ``start_reaper`` launches this module in its own session: while the
driver lives it records the driver's descendants that run Ray's code, every second; once the
driver is gone it kills those still running (matched by start time, so a reused pid is never
touched; the caller's own other child processes are left alone).
Linux only (``/proc``); elsewhere it does nothing.

    python -m slowfast_deploy.engine._reaper DRIVER_PID
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _stat(pid: int) -> tuple[int, int] | None:
    """``(ppid, start time)`` of ``pid`` from ``/proc``, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19])


def _is_ray(pid: int) -> bool:
    """Ray's own processes (GCS, raylet, agents, workers) run code from the ``ray`` package."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"ray" in cmdline


def _descendants(root: int) -> dict[int, int]:
    """``pid -> start time`` of every living descendant of ``root`` that belongs to Ray."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry.name))
                starts[int(entry.name)] = stat[1]
    found: dict[int, int] = {}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found and child != os.getpid():
                found[child] = starts[child]
                stack.append(child)
    return {pid: start for pid, start in found.items() if _is_ray(pid)}


def watch(driver: int, poll_s: float = 1.0) -> None:
    driver_stat = _stat(driver)
    if driver_stat is None:
        return
    seen: dict[int, int] = {}
    while (stat := _stat(driver)) is not None and stat[1] == driver_stat[1]:
        seen.update(_descendants(driver))
        time.sleep(poll_s)
    for pid, start in seen.items():
        now = _stat(pid)
        if now is not None and now[1] == start:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def start_reaper() -> subprocess.Popen[bytes] | None:
    """Watch this process; returns the watcher (terminate it after a clean shutdown)."""
    if not Path("/proc/self/stat").exists():
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "slowfast_deploy.engine._reaper", str(os.getpid())],
        start_new_session=True,  # survives a kill of the driver's process group
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    watch(int(sys.argv[1]))

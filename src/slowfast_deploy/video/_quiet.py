"""Keep FFmpeg's and decord's own log lines off the terminal unless ``-v`` asks for them.

decord (and the FFmpeg 4.1 it bundles) writes straight to file descriptor 2, so its output is
caught around each call in a temporary file and re-logged at INFO (shown with ``-v``); PyAV
routes FFmpeg's log through Python logging, switched on only when INFO is enabled. Python
exceptions are unaffected: they are raised after descriptor 2 is restored.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger("slowfast_deploy.video.decoder_log")

_MAX_LOG_BYTES = 64 * 1024  # a broken file can make FFmpeg repeat itself for megabytes


@contextmanager
def captured_stderr(path: Path) -> Iterator[None]:
    """Route writes to descriptor 2 into a temporary file; log them at INFO afterwards."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read(_MAX_LOG_BYTES).decode("utf-8", errors="replace")
            for line in text.splitlines():
                if line.strip():
                    logger.info("%s: decoder: %s", path, line.strip())


def configure_pyav_logging(av: Any) -> None:
    """FFmpeg's messages through Python logging with ``-v``, none otherwise."""
    av.logging.set_level(av.logging.WARNING if logger.isEnabledFor(logging.INFO) else None)


def configure_decord_logging(decord: Any) -> None:
    """decord's FFmpeg logs from its decoder threads too, after a call has returned: its
    level is QUIET unless ``-v``, so nothing reaches the terminal late."""
    verbose = logger.isEnabledFor(logging.INFO)
    decord.logging.set_level(decord.logging.WARNING if verbose else decord.logging.QUIET)

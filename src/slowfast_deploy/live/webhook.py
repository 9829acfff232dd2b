"""POST events to a webhook without ever holding up recognition.

Events go into a bounded queue (``put`` never blocks: when it is full the event is dropped and
counted); one thread POSTs them as JSON, each with a timeout and a bounded number of retries
(doubling pauses), and counts what was sent, what failed and what was dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

_STOP = object()


class Webhook:
    """A sender thread behind a bounded queue (see the module doc)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 2.0,
        retries: int = 2,
        queue_size: int = 256,
        backoff_s: float = 0.25,
    ) -> None:
        if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
            raise ValueError(f"webhook must be an http:// or https:// URL, got {url!r}")
        if not timeout_s > 0:
            raise ValueError(f"webhook_timeout_s must be > 0 seconds, got {timeout_s}")
        if retries < 0:
            raise ValueError(f"webhook_retries must be >= 0, got {retries}")
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.sent = 0
        self.failed = 0  # events given up on after every retry
        self.dropped = 0  # events that found the queue full, or were left at close
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._thread.start()

    def post(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for POSTing; never blocks."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            with self._lock:
                self.dropped += 1

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued for at most ``timeout_s`` more; the rest counts as dropped."""
        deadline = time.monotonic() + timeout_s
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout_s)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._closing.set()  # a sender still retrying gives up at once
        self._thread.join(self.timeout_s + 0.5)
        left = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            left += item is not _STOP
        with self._lock:
            self.dropped += left

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {
                "url": self.url,
                "sent": self.sent,
                "failed": self.failed,
                "dropped": self.dropped,
            }

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            ok = self._send(item)
            with self._lock:
                if ok:
                    self.sent += 1
                else:
                    self.failed += 1

    def _send(self, event: dict[str, Any]) -> bool:
        body = json.dumps(event, ensure_ascii=False).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        pause = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    if 200 <= response.status < 300:
                        return True
                    why = f"HTTP {response.status}"
            except urllib.error.HTTPError as err:
                why = f"HTTP {err.code}"
            except (urllib.error.URLError, OSError) as err:  # refused, timeout, reset
                why = str(getattr(err, "reason", err))
            logger.info("webhook %s: attempt %d failed (%s)", self.url, attempt + 1, why)
            if attempt < self.retries and self._closing.wait(pause):
                break
            pause *= 2
        return False

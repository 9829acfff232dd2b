"""A watch's events over MQTT: ``MqttSink``, one more ``Sink`` (``live.sinks``).

``--mqtt mqtt://HOST:PORT/PREFIX`` publishes every event's JSON (its ``to_dict``) at QoS 1 to
``PREFIX/<stream>/<event>`` (``<stream>``: the stream's name with every run of characters
other than letters, digits, ``.``, ``_`` and ``-`` made one ``_``, so a URL is one topic
level), as Frigate publishes ``frigate/<camera>/...`` and DL Streamer's ``gvametapublish``
does. Retained states, so a dashboard that subscribes later sees them at once:

- ``PREFIX/available``: ``online`` while the watch runs, ``offline`` when it ends or when the
  broker loses it (the client's last will);
- ``PREFIX/<stream>/state``: ``online`` when the stream opens or is restored, ``offline``
  when it is lost, ends or fails.

The client is paho-mqtt, in its own network thread: ``write`` never blocks the model. While
the broker is away, events wait in paho's bounded queue (``queue_size`` messages) and go out
after the reconnection (capped backoff, 1 s doubling to ``backoff_max_s``); past the bound
they are dropped and counted, and ``close`` reports what was sent, failed and dropped as a
``DeliveryReport``. The user name and password come from ``SLOWFAST_DEPLOY_MQTT_USERNAME`` and
``SLOWFAST_DEPLOY_MQTT_PASSWORD``, never from the command line (a URL with credentials is
refused). A broker that cannot be reached at the start is one plain error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from collections import deque
from typing import Any
from urllib.parse import urlparse

from slowfast_deploy._optional import require
from slowfast_deploy.live.events import DeliveryReport, Event, StreamEvent

logger = logging.getLogger(__name__)

USERNAME_ENV = "SLOWFAST_DEPLOY_MQTT_USERNAME"
PASSWORD_ENV = "SLOWFAST_DEPLOY_MQTT_PASSWORD"
_STATE_ROOM = 256  # queued availability/state messages beyond the events' bound
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# stream events -> the retained state they leave the stream in
_STATE = {
    "stream_opened": "online",
    "stream_restored": "online",
    "stream_lost": "offline",
    "stream_ended": "offline",
    "stream_failed": "offline",
}


def topic_level(name: str) -> str:
    """One topic level for a stream's name (URL or path): no ``/``, ``+`` or ``#`` in it.

    >>> topic_level("rtsp://127.0.0.1:8554/cam")
    'rtsp_127.0.0.1_8554_cam'
    """
    return _UNSAFE.sub("_", name).strip("._") or "stream"


def parse_mqtt_url(url: str) -> tuple[str, int, str]:
    """``mqtt://HOST[:PORT]/PREFIX`` -> (host, port, prefix); port 1883 by default, prefix
    ``slowfast`` when none is given."""
    parsed = urlparse(url)
    if parsed.scheme != "mqtt" or not parsed.hostname:
        raise ValueError(f"mqtt must be a URL like mqtt://127.0.0.1:1883/cameras, got {url!r}")
    if parsed.username or parsed.password:
        raise ValueError(
            f"mqtt URL {parsed.hostname}: credentials in the URL are refused (they would show "
            f"in the process list); set {USERNAME_ENV} and {PASSWORD_ENV} instead"
        )
    prefix = parsed.path.strip("/") or "slowfast"
    if "+" in prefix or "#" in url:  # urlparse takes a '#' for the start of a fragment
        raise ValueError(f"mqtt topic prefix {prefix!r} may not hold the wildcards + or #")
    return parsed.hostname, parsed.port or 1883, prefix


class MqttSink:
    """Every event published at QoS 1 to ``PREFIX/<stream>/<event>``, with retained
    availability and per-stream states (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 10_000,
        backoff_max_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        keepalive_s: int = 30,
        client_id: str | None = None,
    ) -> None:
        mqtt = require("paho.mqtt.client", extra="mqtt", purpose="--mqtt")
        self.host, self.port, self.prefix = parse_mqtt_url(url)
        if queue_size < 1:
            raise ValueError(f"mqtt_queue_size must be >= 1, got {queue_size}")
        self.url = f"mqtt://{self.host}:{self.port}/{self.prefix}"
        self.sent = 0  # events the broker acknowledged (QoS 1 PUBACK)
        self.dropped = 0  # events that found the queue full, or were unsent at closing
        self._pending: set[int] = set()  # message ids of events not yet acknowledged
        # ids paho acknowledged, appended by its network thread without a lock of ours (it
        # calls back holding its own, which ``publish`` takes too); matched in ``_count``
        self._acks: deque[int] = deque()
        self._lock = threading.Lock()
        self._mqtt = mqtt
        self._client: Any = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"slowfast-deploy-{os.getpid()}",
        )
        username = os.environ.get(USERNAME_ENV)
        if username:
            self._client.username_pw_set(username, os.environ.get(PASSWORD_ENV))
        self.queue_size = queue_size
        # events are bounded here (``_pending``); paho's own bound leaves room for the
        # availability and state messages, so an ``online`` after a reconnection is never lost
        self._client.max_queued_messages_set(queue_size + _STATE_ROOM)
        self._client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(backoff_max_s)))
        self._client.will_set(self.topic("available"), "offline", qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._connected = threading.Event()
        try:
            self._client.connect(self.host, self.port, keepalive=keepalive_s)
        except OSError as err:
            raise ConnectionError(
                f"{self.url}: the MQTT broker cannot be reached ({err.strerror or err}); "
                "start it or fix --mqtt"
            ) from err
        self._client.loop_start()
        if not self._connected.wait(connect_timeout_s):
            self._client.loop_stop()
            raise ConnectionError(
                f"{self.url}: the MQTT broker did not accept the connection within "
                f"{connect_timeout_s:g} s (wrong credentials in {USERNAME_ENV}/{PASSWORD_ENV}?)"
            )

    def topic(self, *levels: str) -> str:
        return "/".join((self.prefix, *levels))

    def write(self, event: Event) -> None:
        body = event.to_dict()
        stream = getattr(event, "stream", None)
        where = topic_level(stream) if isinstance(stream, str) else "_"
        payload = json.dumps(body, ensure_ascii=False)
        with self._lock:
            self._count()
            full = len(self._pending) >= self.queue_size
            if full:
                self.dropped += 1
        if full:
            return
        # never under self._lock: paho calls _on_publish holding its own locks
        info = self._client.publish(self.topic(where, str(body["event"])), payload, qos=1)
        with self._lock:
            if info.rc == self._mqtt.MQTT_ERR_QUEUE_SIZE:
                self.dropped += 1
            else:
                self._pending.add(info.mid)
            self._count()
        if isinstance(event, StreamEvent) and event.kind in _STATE:
            self._client.publish(self.topic(where, "state"), _STATE[event.kind], 1, True)

    def close(self, timeout_s: float = 5.0) -> DeliveryReport:
        """Say ``offline``, send what is queued for at most ``timeout_s``, disconnect, and
        report (messages still unsent then count as dropped)."""
        last = self._client.publish(self.topic("available"), "offline", qos=1, retain=True)
        if self._connected.is_set():
            # RuntimeError/ValueError: never queued, or the connection went away meanwhile
            with contextlib.suppress(RuntimeError, ValueError):
                last.wait_for_publish(timeout_s)
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            self._count()
            self.dropped += len(self._pending)
            self._pending.clear()
            return DeliveryReport("mqtt", self.url, self.sent, 0, self.dropped)

    def _on_connect(
        self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            logger.warning("mqtt %s: connection refused (%s)", self.url, reason)
            return
        client.publish(self.topic("available"), "online", qos=1, retain=True)
        self._connected.set()
        logger.info("mqtt: connected to %s", self.url)

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, *_args: Any) -> None:
        self._acks.append(mid)

    def _count(self) -> None:
        """Match the acknowledgements so far (under ``_lock``). The one writer records an
        event's id right after publishing it, before it counts, so an id not pending here is
        an availability or state message's."""
        while self._acks:
            mid = self._acks.popleft()
            if mid in self._pending:
                self._pending.discard(mid)
                self.sent += 1

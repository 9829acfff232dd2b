"""``MqttSink`` against a real broker: Debian's mosquitto, started here on 127.0.0.1.

Every broker is a subprocess of this test, stopped through its handle. Waits are on what the
broker and the clients expose (a listening port, messages received), each with a deadline.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.live.senders import free_port, listening

from slowfast_deploy.live.events import StatsEvent, StreamEvent, StreamInfo
from slowfast_deploy.live.mqtt import MqttSink, parse_mqtt_url
from slowfast_deploy.live.run import watch

mqtt = pytest.importorskip("paho.mqtt.client")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
pytestmark = pytest.mark.skipif(
    not Path(MOSQUITTO).exists(), reason="needs Debian's mosquitto (test.sh installs it)"
)


class Broker:
    """mosquitto on 127.0.0.1:``port``, persistent (sessions survive a restart)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        data = directory / "data"
        data.mkdir()
        # started as root, mosquitto would run as the user 'mosquitto', who cannot write here
        user = f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{user}"
            f"persistence true\npersistence_location {data}/\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while not listening(self.port):
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
            assert time.monotonic() < deadline, "mosquitto did not listen"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its sessions first
            self.proc.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}/cams"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    started = Broker(tmp_path).start()
    yield started
    started.stop()


class Subscriber:
    """A QoS 1 subscriber to ``cams/#`` with a persistent session; ``wait(n)`` for messages."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="test-subscriber", clean_session=False
        )
        self.client.on_connect = lambda c, *_: c.subscribe("cams/#", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "the subscriber never subscribed"

    def _on_message(self, _client: Any, _data: Any, message: Any) -> None:
        with self._cond:
            self.messages.append((message.topic, message.payload.decode(), message.retain))
            self._cond.notify_all()

    def wait(self, predicate: Any, timeout_s: float = 30.0) -> list[tuple[str, str, bool]]:
        with self._cond:
            assert self._cond.wait_for(lambda: predicate(self.messages), timeout_s), self.messages
            return list(self.messages)

    def events(self) -> list[dict[str, Any]]:
        with self._cond:
            return [
                json.loads(p)
                for t, p, _ in self.messages
                if not t.endswith(("/state", "/available"))
            ]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _stats(i: int) -> StatsEvent:
    return StatsEvent("cam1", False, "live", 1.0, i, 1.0, 0.1, 0.2, 0, 0, 30, 1, 1000.0 + i)


def test_events_go_to_topics_per_stream_and_kind_with_retained_states(broker: Broker):
    subscriber = Subscriber(broker.port)
    sink = MqttSink(broker.url, client_id="sink-a")
    opened = StreamEvent(
        "stream_opened",
        "rtsp://127.0.0.1:8554/cam",
        10.0,
        connection=0,
        video=StreamInfo(1920, 1080, 25.0, "h264"),
    )
    sink.write(opened)
    sink.write(_stats(1))
    sink.write(StreamEvent("stream_ended", "rtsp://127.0.0.1:8554/cam", 11.0, reason="eof"))
    report = sink.close()
    got = subscriber.wait(lambda m: ("cams/available", "offline", False) in m)
    subscriber.close()
    topics = [(t, p) for t, p, _ in got]
    assert ("cams/available", "online") in topics
    assert ("cams/rtsp_127.0.0.1_8554_cam/stream_opened", json.dumps(opened.to_dict())) in topics
    assert ("cams/cam1/stats", json.dumps(_stats(1).to_dict())) in topics
    states = [p for t, p in topics if t == "cams/rtsp_127.0.0.1_8554_cam/state"]
    assert states == ["online", "offline"]
    assert (report.kind, report.sent, report.failed, report.dropped) == ("mqtt", 3, 0, 0)
    # a late subscriber sees the retained states at once
    late = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="late")
    retained: dict[str, str] = {}
    done = threading.Event()

    def on_message(_c: Any, _d: Any, message: Any) -> None:
        retained[message.topic] = message.payload.decode()
        if len(retained) == 2:
            done.set()

    late.on_connect = lambda c, *_: c.subscribe("cams/#", qos=1)
    late.on_message = on_message
    late.connect("127.0.0.1", broker.port)
    late.loop_start()
    assert done.wait(10), retained
    late.disconnect()
    late.loop_stop()
    assert retained == {
        "cams/available": "offline",
        "cams/rtsp_127.0.0.1_8554_cam/state": "offline",
    }


def test_events_queued_while_the_broker_is_away_arrive_after_its_restart(broker: Broker):
    subscriber = Subscriber(broker.port)
    sink = MqttSink(broker.url, client_id="sink-b", queue_size=5)
    sink.write(_stats(0))
    subscriber.wait(lambda m: any(t == "cams/cam1/stats" for t, _, _ in m))
    broker.stop()
    for i in range(1, 9):  # 8 events while away: 5 wait in the queue, 3 are dropped
        sink.write(_stats(i))
    broker.start()
    subscriber.wait(lambda m: sum(t == "cams/cam1/stats" for t, _, _ in m) >= 6)
    report = sink.close()
    subscriber.close()
    windows = [e["windows"] for e in subscriber.events() if e["event"] == "stats"]
    assert sorted(set(windows)) == [0, 1, 2, 3, 4, 5]  # QoS 1: at least once, maybe twice
    assert report.dropped == 3 and report.sent == 6


def test_a_whole_watch_publishes_every_event(broker: Broker, tiny_onnx: Path, h264_video: Path):
    subscriber = Subscriber(broker.port)
    with watch([str(h264_video)], tiny_onnx, sinks=[MqttSink(broker.url)]) as events:
        yielded = [e.to_dict() for e in events]
    kinds = [e["event"] for e in yielded]
    assert "window" in kinds and kinds[-1] == "mqtt"  # its delivery report comes last
    sent = yielded[:-1]  # the report is not sent to the broker itself
    subscriber.wait(
        lambda m: len([x for x in m if not x[0].endswith(("/state", "/available"))]) >= len(sent)
    )
    subscriber.close()
    assert subscriber.events() == sent
    assert yielded[-1]["sent"] == len(sent) and yielded[-1]["dropped"] == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1/x", "mqtt must be a URL like mqtt://"),
        ("mqtt://user:secret@127.0.0.1/x", "credentials in the URL are refused"),
        ("mqtt://127.0.0.1/a/#", "may not hold the wildcards"),
    ],
)
def test_bad_urls_are_one_plain_line(url: str, message: str):
    with pytest.raises(ValueError, match=message):
        parse_mqtt_url(url)


def test_an_unreachable_broker_at_start_is_one_plain_error():
    port = free_port()
    with pytest.raises(
        ConnectionError, match=rf"mqtt://127.0.0.1:{port}/cams: the MQTT broker cannot be reached"
    ):
        MqttSink(f"mqtt://127.0.0.1:{port}/cams")


def test_the_watch_command_publishes_what_it_prints(
    broker: Broker, tiny_onnx: Path, h264_video: Path, capsys: pytest.CaptureFixture[str]
):
    from slowfast_deploy.cli import main

    subscriber = Subscriber(broker.port)
    argv = ["watch", str(h264_video), "--model", str(tiny_onnx), "--threads", "1"]
    assert main([*argv, "--mqtt", broker.url]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed[-1]["event"] == "mqtt" and printed[-1]["dropped"] == 0
    sent = printed[:-1]
    subscriber.wait(
        lambda m: sum(not t.endswith(("/state", "/available")) for t, _, _ in m) >= len(sent)
    )
    subscriber.close()
    assert subscriber.events() == sent


def test_the_watch_command_names_an_unreachable_broker(
    tiny_onnx: Path, h264_video: Path, capsys: pytest.CaptureFixture[str]
):
    from slowfast_deploy.cli import main

    url = f"mqtt://127.0.0.1:{free_port()}/cams"
    assert main(["watch", str(h264_video), "--model", str(tiny_onnx), "--mqtt", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(
        f"{url}: the MQTT broker cannot be reached (Connection refused); start it or fix --mqtt"
    )


def test_a_served_stream_publishes_its_events(
    broker: Broker, tiny_onnx: Path, video_dir: Path, tmp_path: Path
):
    """``"mqtt": URL`` beside a ``/v1/streams`` source (under ``--allow-url``): the events the
    server streams as SSE arrive at the broker too, and its report is the last event."""
    import shutil

    pytest.importorskip("httpx")
    from tests.serve.helpers import running

    (tmp_path / "v").mkdir()
    shutil.copy(video_dir / "a" / "land.mp4", tmp_path / "v" / "land.mp4")
    subscriber = Subscriber(broker.port)
    spec = {"source": "v/land.mp4", "name": "cam", "mqtt": broker.url}
    prefix = f"mqtt://127.0.0.1:{broker.port}/"
    with (
        running(tiny_onnx, allow_dirs=(str(tmp_path),), allow_urls=(prefix,)) as server,
        server.client() as client,
    ):
        refused = client.post("/v1/streams", json={**spec, "mqtt": "mqtt://127.0.0.1:1/x"})
        assert refused.json()["reason"] == "forbidden_url", refused.text
        assert client.post("/v1/streams", json=spec).status_code == 201
        with client.stream("GET", "/v1/streams/cam/events", timeout=60) as response:
            events = [
                json.loads(line[len("data: ") :])
                for line in response.iter_lines()
                if line.startswith("data: ")
            ]
    assert events[-1]["event"] == "mqtt" and events[-1]["dropped"] == 0, events[-1]
    sent = events[:-1]
    subscriber.wait(
        lambda m: sum(not t.endswith(("/state", "/available")) for t, _, _ in m) >= len(sent)
    )
    subscriber.close()
    assert subscriber.events() == sent

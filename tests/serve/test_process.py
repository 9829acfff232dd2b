"""``slowfast-deploy serve`` as a process: loopback by default, an access log, SIGTERM drains."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from tests.serve.helpers import free_port, httpx, metric

psutil = pytest.importorskip("psutil")


def test_sigterm_drains_in_flight_requests(tiny_onnx, tmp_path):
    from tests.helpers import write_video

    port = free_port()
    log = tmp_path / "serve.log"
    write_video(tmp_path / "live.mp4", num_frames=500, width=64, height=48)  # 20 s, played live
    # a batch waits 1.5 s to fill, so a request is in flight when SIGTERM comes
    cmd = [sys.executable, "-m", "slowfast_deploy", "serve", "--model", str(tiny_onnx),
           "--port", str(port), "--max-batch", "64", "--max-wait-ms", "1500",
           "--allow-dir", str(tmp_path)]  # fmt: skip
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stderr=err, stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.1)
        bound = {c.laddr.ip for c in psutil.Process(proc.pid).net_connections("inet")
                 if c.status == psutil.CONN_LISTEN}  # fmt: skip
        assert bound == {"127.0.0.1"}

        # a live stream with a client on its events: SIGTERM ends the events, not the drain
        stream = {"source": str(tmp_path / "live.mp4"), "name": "cam"}
        assert httpx.post(f"{url}/v1/streams", json=stream).status_code == 201
        events: list[str] = []
        listening = threading.Event()  # the first event has come: the client is subscribed

        def listen() -> None:
            with httpx.stream("GET", f"{url}/v1/streams/cam/events", timeout=120) as r:
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        events.append(line)
                        listening.set()

        listener = threading.Thread(target=listen)
        listener.start()
        assert listening.wait(60), "no event came"
        video = np.zeros((2, 1, 3, 32, 8, 8), dtype=np.float32)
        body = {"inputs": [{"name": "video", "datatype": "FP32", "shape": list(video.shape),
                            "data": video.ravel().tolist()}]}  # fmt: skip
        answer: dict[str, httpx.Response] = {}
        thread = threading.Thread(
            target=lambda: answer.setdefault(
                "r", httpx.post(f"{url}/v2/models/tiny/infer", json=body, timeout=30)
            )
        )
        thread.start()
        wait_for_metric(url, "slowfast_queue_depth", 2)  # the request waits in the batcher
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        thread.join(30)
        assert answer["r"].status_code == 200, answer["r"].text
        assert answer["r"].json()["outputs"][0]["shape"] == [2, 10]
        assert proc.wait(30) == 0
        assert time.monotonic() - signalled < 15  # the event stream did not hold the drain
        listener.join(10)
        assert not listener.is_alive() and events  # it got events, then its end
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert '"POST /v2/models/tiny/infer" 200' in text, text
    assert '"GET /v2/health/ready" 200' in text


def wait_for_metric(url: str, name: str, value: float, *, timeout_s: float = 30) -> None:
    """Until the server's ``/metrics`` says ``name`` is ``value`` (each scrape waits for the
    server's answer; the deadline only bounds a failure)."""
    deadline = time.monotonic() + timeout_s
    while metric(httpx.get(f"{url}/metrics", timeout=5).text, name) != value:
        assert time.monotonic() < deadline, f"{name} never reached {value}"
        time.sleep(0.02)  # between scrapes (the condition, not the time, is what is awaited)

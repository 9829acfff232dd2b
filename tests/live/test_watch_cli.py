"""``slowfast-deploy watch``: sources that never open (one plain line each, the others keep
going), Ctrl-C and SIGTERM (every output flushed), and the webhook (bounded, counted)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.live.senders import (
    DEBIAN_PYTHON,
    HERE,
    Server,
    free_port,
    needs_ffmpeg,
    needs_rtsp,
    rtsp_server,
    watch_cmd,
    write_h264,
)

from slowfast_deploy.cli import main
from slowfast_deploy.live.events import SegmentEndEvent, SegmentStartEvent
from slowfast_deploy.live.sinks import WebhookSink


class Receiver:
    """A real HTTP server on 127.0.0.1 that keeps the JSON bodies POSTed to it."""

    def __init__(self, *, status: int = 200, delay_s: float = 0.0) -> None:
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                time.sleep(delay_s)
                if status == 200:
                    receiver.bodies.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@needs_ffmpeg
@needs_rtsp
def test_sources_that_never_open_get_one_plain_line_and_the_others_go_on(
    tmp_path: Path, tiny_onnx: Path, servers: list[Server], capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_h264(tmp_path / "good.mp4", seconds=1.5)  # 45 frames: one 32-frame window
    plain, secured = free_port(), free_port()
    servers.append(rtsp_server(good, plain).start())
    auth = [DEBIAN_PYTHON, str(HERE / "rtsp_server.py"), str(good), str(secured)]
    servers.append(Server([*auth, "--user", "u", "--password", "p"], ready="ready", port=secured))
    servers[-1].start()
    (tmp_path / "notes.mp4").write_text("not a video at all\n" * 100)
    bad = {
        f"rtsp://127.0.0.1:{free_port()}/cam": "refused",
        f"rtsp://127.0.0.1:{plain}/nothing": "not_found",
        f"rtsp://127.0.0.1:{secured}/stream": "unauthorized",
        f"udp://127.0.0.1:{free_port()}": "unreachable",
        str(tmp_path / "missing.mp4"): "not_found",
        str(tmp_path / "notes.mp4"): "not_a_video",
    }
    listing = tmp_path / "sources.txt"  # the good one named in a --sources file
    listing.write_text(f"# cameras\n{good} good cam\n")
    status = main(
        ["-q", "watch", *bad, "--sources", str(listing), "--model", str(tiny_onnx),
         "--window", "32", "--stride", "16", "--open-timeout", "2"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert status == 3  # some sources failed, the run finished
    failed_lines = [line for line in err.splitlines() if line.startswith("failed: ")]
    assert len(failed_lines) == len(bad), err
    for source, reason in bad.items():
        (line,) = [x for x in failed_lines if x.startswith(f"failed: {source}: ")]
        assert line.endswith(f"({reason})"), line
        assert "\n" not in line and "Traceback" not in err
    events = lines(out)
    failed = {e["stream"]: e["reason"] for e in events if e["event"] == "stream_failed"}
    assert failed == bad
    windows = [e for e in events if e["event"] == "window"]
    assert [(e["stream"], e["index"]) for e in windows] == [("good cam", 0)]


@needs_ffmpeg
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_flushes_every_output(
    signum: int, code: int, tmp_path: Path, long_video: Path, tiny_onnx: Path, receiver: Receiver
) -> None:
    events_file, srt_dir = tmp_path / "events.jsonl", tmp_path / "srt"
    cmd = watch_cmd(
        str(long_video), "--realtime", "--model", str(tiny_onnx), "--window", "32",
        "--stride", "16", "--events", str(events_file), "--srt-dir", str(srt_dir),
        "--webhook", receiver.url, "--stats-every", "1", "-q",
    )  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while '"window"' not in (events_file.read_text() if events_file.exists() else ""):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no window event within 120 s"
            time.sleep(0.1)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert "interrupted: outputs flushed" in err
    events = lines(events_file.read_text())  # every line whole
    kinds = [e["event"] for e in events]
    assert kinds[0] == "stream_opened"
    assert "segment_end" in kinds  # the open segment was closed
    final = [e for e in events if e["event"] == "stats" and e["final"]]
    assert len(final) == 1
    assert any(e["event"] == "stats" and not e["final"] for e in events)  # --stats-every 1
    assert final[0]["windows"] == kinds.count("window") >= 1
    assert kinds[-1] == "webhook"
    report = events[-1]
    assert (report["sent"], report["failed"], report["dropped"]) == (
        kinds.count("segment_start") + kinds.count("segment_end"),
        0,
        0,
    )
    assert [b["event"] for b in receiver.bodies] == [
        k for k in kinds if k in ("segment_start", "segment_end")
    ]
    (srt,) = srt_dir.iterdir()
    text = srt.read_text()
    assert text.startswith("1\n00:00:00,000 --> 00:00:")
    assert text.count(" --> ") == kinds.count("segment_end")


def test_webhook_counts_failures_and_never_blocks() -> None:
    ok = Receiver()
    failing = Receiver(status=500)
    slow = Receiver(delay_s=0.5)
    try:
        hook = WebhookSink(ok.url, timeout_s=2)
        for i in range(3):
            hook.write(SegmentStartEvent("cam", 0, 1, None, 0.0, 0, i, 0.5, 1.0))
        report = hook.close()
        assert (report.kind, report.sent, report.failed, report.dropped) == ("webhook", 3, 0, 0)
        assert [b["window"] for b in ok.bodies] == [0, 1, 2]
        assert ok.bodies[0] == SegmentStartEvent("cam", 0, 1, None, 0.0, 0, 0, 0.5, 1.0).to_dict()

        refused = WebhookSink(f"http://127.0.0.1:{free_port()}/x", retries=1, backoff_s=0.01)
        error = WebhookSink(failing.url, retries=2, backoff_s=0.01)
        for hook in (refused, error):
            hook.write(SegmentEndEvent("cam", 0, 1, None, 0.0, 1.0, 0, 30, (0, 1), 0.5, 2.0))
            hook.close()
        assert (refused.failed, error.failed, refused.sent, error.sent) == (1, 1, 0, 0)

        queued = WebhookSink(slow.url, queue_size=2, timeout_s=5)
        t0 = time.monotonic()
        for i in range(20):
            queued.post({"event": "segment_start", "i": i})
        assert time.monotonic() - t0 < 0.1  # posting never waits for the network
        report = queued.close(timeout_s=10)
        assert report.sent + report.dropped == 20
        assert report.dropped >= 17
    finally:
        for r in (ok, failing, slow):
            r.close()

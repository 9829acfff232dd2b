"""Real streams on loopback: GStreamer's RTSP server and FFmpeg sending a file's own H.264
bitstream give, window for window, the scores and segments ``timeline`` gives on the file; a
server killed and restarted is lost and restored while another stream carries on; two streams
at 2x overload keep latency bounded, with drops counted."""

from __future__ import annotations

import functools
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.live.senders import (
    Server,
    free_port,
    mpegts_server,
    needs_ffmpeg,
    needs_rtsp,
    rtmp_server,
    rtsp_server,
    udp_bound,
    udp_sender,
    write_h264,
)

from slowfast_deploy.live import Source, Watch, watch
from slowfast_deploy.runtime import ModelConfig
from slowfast_deploy.runtime.base import BackendInfo
from slowfast_deploy.specs import PreprocessSpec
from slowfast_deploy.timeline.output import timeline_record
from slowfast_deploy.timeline.run import VideoTimeline
from slowfast_deploy.timeline.windows import WindowPlan

# 112-pixel crops keep the tiny model fast on a busy CPU; the same plan on both sides
PLAN = WindowPlan(32, 16, preprocess=PreprocessSpec(short_side=128, crop_size=112))


@pytest.fixture(scope="module")
def backend(tiny_onnx: Path) -> Iterator[Any]:
    opened = ModelConfig(str(tiny_onnx), threads=1).open()
    yield opened
    opened.close()


def collect(session: Watch, *, timeout_s: float, until: Any = None) -> list[dict[str, Any]]:
    """Every event (its JSON) until the watch ends, ``until(event, events)`` is true, or the
    timeout."""
    timer = threading.Timer(timeout_s, session.stop)
    timer.start()
    events: list[dict[str, Any]] = []
    try:
        for typed in session:
            event = typed.to_dict()
            events.append(event)
            if until is not None and until(event, events):
                events += [e.to_dict() for e in session.finish()]
                break
    finally:
        timer.cancel()
    return events


@pytest.fixture
def hls_url(h264_video: Path, tmp_path: Path) -> Iterator[str]:
    """The file's bitstream cut into HLS segments by FFmpeg (``-c copy``), served over HTTP
    by a loopback server in this process."""
    root = tmp_path / "hls"
    root.mkdir()
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(h264_video), "-c", "copy", "-f", "hls",
         "-hls_time", "1", "-hls_list_size", "0", str(root / "index.m3u8")],
        check=True,
    )  # fmt: skip
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.m3u8"
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@needs_ffmpeg
@needs_rtsp
@pytest.mark.parametrize("sender", ["rtsp", "mpegts-tcp", "mpegts-udp", "rtmp", "hls"])
def test_stream_windows_equal_the_timeline_of_the_file(
    sender: str, h264_video: Path, backend: Any, servers: list[Server], request: Any
) -> None:
    port = free_port()
    if sender == "rtsp":
        servers.append(rtsp_server(h264_video, port).start())
        url = f"rtsp://127.0.0.1:{port}/stream"
    elif sender == "mpegts-tcp":
        servers.append(mpegts_server(h264_video, port).start())
        url = f"tcp://127.0.0.1:{port}"
    elif sender == "mpegts-udp":  # the watch binds the port; the sender starts after
        url = f"udp://127.0.0.1:{port}"

        def send_when_bound() -> None:
            deadline = time.monotonic() + 60
            while not udp_bound(port) and time.monotonic() < deadline:
                time.sleep(0.01)
            servers.append(udp_sender(h264_video, port).start())

        threading.Thread(target=send_when_bound, daemon=True).start()
    elif sender == "rtmp":
        servers.append(rtmp_server(h264_video, port).start())
        url = f"rtmp://127.0.0.1:{port}/live/stream"
    else:
        url = request.getfixturevalue("hls_url")
    # nothing may be dropped here: a generous budget and queue
    session = watch(
        [url], backend, plan=PLAN, reconnect=False, scores=True, topk=3, smooth=3,
        max_latency_s=120, queue_depth=64,
    )  # fmt: skip
    events = collect(session, timeout_s=90)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "stream_opened"
    assert "stream_ended" in kinds
    windows = [e for e in events if e["event"] == "window"]

    timeline = VideoTimeline(str(h264_video), PLAN)
    assert timeline.open(backend, decoder="pyav")
    list(timeline.run())
    expected = timeline_record(timeline, topk=3, smooth=3, threshold=0.0)

    assert len(windows) == len(timeline.records) == 6
    for got, record, entry in zip(windows, timeline.records, expected["windows"], strict=True):
        np.testing.assert_array_equal(np.asarray(got["scores"], np.float32), record.scores)
        for key in ("index", "start_frame", "end_frame", "topk"):
            assert got[key] == entry[key], key
        for key in ("start_s", "end_s"):
            assert got[key] == pytest.approx(entry[key], abs=2e-3)
        assert got["stream"] == url
        assert got["arrival_wall"] <= got["emit_wall"]
        assert got["latency_s"] == pytest.approx(got["emit_wall"] - got["arrival_wall"], abs=2e-3)
    segments = [e for e in events if e["event"] == "segment_end"]
    assert len(segments) == len(expected["segments"]) >= 1
    for got, entry in zip(segments, expected["segments"], strict=True):
        for key in ("class", "start_frame", "end_frame", "windows"):
            assert got[key] == entry[key], key
        for key in ("start_s", "end_s", "mean_score"):
            assert got[key] == pytest.approx(entry[key], abs=2e-3)
    final = [e for e in events if e["event"] == "stats"]
    assert [(s["final"], s["windows"], s["dropped"]) for s in final] == [(True, 6, 0)]


@needs_ffmpeg
@needs_rtsp
def test_a_killed_server_is_lost_and_restored_while_another_stream_carries_on(
    long_video: Path, backend: Any, servers: list[Server]
) -> None:
    rtsp_port, tcp_port = free_port(), free_port()
    rtsp = rtsp_server(long_video, rtsp_port).start()
    servers.append(rtsp)
    servers.append(mpegts_server(long_video, tcp_port).start())
    cam = Source(f"rtsp://127.0.0.1:{rtsp_port}/stream", "cam", "network")
    other = Source(f"tcp://127.0.0.1:{tcp_port}", "other", "network")
    session = watch([cam, other], backend, plan=PLAN, stall_timeout_s=3, max_latency_s=3)
    state = {"killed": False, "restarted": False}

    def act(event: dict[str, Any], events: list[dict[str, Any]]) -> bool:
        if event["event"] == "window" and event["stream"] == "cam" and not state["killed"]:
            rtsp.kill()  # mid-stream: the server dies
            state["killed"] = True
        if event["event"] == "stream_lost" and event["stream"] == "cam":
            time.sleep(1.0)  # down for a while: reopening is refused meanwhile
            servers.append(rtsp_server(long_video, rtsp_port).start())
            state["restarted"] = True
        return event["event"] == "window" and event["stream"] == "cam" and event["connection"] == 1

    events = collect(session, timeout_s=60, until=act)
    for worker in session.workers:  # memory: about one window of crops per stream
        assert 0 < worker.stats.peak_cached_frames <= PLAN.window
    cam_states = [e for e in events if e["stream"] == "cam" and e["event"].startswith("stream_")]
    assert [e["event"] for e in cam_states] == ["stream_opened", "stream_lost", "stream_restored"]
    lost, restored = cam_states[1], cam_states[2]
    assert lost["reason"] in ("ended", "error", "stalled")
    assert restored["reason"] == lost["reason"]
    assert restored["down_s"] >= 1.0
    cam_windows = [e for e in events if e["event"] == "window" and e["stream"] == "cam"]
    assert cam_windows[-1]["connection"] == 1
    assert cam_windows[-1]["index"] == 0  # windows restart with the connection
    # the other stream never stopped: windows while the camera was down, and no state change
    other_events = [e for e in events if e["stream"] == "other"]
    assert [e["event"] for e in other_events if e["event"].startswith("stream_")] == [
        "stream_opened"
    ]
    during = [
        e
        for e in other_events
        if e["event"] == "window" and lost["wall"] <= e["emit_wall"] <= restored["wall"]
    ]
    assert during, "the other stream gave no window while the camera was down"


class SlowBackend:
    """A test double of ``Backend``: 0.25 s per window in a call, uniform scores."""

    def __init__(self, seconds_per_window: float) -> None:
        self.info = BackendInfo(name="slow", model_path="slow", precision="fp32")
        self.input_shape = (None, 1, 3, 32, 112, 112)
        self.output_kind = "probs"
        self.seconds_per_window = seconds_per_window
        self.calls: list[int] = []

    def run(self, video: np.ndarray) -> np.ndarray:
        self.calls.append(video.shape[0])
        time.sleep(self.seconds_per_window * video.shape[0])
        return np.full((video.shape[0], 10), 0.1, dtype=np.float32)

    def close(self) -> None:
        pass


@needs_ffmpeg
def test_two_streams_at_twice_the_capacity_keep_latency_bounded(tmp_path: Path) -> None:
    video = write_h264(tmp_path / "small.mp4", seconds=7, size="160x120")
    plan = WindowPlan(32, 8, preprocess=PLAN.preprocess)  # 3.75 windows/s per stream
    slow = SlowBackend(0.25)  # 4 windows/s: half of the 7.5 asked for
    sources = [Source(str(video), name, "file") for name in ("a", "b")]
    session = watch(sources, slow, plan=plan, realtime=True, max_batch=2, max_latency_s=1.0)
    events = collect(session, timeout_s=60)
    windows = [e for e in events if e["event"] == "window"]
    final = {e["stream"]: e for e in events if e["event"] == "stats" and e["final"]}
    made = (7 * 30 - 32) // 8 + 1  # windows each stream's frames make
    for name in ("a", "b"):
        mine = [e for e in windows if e["stream"] == name]
        assert final[name]["dropped"] > 0
        assert len(mine) + final[name]["dropped"] == made  # every window scored or counted
        assert final[name]["latency_p99_s"] <= 2.0
    scored = [sum(e["stream"] == name for e in windows) for name in ("a", "b")]
    assert abs(scored[0] - scored[1]) <= 2, scored  # the streams take turns: fair shares
    latencies = np.array([e["latency_s"] for e in windows])
    assert np.percentile(latencies, 99) <= 2.0
    half = len(latencies) // 2  # no growth: the second half is no later than the first
    assert latencies[half:].mean() <= latencies[:half].mean() + 0.5


@needs_ffmpeg
def test_a_stalled_stream_is_lost_after_the_stall_timeout(
    long_video: Path, backend: Any, servers: list[Server]
) -> None:
    port = free_port()
    sender = mpegts_server(long_video, port).start()
    servers.append(sender)
    url = f"tcp://127.0.0.1:{port}"
    session = watch([url], backend, plan=PLAN, reconnect=False, stall_timeout_s=2)
    stalled_at: list[float] = []

    def act(event: dict[str, Any], events: list[dict[str, Any]]) -> bool:
        if event["event"] == "window" and not stalled_at:
            assert sender.proc is not None
            sender.proc.send_signal(signal.SIGSTOP)  # the connection stays open, silent
            stalled_at.append(time.time())
        return event["event"] == "stream_ended"

    try:
        events = collect(session, timeout_s=60, until=act)
    finally:
        if sender.proc is not None:
            sender.proc.send_signal(signal.SIGCONT)
    (ended,) = [e for e in events if e["event"] == "stream_ended"]
    assert ended["reason"] == "stalled"
    assert "no data for 2 s" in ended["message"]
    assert 1.5 <= ended["wall"] - stalled_at[0] <= 10


@needs_ffmpeg
def test_a_file_read_as_fast_as_it_decodes_loses_no_window(tmp_path: Path) -> None:
    video = write_h264(tmp_path / "small.mp4", seconds=3, size="160x120")
    slow = SlowBackend(0.05)  # slower than decoding: the reader waits, nothing is dropped
    session = watch([str(video)], slow, plan=PLAN, max_batch=1, max_latency_s=0.01)
    events = collect(session, timeout_s=60)
    windows = [e["index"] for e in events if e["event"] == "window"]
    assert windows == list(range((90 - 32) // 16 + 1))
    (final,) = [e for e in events if e["event"] == "stats"]
    assert final["dropped"] == 0


@needs_ffmpeg
def test_a_uint8_model_watches_as_its_float_twin(
    tmp_path: Path, tiny_onnx: Path, tiny_uint8_onnx: Path
) -> None:
    """Windows are assembled as the model takes them (``runtime.base.model_input``): a
    uint8-input model scores each window as the float model does."""
    video = write_h264(tmp_path / "small.mp4", seconds=3, size="160x120")
    scores = []
    for model in (tiny_onnx, tiny_uint8_onnx):
        session = watch([str(video)], model, scores=True, max_latency_s=120, queue_depth=64)
        events = collect(session, timeout_s=120)
        scores.append([e["scores"] for e in events if e["event"] == "window"])
    assert len(scores[0]) == (90 - 64) // 16 + 1
    np.testing.assert_allclose(scores[1], scores[0], atol=1e-5)

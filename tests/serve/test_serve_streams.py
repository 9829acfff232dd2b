"""Live streams through the service: register, state and labels, SSE events, remove."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("slowfast_deploy.live")


def test_stream_lifecycle_and_events(server, video_dir, tmp_path):
    source = video_dir / "a" / "land.mp4"
    with server.client() as http:
        r = http.post("/v1/streams", json={"source": str(source), "name": "cam1"})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "cam1"
        assert (
            http.post("/v1/streams", json={"source": str(source), "name": "cam1"}).status_code
            == 409
        )
        assert [s["name"] for s in http.get("/v1/streams").json()] == ["cam1"]
        events = []
        with http.stream("GET", "/v1/streams/cam1/events", timeout=60) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[len("data: ") :]))
                    if events[-1]["event"] in ("stream_ended", "stream_failed"):
                        break
        kinds = [e["event"] for e in events]
        assert "stream_opened" in kinds and kinds[-1] == "stream_ended", kinds
        windows = [e for e in events if e["event"] == "window"]
        assert windows and all(e["stream"] == "cam1" for e in windows)
        assert len(windows[0]["topk"]) == 5 and "latency_s" in windows[0]
        state = http.get("/v1/streams/cam1").json()
        assert state["state"] == "ended" and state["labels"] == windows[-1]["topk"]
        assert http.delete("/v1/streams/cam1").status_code == 200
        r = http.get("/v1/streams/cam1")
        assert (r.status_code, r.json()["reason"]) == (404, "unknown_stream")
        assert http.get("/v1/streams/cam1/events").status_code == 404


def test_stream_sources_are_checked(server, tmp_path):
    outside = tmp_path / "x.mp4"
    outside.write_bytes(b"")
    with server.client() as http:
        for spec, reason in [
            ({"source": str(outside), "name": "a"}, "forbidden_path"),
            ({"source": "rtsp://127.0.0.1:8554/cam", "name": "a"}, "forbidden_url"),
            ({"source": "/dev/video0", "name": "a"}, "forbidden_path"),
            ({"source": "gopher://x/", "name": "a"}, "bad_request"),
            ({"source": "a.mp4", "name": "bad name!"}, "bad_request"),
            ({"name": "a"}, "bad_request"),
        ]:
            r = http.post("/v1/streams", json=spec)
            assert r.json()["reason"] == reason, (spec, r.text)
        assert http.get("/v1/streams").json() == []


def test_stream_outputs_webhook_and_subtitles(tiny_onnx, video_dir, tmp_path):
    """``webhook`` and ``srt_dir`` beside the source: watch's sinks, checked against the
    allow-lists, the webhook's delivery report the last event."""
    import http.server
    import shutil
    import threading

    from tests.serve.helpers import running

    received: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    (tmp_path / "v").mkdir()
    shutil.copy(video_dir / "a" / "land.mp4", tmp_path / "v" / "land.mp4")
    spec = {"source": "v/land.mp4", "name": "cam", "webhook": base + "hook", "srt_dir": "subs"}
    try:
        with (
            running(tiny_onnx, allow_dirs=(str(tmp_path),), allow_urls=(base,)) as s,
            s.client() as http_client,
        ):
            for bad, reason in [
                ({**spec, "webhook": "http://127.0.0.1:1/x"}, "forbidden_url"),
                ({**spec, "srt_dir": "/etc"}, "forbidden_path"),
                ({**spec, "webhook": 7}, "bad_request"),
            ]:
                r = http_client.post("/v1/streams", json=bad)
                assert r.json()["reason"] == reason, (bad, r.text)
            assert not (tmp_path / "subs").exists()
            assert http_client.post("/v1/streams", json=spec).status_code == 201
            with http_client.stream("GET", "/v1/streams/cam/events", timeout=60) as response:
                events = [
                    json.loads(line[len("data: ") :])
                    for line in response.iter_lines()
                    if line.startswith("data: ")
                ]  # until the stream's end: its last events are the sinks' reports
    finally:
        httpd.shutdown()
    kinds = [e["event"] for e in events]
    segments = [e for e in events if e["event"] in ("segment_start", "segment_end")]
    assert segments and kinds[-1] == "webhook", kinds
    assert events[-1]["sent"] == len(segments) == len(received)
    assert [e["event"] for e in received] == [e["event"] for e in segments]
    subtitles = (tmp_path / "subs" / "cam.srt").read_text()
    assert subtitles.count("-->") == kinds.count("segment_end") >= 1

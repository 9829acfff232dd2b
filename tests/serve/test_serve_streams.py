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

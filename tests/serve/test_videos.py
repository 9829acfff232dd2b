"""Video endpoints: uploads answered as ``predict`` and ``timeline`` answer; bad uploads."""

from __future__ import annotations

import concurrent.futures
import json
import os
from pathlib import Path

import numpy as np
import pytest
from tests.serve.helpers import metric, running

from slowfast_deploy.cli import main
from slowfast_deploy.serve.options import LimitOptions


def _upload(http, path: Path, *, endpoint: str = "/v1/predict", field: str = "video", **params):  # type: ignore[no-untyped-def]
    with open(path, "rb") as f:
        return http.post(endpoint, params=params, files={field: (path.name, f, "video/mp4")})


def _cli_json(capsys, *argv: str):  # type: ignore[no-untyped-def]
    capsys.readouterr()
    main(["-q", *argv])
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", ["a/land.mp4", "short.mp4"])
def test_predict_upload_equals_predict(server, tiny_onnx, video_dir, capsys, name):
    video = video_dir / name
    with server.client() as http:
        r = _upload(http, video, topk=3)
    assert r.status_code == 200, r.text
    [got] = r.json()
    [want] = _cli_json(
        capsys, "predict", str(video), "--model", str(tiny_onnx), "--topk", "3", "--format", "json"
    )
    assert got["video"] == video.name
    assert [t["class"] for t in got["topk"]] == [t["class"] for t in want["topk"]]
    np.testing.assert_allclose(got["scores"], want["scores"], rtol=1e-5, atol=1e-7)
    assert set(got) == set(want)
    assert {k: v for k, v in got.items() if k not in ("video", "scores", "topk")} == {
        k: v for k, v in want.items() if k not in ("video", "scores", "topk")
    }


@pytest.mark.slow  # 30 tiny-model views at 256x256: ~20-35 s on 2 shared cores
def test_thirty_views(server, video_dir):
    # the CLI's 30-view answer is not recomputed here: 30 tiny-model views take ~20 s on 2
    # shared cores; the 1-view tests above hold the record equal to predict's
    with server.client() as http:
        r = _upload(http, video_dir / "a" / "port.mp4", views=30, topk=10)
    assert r.status_code == 200, r.text
    [got] = r.json()
    assert got["views"] == 30
    assert sum(got["scores"]) == pytest.approx(1.0, abs=1e-5)  # a mean of softmax rows
    top = sorted(got["scores"], reverse=True)[:10]
    assert [t["score"] for t in got["topk"]] == pytest.approx(top, rel=1e-6)


def test_timeline_equals_timeline(server, tiny_onnx, video_dir, capsys):
    video = video_dir / "a" / "land.mp4"
    args = ["--window", "32", "--stride", "16", "--smooth", "3"]
    with server.client() as http:
        r = _upload(http, video, endpoint="/v1/timeline", window=32, stride=16, smooth=3)
        assert r.status_code == 200, r.text
        srt = _upload(http, video, endpoint="/v1/timeline", window=32, stride=16, format="srt")
        bad = _upload(http, video, endpoint="/v1/timeline", window=8)
    [got] = r.json()
    [want] = _cli_json(capsys, "timeline", str(video), "--model", str(tiny_onnx), *args)
    for record in (got, want):
        record.pop("timing"), record.pop("video")
    assert got == want
    assert srt.status_code == 200 and srt.headers["content-type"].startswith("application/x-subrip")
    assert "-->" in srt.text
    assert bad.status_code == 400 and "window must be at least" in bad.json()["error"]


def test_bad_uploads_then_still_serving(server, video_dir, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with server.client() as http:
        r = _upload(http, text)
        assert (r.status_code, r.json()["reason"]) == (422, "not_a_video")
        assert str(tmp_path) not in r.json()["error"] and "/tmp" not in r.json()["error"]
        r = _upload(http, video_dir / "short.mp4", field="file")
        assert (r.status_code, r.json()["reason"]) == (400, "bad_request")
        assert "'video'" in r.json()["error"]
        r = http.post("/v1/predict", content=b"\x00" * 100, headers={"content-type": "video/mp4"})
        assert (r.status_code, r.json()["reason"]) == (415, "unsupported_media_type")
        r = http.post(
            "/v1/predict",
            content=b"--x\r\nbroken",
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        assert r.status_code == 400
        r = _upload(http, video_dir / "short.mp4", views=7)
        assert (r.status_code, r.json()["reason"]) == (400, "invalid")
        r = http.get("/v1/nothing")
        assert (r.status_code, r.json()["reason"]) == (404, "not_found")
        truncated = tmp_path / "cut.mp4"
        data = (video_dir / "a" / "land.mp4").read_bytes()
        truncated.write_bytes(data[: len(data) // 2])
        r = _upload(http, truncated)
        assert r.status_code == 422 and r.json()["reason"] in (
            "truncated",
            "corrupt",
            "not_a_video",
        )
        r = _upload(http, video_dir / "short.mp4")
        assert r.status_code == 200 and r.json()[0]["status"] == "ok"
        text_metrics = http.get("/metrics").text
    assert metric(text_metrics, "slowfast_failures_total", reason="not_a_video") >= 1
    assert metric(text_metrics, "slowfast_failures_total", reason="unsupported_media_type") >= 1


def test_upload_limit_413_and_temp_files_removed(tiny_onnx, video_dir, tmp_path):
    video = video_dir / "a" / "land.mp4"
    size = video.stat().st_size
    limits = LimitOptions(max_upload_bytes=size // 2)
    with (
        running(tiny_onnx, limits=limits, tmp_dir=str(tmp_path)) as s,
        s.client() as http,
    ):
        [upload_dir] = list(tmp_path.iterdir())
        assert oct(upload_dir.stat().st_mode & 0o777) == "0o700"
        r = _upload(http, video)
        assert (r.status_code, r.json()["reason"]) == (413, "upload_too_large")
        small = video_dir / "short.mp4"
        assert small.stat().st_size < size // 2
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: _upload(http, small), range(6)))
        assert [a.status_code for a in answers] == [200] * 6
        assert os.listdir(upload_dir) == []  # every request's file removed
    assert list(tmp_path.iterdir()) == []  # and the directory at shutdown


def test_server_paths_only_under_allow_dir(server, video_dir, tmp_path):
    outside = tmp_path / "outside.mp4"
    outside.write_bytes((video_dir / "short.mp4").read_bytes())
    (video_dir / "link.mp4").unlink(missing_ok=True)
    (video_dir / "link.mp4").symlink_to(outside)
    with server.client() as http:
        r = http.post("/v1/predict", json={"path": str(video_dir / "a" / "land.mp4")})
        assert r.status_code == 200 and r.json()[0]["video"] == str(video_dir / "a" / "land.mp4")
        r = http.post("/v1/predict", json={"path": "a/land.mp4"})  # relative: under the first
        assert r.status_code == 200
        for refused in (
            str(outside),
            str(video_dir / ".." / outside.name),
            "../../etc/passwd",
            str(video_dir / "link.mp4"),
        ):
            r = http.post("/v1/predict", json={"path": refused})
            assert (r.status_code, r.json()["reason"]) == (403, "forbidden_path"), refused
        r = http.post("/v1/predict", json={"path": str(video_dir / "missing.mp4")})
        assert (r.status_code, r.json()["reason"]) == (404, "not_found")
        r = http.post("/v1/predict", json={"url": "http://127.0.0.1:1/x.mp4"})
        assert (r.status_code, r.json()["reason"]) == (403, "forbidden_url")
    (video_dir / "link.mp4").unlink()


def test_urls_only_under_allow_url(tiny_onnx, video_dir):
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(video_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with running(tiny_onnx, allow_urls=(f"{base}/a/",)) as s, s.client() as http_client:
            r = http_client.post("/v1/predict", json={"url": f"{base}/a/land.mp4"})
            assert r.status_code == 200 and r.json()[0]["status"] == "ok"
            for refused in (
                f"{base}/short.mp4",
                f"{base}/a/../short.mp4",
                f"{base}/a/%2e%2e/short.mp4",
                f"http://localhost:{httpd.server_address[1]}/a/land.mp4",
            ):
                r = http_client.post("/v1/predict", json={"url": refused})
                assert (r.status_code, r.json()["reason"]) == (403, "forbidden_url"), refused
            r = http_client.post("/v1/predict", json={"url": f"{base}/a/missing.mp4"})
            assert (r.status_code, r.json()["reason"]) == (422, "fetch_failed")
    finally:
        httpd.shutdown()


def test_api_key(tiny_onnx, video_dir):
    with running(tiny_onnx, api_key="s3cret-key-0123") as s:
        with s.client() as http:
            assert http.get("/v2/health/live").status_code == 200
            assert http.get("/v2/health/ready").status_code == 200
            assert http.get("/").status_code == 200  # the page: static, it asks for the key
            for path in ("/v2", "/v2/models/tiny", "/metrics", "/v1/info", "/v1/streams"):
                r = http.get(path)
                assert r.status_code == 401 and r.json()["reason"] == "unauthorized", path
            r = http.get("/v1/info", headers={"authorization": "Bearer wrong"})
            assert r.status_code == 401
            r = _upload(http, video_dir / "short.mp4")
            assert r.status_code == 401
        with s.client(headers={"authorization": "Bearer s3cret-key-0123"}) as http:
            assert http.get("/v2/models/tiny").status_code == 200
            assert _upload(http, video_dir / "short.mp4").status_code == 200


def test_timeline_decoder_killed_fails_that_request_alone(server, tmp_path, video_dir):
    import os
    import signal
    import threading

    from tests.helpers import write_video

    long_video = tmp_path / "long.mp4"
    write_video(long_video, num_frames=400, width=64, height=48, seed=5)
    answer = {}

    def ask() -> None:
        with server.client() as http:
            answer["r"] = _upload(http, long_video, endpoint="/v1/timeline", window=32, stride=16)

    decoders = server.service.timeline_decoders  # decoder pid -> windows scored so far
    thread = threading.Thread(target=ask)
    thread.start()
    # mid-video: a window scored, the decoder (at most a window or two ahead) far from the end
    assert server.service.wait_for(lambda: any(n >= 1 for n in decoders.values()), 60)
    [pid] = [pid for pid, n in list(decoders.items()) if n >= 1]
    os.kill(pid, signal.SIGKILL)
    thread.join(60)
    r = answer["r"]
    assert (r.status_code, r.json()["reason"]) == (422, "decoder_died"), r.text
    assert str(tmp_path) not in r.json()["error"]
    with server.client() as http:  # the server goes on
        assert _upload(http, video_dir / "short.mp4", endpoint="/v1/timeline").status_code == 200

"""The pure parts: sizes, URL and path checks, the v2 request parser, the batcher."""

from __future__ import annotations

import json
import re
import threading
import time
from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest

from slowfast_deploy.engine.base import DecodeOptions
from slowfast_deploy.engine.batching import Clips, QueueFull
from slowfast_deploy.serve.kserve import TensorSpec, infer_response, parse_infer
from slowfast_deploy.serve.model_loop import ModelLoop
from slowfast_deploy.serve.options import (
    CLIP_BYTES,
    BatchOptions,
    LimitOptions,
    ServeOptions,
    parse_size,
)
from slowfast_deploy.serve.problems import Problem
from slowfast_deploy.serve.security import check_url, resolve_server_path


@pytest.mark.parametrize(
    ("text", "expected"),
    [("100", 100), ("5MB", 5_000_000), ("5MiB", 5 * 2**20), ("2g", 2 * 10**9), ("1.5k", 1500),
     ("512 KiB", 512 * 1024), ("lots", pytest.raises(ValueError, match="a size must be"))],
)  # fmt: skip
def test_parse_size(text, expected):
    if isinstance(expected, int):
        assert parse_size(text) == expected
    else:
        with expected:
            parse_size(text)


ALLOW = ("http://127.0.0.1:9000/videos/", "rtsp://cam.local:8554/")


@pytest.mark.parametrize(
    ("url", "outcome"),
    [
        ("http://127.0.0.1:9000/videos/a.mp4", does_not_raise()),
        ("http://127.0.0.1:9000/videos/sub/a.mp4?x=1", does_not_raise()),
        ("rtsp://cam.local:8554/stream1", does_not_raise()),
        ("http://127.0.0.1:9000/other/a.mp4", pytest.raises(Problem, match="not under")),
        ("http://127.0.0.1:9000/videos/../secret", pytest.raises(Problem)),
        ("http://127.0.0.1:9000/videos/%2E%2E/secret", pytest.raises(Problem)),
        ("http://127.0.0.1:9001/videos/a.mp4", pytest.raises(Problem)),  # another port
        ("https://127.0.0.1:9000/videos/a.mp4", pytest.raises(Problem)),  # another scheme
        ("http://127.0.0.1:9000@evil.example/videos/a.mp4", pytest.raises(Problem)),
        ("http://user:pw@127.0.0.1:9000/videos/a.mp4", pytest.raises(Problem)),
        ("http://127.0.0.1:9000/videosX/a.mp4", pytest.raises(Problem)),
    ],
)
def test_check_url(url, outcome):
    with outcome:
        check_url(url, ALLOW)


def test_nothing_fetched_or_read_without_an_allow_list(tmp_path):
    with pytest.raises(Problem, match="--allow-url") as err:
        check_url("http://127.0.0.1/a.mp4", ())
    assert err.value.status == 403
    with pytest.raises(Problem, match="--allow-dir"):
        resolve_server_path(str(tmp_path / "a.mp4"), ())


def test_server_paths(tmp_path):
    root = tmp_path / "videos"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "secret.mp4").write_bytes(b"x")
    (root / "escape.mp4").symlink_to(tmp_path / "secret.mp4")
    allow = (str(root),)
    assert resolve_server_path("sub/a.mp4", allow) == root / "sub" / "a.mp4"
    assert resolve_server_path(str(root / "a.mp4"), allow) == root / "a.mp4"
    for bad in ("../secret.mp4", str(root / "sub" / ".." / ".." / "secret.mp4"),
                str(root / "escape.mp4"), "/etc/passwd", "a\x00b"):  # fmt: skip
        with pytest.raises(Problem):
            resolve_server_path(bad, allow)


def test_options_are_checked():
    with pytest.raises(ValueError, match="max_batch must be an integer >= 1"):
        BatchOptions(max_batch=0)
    with pytest.raises(ValueError, match="max_queued_clips must be an integer >= 1"):
        LimitOptions(max_queued_clips=0)
    with pytest.raises(ValueError, match="timeout_s must be > 0"):
        LimitOptions(timeout_s=0)
    with pytest.raises(ValueError, match="allow_urls"):
        ServeOptions(allow_urls=("file:///etc/",))
    with pytest.raises(ValueError, match="api_key"):
        ServeOptions(api_key="short")


SPEC = TensorSpec("video", (-1, 1, 3, 4, -1, -1))


def _binary(array: np.ndarray, **extra) -> tuple[bytes, str]:
    head = {"inputs": [{"name": "video", "datatype": "FP32", "shape": list(array.shape),
                        "parameters": {"binary_data_size": array.nbytes}}], **extra}  # fmt: skip
    header = json.dumps(head).encode()
    return header + array.astype("<f4").tobytes(), str(len(header))


def test_parse_binary_and_json_alike():
    array = np.arange(2 * 3 * 4 * 2 * 2, dtype=np.float32).reshape(2, 1, 3, 4, 2, 2)
    body, length = _binary(array, parameters={"binary_data_output": True}, id="r1")
    parsed = parse_infer(body, length, SPEC)
    np.testing.assert_array_equal(parsed.tensor, array)
    assert parsed.binary_output and parsed.id == "r1"
    as_json = {"inputs": [{"name": "video", "datatype": "FP32", "shape": list(array.shape),
                           "data": array.ravel().tolist()}]}  # fmt: skip
    parsed_json = parse_infer(json.dumps(as_json).encode(), None, SPEC)
    np.testing.assert_array_equal(parsed_json.tensor, array)
    assert not parsed_json.binary_output
    out = np.ones((2, 10), dtype=np.float32)
    content, headers = infer_response("m", parsed, TensorSpec("class", (-1, 10)), out)
    split = int(headers["inference-header-content-length"])
    head = json.loads(content[:split])
    assert head["outputs"][0]["parameters"]["binary_data_size"] == 80 and head["id"] == "r1"
    np.testing.assert_array_equal(np.frombuffer(content[split:], "<f4").reshape(2, 10), out)


@pytest.mark.parametrize(
    ("shape", "datatype", "reason", "words"),
    [
        ([1, 3, 4, 2, 2], "FP32", "wrong_shape", "expected [-1, 1, 3, 4, -1, -1]"),
        ([1, 2, 3, 4, 2, 2], "FP32", "wrong_shape", "expected [-1, 1, 3, 4, -1, -1]"),
        ([0, 1, 3, 4, 2, 2], "FP32", "wrong_shape", "expected"),
        ([1, 1, 3, 4, 2, 2], "FP16", "wrong_datatype", "expected FP32"),
        ([1, 1, 3, 4, 2, 2], "INT64", "wrong_datatype", "expected FP32"),
    ],
)
def test_bad_tensors_name_what_is_expected(shape, datatype, reason, words):
    head = {"inputs": [{"name": "video", "datatype": datatype, "shape": shape, "data": [0]}]}
    with pytest.raises(Problem) as err:
        parse_infer(json.dumps(head).encode(), None, SPEC)
    assert (err.value.reason, err.value.status) == (reason, 400)
    assert words in str(err.value)


def test_binary_size_must_match():
    array = np.zeros((1, 1, 3, 4, 2, 2), dtype=np.float32)
    body, length = _binary(array)
    with pytest.raises(Problem, match="binary_data_size") as err:
        parse_infer(body[:-4], length, SPEC)
    assert err.value.reason == "bad_tensor"
    with pytest.raises(Problem, match="does not fit"):
        parse_infer(body, str(len(body) + 1), SPEC)
    with pytest.raises(Problem, match="unknown input 'x'"):
        parse_infer(body.replace(b'"video"', b'"x"', 1), str(int(length) - 4), SPEC)


class _Model:
    """A backend that records its batch sizes and sleeps like a model."""

    info = type("Info", (), {"model_path": "m"})()
    input_shape = (None, 1, 2)
    output_kind = "probs"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def run(self, video: np.ndarray) -> np.ndarray:
        self.calls.append(video.shape[0])
        time.sleep(0.05)
        return video.reshape(video.shape[0], -1) * 2


def test_batcher_batches_concurrent_requests_and_splits_answers():
    model = _Model()
    batcher = ModelLoop(model, max_batch=4, max_wait_ms=200, max_queue=100)
    try:
        results: dict[int, np.ndarray] = {}

        def ask(i: int) -> None:
            rows = np.full((1, 1, 2), i, dtype=np.float32)
            results[i] = batcher.run(Clips.of(rows), 10)

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(model.calls) == [4, 4]  # 8 requests, 2 model calls
        for i, got in results.items():
            np.testing.assert_array_equal(got, [[2 * i, 2 * i]])
        big = np.arange(20, dtype=np.float32).reshape(10, 1, 2)
        np.testing.assert_array_equal(batcher.run(Clips.of(big), 10), big.reshape(10, 2) * 2)
        assert model.calls[-3:] == [4, 4, 2]  # a large request in chunks of max_batch
    finally:
        batcher.close()


def test_batcher_queue_is_bounded():
    model = _Model()
    batcher = ModelLoop(model, max_batch=64, max_wait_ms=300, max_queue=2)
    try:
        first = batcher.submit(Clips.of(np.zeros((2, 1, 2), np.float32)))
        with pytest.raises(QueueFull, match="--max-queue 2"):
            batcher.submit(Clips.of(np.zeros((1, 1, 2), np.float32)))
        assert first[0].result(5).shape == (2, 2)
    finally:
        batcher.close()


def test_cli_options(monkeypatch, tmp_path):
    from slowfast_deploy.cli import build_parser
    from slowfast_deploy.cli.serve import API_KEY_ENV, serve_options

    monkeypatch.setenv(API_KEY_ENV, "from-the-environment")
    args = build_parser().parse_args(
        [
            "serve",
            "--model",
            str(tmp_path / "m.onnx"),
            "--max-upload",
            "5MB",
            "--allow-dir",
            str(tmp_path),
            "--max-batch",
            "4",
        ]
    )
    options = serve_options(args)
    assert options.api_key == "from-the-environment"
    assert (options.name, options.limits.max_upload_bytes) == ("m", 5_000_000)
    assert options.batch == BatchOptions(max_batch=4, max_wait_ms=5.0)
    assert options.decode == DecodeOptions("auto", "container")
    assert options.allow_dirs == (str(tmp_path.resolve()),)
    assert args.host == "127.0.0.1"
    assert options.limits == LimitOptions(max_upload_bytes=5_000_000)  # each queue limit 64


def test_max_queue_sets_each_queue_limit_unless_named(tmp_path):
    from slowfast_deploy.cli import build_parser
    from slowfast_deploy.cli.serve import serve_options

    model = ["serve", "--model", str(tmp_path / "m.onnx")]
    args = build_parser().parse_args([*model, "--max-queue", "4", "--max-queued-clips", "32"])
    limits = serve_options(args).limits
    assert (limits.max_requests, limits.max_queued_clips, limits.max_queued_videos) == (4, 32, 4)
    assert limits.max_tensor_bytes == 4 * CLIP_BYTES
    args = build_parser().parse_args([*model, "--max-requests", "2", "--max-streams", "3"])
    limits = serve_options(args).limits
    assert (limits.max_requests, limits.max_queued_clips, limits.max_streams) == (2, 64, 3)


def test_budget_makes_requests_wait_for_their_share():
    import asyncio

    from slowfast_deploy.serve.budget import Budget

    async def scenario() -> list[str]:
        budget = Budget(10)
        order: list[str] = []
        first = await budget.acquire(8)

        async def later(name: str, units: int) -> None:
            held = await budget.acquire(units)
            order.append(name)
            await budget.release(held)

        waiting = asyncio.gather(later("big", 5), later("huge", 50))  # 50: all 10, alone
        await asyncio.sleep(0.05)
        order.append("released")
        await budget.release(first)
        await waiting
        assert budget.free == 10
        return order

    assert asyncio.run(scenario())[0] == "released"


def _facts(**views: str | None):  # type: ignore[no-untyped-def]
    from slowfast_deploy.serve.protocol import ModelFacts

    spec = TensorSpec("video", (-1, 1, 3, 32, -1, -1))
    return ModelFacts("m", "onnxruntime", "fp32", spec, TensorSpec("class", (-1, 10)), 10,
                      {1: None, 30: views.get("thirty")})  # fmt: skip


def test_queries_are_parsed_once_bad_ones_are_problems():
    from slowfast_deploy.serve.protocol import ModelRef, PredictQuery, TimelineQuery

    assert PredictQuery.parse({"views": "1", "topk": "3"}, _facts()) == PredictQuery(1, 3)
    for params, words in [
        ({"views": "7"}, "views must be one of [1, 30], got 7"),
        ({"topk": "11"}, "topk must be in 1..10, got 11"),
        ({"topk": "x"}, "topk must be an integer, got 'x'"),
        ({"views": "30"}, "no 256 crops"),
    ]:
        with pytest.raises(Problem, match=re.escape(words)) as err:
            PredictQuery.parse(params, _facts(thirty="no 256 crops"))
        assert (err.value.reason, err.value.status) == ("invalid", 400)
    query = TimelineQuery.parse({"window": "32", "format": "srt", "smooth": "3"}, _facts())
    assert (query.plan.window, query.plan.stride, query.segments.smooth) == (32, 16, 3)
    assert (query.format, query.media_type) == ("srt", "application/x-subrip")
    for params, words in [
        ({"format": "xml"}, "format must be one of ['csv', 'json', 'srt'], got 'xml'"),
        ({"window": "8"}, "window must be at least the model's clip length (32 frames)"),
        ({"threshold": "2"}, "threshold must be a score in 0..1, got 2.0"),
    ]:
        with pytest.raises(Problem, match=re.escape(words)):
            TimelineQuery.parse(params, _facts())
    assert ModelRef.parse({"name": "m", "version": "1"}, "m") == ModelRef("m", "1")
    with pytest.raises(Problem, match="unknown model 'm version 2'") as err:
        ModelRef.parse({"name": "m", "version": "2"}, "m")
    assert err.value.status == 404


def test_video_sources_and_stream_outputs():
    import asyncio

    from slowfast_deploy.serve.protocol import (
        RemoteVideo,
        ServerPath,
        StreamOutputs,
        UploadedVideo,
        read_video_source,
    )

    async def body(data: bytes):  # type: ignore[no-untyped-def]
        yield data

    def source(data: bytes, content_type: str = "application/json"):  # type: ignore[no-untyped-def]
        return asyncio.run(read_video_source(body(data), {"content-type": content_type}))

    assert source(b'{"path": "a.mp4"}') == ServerPath("a.mp4")
    assert source(b'{"url": "http://x/a.mp4"}') == RemoteVideo("http://x/a.mp4")
    assert isinstance(source(b"--x", "multipart/form-data; boundary=x"), UploadedVideo)
    for bad in (b'{"path": "a", "url": "b"}', b"[1]", b"{nope"):
        with pytest.raises(Problem) as err:
            source(bad)
        assert err.value.reason == "bad_request"
    assert StreamOutputs.parse({"webhook": "http://h/", "x": 1}) == StreamOutputs("http://h/")
    with pytest.raises(Problem, match="srt_dir must be a string"):
        StreamOutputs.parse({"srt_dir": ["a"]})

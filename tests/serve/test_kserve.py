"""The Open Inference Protocol with ``tritonclient.http``, the client Triton users have."""

from __future__ import annotations

import concurrent.futures
import json

import numpy as np
import pytest
from tests.serve.helpers import metric

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402


def _client(server):  # type: ignore[no-untyped-def]
    return httpclient.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=60)


def _reference(tiny_onnx, video):  # type: ignore[no-untyped-def]
    """What ``infer`` computes for the same tensors: ``run_batched`` on the backend."""
    from slowfast_deploy.runtime import ModelConfig, run_batched

    backend = ModelConfig(str(tiny_onnx)).open()
    try:
        return run_batched(backend, video)
    finally:
        backend.close()


def _input(video, *, binary):  # type: ignore[no-untyped-def]
    inp = httpclient.InferInput("video", list(video.shape), "FP32")
    inp.set_data_from_numpy(video, binary_data=binary)
    return inp


def test_metadata_and_health(server):
    client = _client(server)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("tiny")
    meta = client.get_model_metadata("tiny")
    assert meta["inputs"] == [
        {"name": "video", "datatype": "FP32", "shape": [-1, 1, 3, 32, -1, -1]}
    ]
    assert meta["outputs"] == [{"name": "class", "datatype": "FP32", "shape": [-1, 10]}]
    assert meta["platform"] == "onnxruntime_onnx"
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    assert not client.is_model_ready("nope")
    config = client.get_model_config("tiny")
    assert config["max_batch_size"] == 8
    assert config["input"] == [
        {"name": "video", "data_type": "TYPE_FP32", "dims": [1, 3, 32, -1, -1]}
    ]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_equals_the_backend(server, tiny_onnx, binary):
    rng = np.random.default_rng(7)
    video = rng.standard_normal((3, 1, 3, 32, 48, 64), dtype=np.float32)
    outputs = [httpclient.InferRequestedOutput("class", binary_data=binary)]
    result = _client(server).infer("tiny", [_input(video, binary=binary)], outputs=outputs)
    got = result.as_numpy("class")
    assert got.shape == (3, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, _reference(tiny_onnx, video), rtol=1e-5, atol=1e-6)


def test_default_request_is_binary_both_ways(server, tiny_onnx):
    video = np.random.default_rng(1).standard_normal((1, 1, 3, 32, 32, 32), dtype=np.float32)
    result = _client(server).infer("tiny", [_input(video, binary=True)])  # outputs: default
    assert result.get_output("class")["parameters"]["binary_data_size"] == 40
    np.testing.assert_allclose(
        result.as_numpy("class"), _reference(tiny_onnx, video), rtol=1e-5, atol=1e-6
    )


def test_bad_tensors_are_400_naming_the_expected(server):
    client = _client(server)
    wrong_shape = np.zeros((1, 3, 32, 32, 32), dtype=np.float32)
    with pytest.raises(InferenceServerException, match=r"expected \[-1, 1, 3, 32, -1, -1\]"):
        client.infer("tiny", [_input(wrong_shape, binary=True)])
    wrong_type = np.zeros((1, 1, 3, 32, 32, 32), dtype=np.float64)
    inp = httpclient.InferInput("video", list(wrong_type.shape), "FP64")
    inp.set_data_from_numpy(wrong_type)
    with pytest.raises(InferenceServerException, match="expected FP32"):
        client.infer("tiny", [inp])
    with pytest.raises(InferenceServerException, match="unknown model 'other'"):
        client.infer("other", [_input(np.zeros((1, 1, 3, 32, 8, 8), np.float32), binary=True)])

    with server.client() as http:
        r = http.post("/v2/models/tiny/infer", content=b"{not json")
        assert r.status_code == 400 and r.json()["reason"] == "bad_request"
        body = {
            "inputs": [
                {"name": "video", "datatype": "FP32", "shape": [1, 1, 3, 32, 2, 2], "data": [1.0]}
            ]
        }
        r = http.post("/v2/models/tiny/infer", json=body)
        assert r.status_code == 400 and r.json()["reason"] == "bad_tensor"
        r = http.post("/v2/models/other/infer", json=body)
        assert r.status_code == 404 and r.json()["reason"] == "unknown_model"
        assert http.get("/v2/health/live").status_code == 200  # still serving


def test_concurrent_clients_are_batched(server, tiny_onnx):
    video = np.random.default_rng(3).standard_normal((1, 1, 3, 32, 32, 32), dtype=np.float32)
    expected = _reference(tiny_onnx, video)
    with server.client() as http:
        before = metric(http.get("/metrics").text, "slowfast_batch_size_count")

    def one(_: int) -> np.ndarray:
        result = _client(server).infer("tiny", [_input(video, binary=True)])
        return result.as_numpy("class")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(32)))
    for got in results:
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    with server.client() as http:
        text = http.get("/metrics").text
    calls = metric(text, "slowfast_batch_size_count") - before
    assert 0 < calls < 32, f"{calls} model calls for 32 concurrent requests: no batching"
    assert (
        metric(
            text,
            "slowfast_requests_total",
            route="/v2/models/{name}/infer",
            method="POST",
            status="200",
        )
        >= 32
    )


def test_queue_full_429_and_timeout_504(tiny_onnx):
    from tests.serve.helpers import running

    from slowfast_deploy.serve.options import BatchOptions, LimitOptions

    # a batch waits 1.5 s to fill: the first request is in progress, the second finds no room
    # for it (--max-queue 1); the first outlives its 0.5 s limit
    batch = BatchOptions(max_batch=64, max_wait_ms=1500)
    limits = LimitOptions.queue(1, timeout_s=0.5)
    with running(tiny_onnx, batch=batch, limits=limits) as s:
        body = {
            "inputs": [
                {
                    "name": "video",
                    "datatype": "FP32",
                    "shape": [1, 1, 3, 32, 2, 2],
                    "data": [0.0] * 384,
                }
            ]
        }
        with concurrent.futures.ThreadPoolExecutor(2) as pool, s.client() as http:
            first = pool.submit(http.post, "/v2/models/tiny/infer", json=body)
            assert s.service.wait_for(lambda: s.service.in_progress == 1, 30)
            second = http.post("/v2/models/tiny/infer", json=body)
            assert second.status_code == 429, second.text
            assert second.json()["reason"] == "queue_full"
            assert second.headers["retry-after"] == "1"
            late = first.result()
            assert late.status_code == 504 and late.json()["reason"] == "timeout"
            text = http.get("/metrics").text
            assert metric(text, "slowfast_failures_total", reason="queue_full") == 1
            assert metric(text, "slowfast_failures_total", reason="timeout") == 1
            assert json.loads(http.get("/v2/health/ready").text) == {"ready": True}


def test_uint8_model_takes_uint8_tensors_and_videos(tiny_uint8_onnx, server, video_dir):
    """A model exported with --input-dtype uint8: UINT8 in /v2, the bytes fed as they are;
    its video answers equal the float model's (the normalisation moved into the graph)."""
    from tests.serve.helpers import running

    crops = np.random.default_rng(2).integers(0, 256, (2, 1, 3, 32, 16, 16), dtype=np.uint8)
    with running(tiny_uint8_onnx) as s:
        client = _client(s)
        meta = client.get_model_metadata("tiny")
        assert meta["inputs"][0]["datatype"] == "UINT8"
        inp = httpclient.InferInput("video", list(crops.shape), "UINT8")
        inp.set_data_from_numpy(crops)
        got = client.infer("tiny", [inp]).as_numpy("class")
        np.testing.assert_allclose(got, _reference(tiny_uint8_onnx, crops), rtol=1e-5, atol=1e-6)
        with pytest.raises(InferenceServerException, match="expected UINT8"):
            client.infer("tiny", [_input(crops.astype(np.float32), binary=True)])
        with s.client() as http, open(video_dir / "short.mp4", "rb") as f:
            [record] = http.post("/v1/predict", files={"video": ("short.mp4", f)}).json()
    with server.client() as http, open(video_dir / "short.mp4", "rb") as f:  # the float model
        [float_record] = http.post("/v1/predict", files={"video": ("short.mp4", f)}).json()
    assert [t["class"] for t in record["topk"]] == [t["class"] for t in float_record["topk"]]
    np.testing.assert_allclose(record["scores"], float_record["scores"], atol=1e-5)

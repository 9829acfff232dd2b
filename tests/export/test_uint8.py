"""uint8-input models (``export --input-dtype uint8``): normalisation inside the graph, fed
bytes by every command, with the float model's scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.helpers import write_video

from slowfast_deploy.cli import main
from slowfast_deploy.errors import BackendUnavailableError, ModelFormatError
from slowfast_deploy.runtime import open_backend, run_batched
from slowfast_deploy.runtime.base import PARITY_ATOL, model_input
from slowfast_deploy.specs import SINGLE_VIEW

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

ATOL = PARITY_ATOL[("onnxruntime", "fp32")]


@pytest.fixture(scope="module")
def uint8_onnx(tiny_uint8_onnx):
    return tiny_uint8_onnx


def crops(batch: int, seed: int = 0) -> np.ndarray:
    """Random uint8 crops ``[batch, T, S, S, 3]``."""
    return np.random.default_rng(seed).integers(0, 256, (batch, 32, 224, 224, 3), dtype=np.uint8)


def test_model_input_float_is_normalize_and_uint8_is_the_bytes():
    from slowfast_deploy.video.preprocess import normalize_to_ncthw

    views = crops(2)
    as_float = model_input(views, SINGLE_VIEW.preprocess, "float32")
    np.testing.assert_array_equal(as_float, normalize_to_ncthw(views, SINGLE_VIEW.preprocess))
    as_bytes = model_input(views, SINGLE_VIEW.preprocess, "uint8")
    assert as_bytes.dtype == np.uint8 and as_bytes.flags.c_contiguous
    np.testing.assert_array_equal(as_bytes, views.transpose(0, 4, 1, 2, 3))
    with pytest.raises(ValueError, match="input_dtype"):
        model_input(views, SINGLE_VIEW.preprocess, "float16")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_uint8_onnx_equals_float_onnx(uint8_onnx, tiny_onnx, backend):
    if backend == "openvino":
        pytest.importorskip("openvino")
    u8 = open_backend(uint8_onnx, backend=backend)
    f32 = open_backend(tiny_onnx, backend=backend)
    assert (u8.input_dtype, f32.input_dtype) == ("uint8", "float32")
    views = crops(2)
    got = run_batched(u8, model_input(views, SINGLE_VIEW.preprocess, "uint8")[:, None])
    want = run_batched(f32, model_input(views, SINGLE_VIEW.preprocess, "float32")[:, None])
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_float_input_to_a_uint8_model_is_refused_in_one_line(uint8_onnx):
    backend = open_backend(uint8_onnx)
    video = model_input(crops(1), SINGLE_VIEW.preprocess, "float32")[:, None]
    with pytest.raises(ModelFormatError, match=r"takes uint8 input but the data is float32"):
        run_batched(backend, video)


@pytest.mark.parametrize("target", ["openvino", "onnxruntime"])
def test_compile_keeps_uint8_input(uint8_onnx, tmp_path, target):
    if target == "openvino":
        pytest.importorskip("openvino")
    from slowfast_deploy.export.compile import compile_model

    result = compile_model(uint8_onnx, backend=target, output=tmp_path / "m")
    assert result.parity.ok and result.top1_agree  # checked on uint8 crops against the source
    compiled = open_backend(result.path)
    assert compiled.input_dtype == "uint8"


def test_int8_of_a_uint8_model_is_refused(uint8_onnx, tmp_path):
    pytest.importorskip("openvino")
    from slowfast_deploy.export.compile import compile_model

    with pytest.raises(BackendUnavailableError, match="quantize the float export"):
        compile_model(
            uint8_onnx, backend="openvino", output=tmp_path / "q", precision="int8",
            calibration="generated-samples",
        )  # fmt: skip


def test_predict_and_timeline_give_the_float_models_scores(uint8_onnx, tiny_onnx, tmp_path, capsys):
    path = tmp_path / "clip.mp4"
    write_video(path, num_frames=96, width=96, height=72, seed=5)
    outputs = {}
    for name, model in (("u8", uint8_onnx), ("f32", tiny_onnx)):
        assert main(["predict", str(path), "--model", str(model), "--format", "json"]) == 0
        (predicted,) = json.loads(capsys.readouterr().out)
        argv = ["timeline", str(path), "--model", str(model), "--topk", "10", "-q"]
        assert main([*argv, "--window", "64", "--stride", "16"]) == 0
        (timeline,) = json.loads(capsys.readouterr().out)
        outputs[name] = predicted, timeline
    (p8, t8), (p32, t32) = outputs["u8"], outputs["f32"]
    np.testing.assert_allclose(p8["scores"], p32["scores"], atol=ATOL, rtol=0)
    assert len(t8["windows"]) == len(t32["windows"]) > 1
    for w8, w32 in zip(t8["windows"], t32["windows"], strict=True):
        assert [t["class"] for t in w8["topk"]] == [t["class"] for t in w32["topk"]]
        for a, b in zip(w8["topk"], w32["topk"], strict=True):
            assert a["score"] == pytest.approx(b["score"], abs=ATOL)


def test_evaluate_gives_the_float_models_scores(uint8_onnx, tiny_onnx, video_dir, tmp_path):
    from tests.helpers import evaluate_args

    from slowfast_deploy.evaluation.results import read_records

    scores = {}
    for name, model in (("u8", uint8_onnx), ("f32", tiny_onnx)):
        out = tmp_path / f"{name}.jsonl"
        assert main(evaluate_args(video_dir, model, out, "--num-workers", "1")) == 0
        scores[name] = {r["key"]: r["scores"] for r in read_records(out) if "scores" in r}
    assert scores["u8"].keys() == scores["f32"].keys() and len(scores["u8"]) == 3
    for key, row in scores["u8"].items():
        np.testing.assert_allclose(row, scores["f32"][key], atol=ATOL, rtol=0)


def test_export_records_the_input_dtype(uint8_onnx, tiny_onnx):
    onnx = pytest.importorskip("onnx")
    for path, dtype in ((uint8_onnx, "uint8"), (tiny_onnx, "float32")):
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert meta["input_dtype"] == dtype

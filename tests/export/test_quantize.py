"""OpenVINO int8 post-training quantization of a tiny model."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ov = pytest.importorskip("openvino")
pytest.importorskip("nncf")

SHAPE = (1, 1, 3, 32, 64, 64)  # small spatial size keeps calibration fast


@pytest.fixture(scope="module")
def small_onnx(tiny_model, tmp_path_factory):
    from conftest import export_plain_onnx

    path = tmp_path_factory.mktemp("quantize") / "tiny.onnx"
    return export_plain_onnx(tiny_model, path, SHAPE, softmax=True)


def test_int8_ir_runs_close_to_fp32(small_onnx, tmp_path):
    from slowfast_deploy.export.quantize import quantize_openvino
    from slowfast_deploy.runtime import open_backend
    from slowfast_deploy.runtime.openvino_backend import rt_value

    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(SHAPE, dtype=np.float32) for _ in range(4)]
    xml = quantize_openvino(small_onnx, tmp_path / "int8", calibration=clips)
    assert xml.suffix == ".xml"
    assert rt_value(ov.Core().read_model(str(xml)), "precision") == "int8"
    backend = open_backend(xml)
    assert backend.info.precision == "int8"
    video = rng.standard_normal((2, *SHAPE[1:]), dtype=np.float32)
    got = backend.run(video)
    expected = open_backend(small_onnx, backend="onnxruntime").run(video)
    assert got.shape == expected.shape == (2, 10)
    assert np.abs(got - expected).max() < 0.05


def test_int8_compile_needs_calibration(small_onnx, tmp_path):
    from slowfast_deploy.export.compile import compile_model

    with pytest.raises(ValueError, match="calibration"):
        compile_model(small_onnx, backend="openvino", output=tmp_path / "m", precision="int8")

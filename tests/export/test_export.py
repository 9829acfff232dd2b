"""ONNX export of a tiny model: contract, metadata, validation, simplify, compile."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.helpers import tiny_spec  # noqa: E402

from slowfast_deploy.errors import ModelFormatError, ParityError  # noqa: E402
from slowfast_deploy.export.onnx import export_onnx, sample_input  # noqa: E402
from slowfast_deploy.export.validate import compare_outputs  # noqa: E402


def test_export_validates_and_simplifies(tiny_checkpoint, tmp_path):
    result = export_onnx(tiny_checkpoint, tmp_path / "t.onnx", simplify=True, spec=tiny_spec())
    assert result.parity.max_abs_diff < 1e-5
    assert result.simplified_with.startswith("onnxslim")


def test_contract_names_dynamic_batch_and_metadata(tiny_checkpoint, tmp_path):
    from slowfast_deploy._files import sha256_file

    path = tmp_path / "default.onnx"
    export_onnx(tiny_checkpoint, path, softmax=True, spec=tiny_spec())
    proto = onnx.load(str(path))
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == ("video", "class")
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["N", 1, 3, 32, 224, 224]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N", 10]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["checkpoint_sha256"] == sha256_file(tiny_checkpoint)
    assert meta["output_kind"] == "probs"
    assert json.loads(meta["model_spec"])["resample_rate"] == 4
    assert json.loads(meta["view_spec"])["preprocess"]["short_side"] == 256
    ops = {n.op_type for n in proto.graph.node}
    assert "Resize" not in ops and "Upsample" not in ops  # temporal subsampling is a Slice
    assert "Softmax" in ops


def test_onnxruntime_matches_torch_at_several_batch_sizes(tiny_onnx, tiny_model):
    from slowfast_deploy.runtime import open_backend

    backend = open_backend(tiny_onnx)
    video = sample_input(3)
    with torch.no_grad():
        expected = torch.softmax(tiny_model(torch.from_numpy(video).flatten(0, 1)), 1).numpy()
    np.testing.assert_allclose(backend.run(video), expected, atol=1e-5)
    assert backend.output_kind == "probs"


def test_logits_export_records_output_kind(tiny_checkpoint, tmp_path):
    from slowfast_deploy.runtime import open_backend

    out = tmp_path / "logits.onnx"
    export_onnx(tiny_checkpoint, out, softmax=False, spec=tiny_spec())
    assert open_backend(out).output_kind == "logits"


def test_compare_outputs_raises_with_every_problem():
    ref = {"class": np.array([[0.1, 0.9]], np.float32)}
    with pytest.raises(ParityError, match=r"max \|diff\| 0.8 .*top-1 DIFFERS"):
        compare_outputs(
            ref, {"class": np.array([[0.9, 0.1]], np.float32)}, atol=1e-4, source="m.onnx"
        )
    with pytest.raises(ParityError, match="output 'class' missing; unexpected output 'x'"):
        compare_outputs(ref, {"x": ref["class"]}, atol=1e-4, source="m.onnx")


@pytest.mark.parametrize(("backend", "suffix"), [("onnxruntime", ".onnx"), ("openvino", ".xml")])
def test_compile_fp32_fixed_batch_pads_partial_batches(tiny_onnx, tmp_path, backend, suffix):
    if backend == "openvino":
        pytest.importorskip("openvino")
    from slowfast_deploy.export.compile import compile_model
    from slowfast_deploy.runtime import open_backend, run_batched

    result = compile_model(tiny_onnx, backend=backend, output=tmp_path / "bs2", batchsize=2)
    assert result.path.suffix == suffix
    assert result.top1_agree and result.parity.max_abs_diff < 1e-4
    compiled = open_backend(result.path)
    assert compiled.input_shape[0] == 2
    video = sample_input(3)  # 3 inputs on a batch-2 model: one padded batch, no extra rows
    got = run_batched(compiled, video)
    assert got.shape == (3, 10)
    np.testing.assert_allclose(got, open_backend(tiny_onnx).run(video), atol=1e-4)


def test_compile_rejects_non_onnx(tmp_path):
    from slowfast_deploy.export.compile import compile_model

    bad = tmp_path / "m.onnx"
    bad.write_bytes(b"\x01\x02 not protobuf")
    with pytest.raises(ModelFormatError, match=r"m\.onnx: not a readable ONNX file"):
        compile_model(bad, backend="onnxruntime", output=tmp_path / "x")


def test_bad_model_files_for_each_backend(tmp_path):
    from slowfast_deploy.runtime import open_backend

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"junk")
    with pytest.raises(ModelFormatError, match=r"junk\.onnx: onnxruntime cannot load it"):
        open_backend(junk)
    xml = tmp_path / "junk.xml"
    xml.write_text("<net/>")
    pytest.importorskip("openvino")
    with pytest.raises(ModelFormatError, match=r"junk\.xml: OpenVINO cannot read it"):
        open_backend(xml)
    with pytest.raises(ModelFormatError, match=r"backend 'torch' cannot run a \.onnx file"):
        open_backend(junk, backend="torch")


def test_input_shape_mismatch_is_explained(tiny_onnx):
    from slowfast_deploy.runtime import open_backend, run_batched

    with pytest.raises(
        ModelFormatError,
        match=r"model input is Nx1x3x32x\?x\? but the data is "
        r"1x1x3x16x224x224",
    ):
        run_batched(open_backend(tiny_onnx), np.zeros((1, 1, 3, 16, 224, 224), np.float32))

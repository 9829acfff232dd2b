"""``preprocess --dtype uint8`` writes the crops' bytes; ``infer`` checks sizes against the
model's input dtype and gives a uint8 model's results equal to the float model's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slowfast_deploy.cli import ExitStatus, main
from slowfast_deploy.errors import DataFormatError
from slowfast_deploy.reference.formats import BIN_FORMAT_NAME, BIN_SHAPE, read_bin, read_result

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

FLOAT_BYTES = int(np.prod(BIN_SHAPE)) * 4  # 19,267,584
UINT8_BYTES = int(np.prod(BIN_SHAPE))  # 4,816,896


@pytest.mark.parametrize(
    ("size", "dtype", "message"),
    [
        (FLOAT_BYTES, "uint8", "holds float32 .* but the model takes uint8; rerun .* with --dtype"),
        (UINT8_BYTES, "float32", "holds uint8 .* but the model takes float32; rerun .* without"),
        (1000, "uint8", "1000 bytes, expected 4816896 for uint8"),
    ],
)
def test_read_bin_names_the_dtype_and_the_fix(tmp_path, size, dtype, message):
    path = tmp_path / "0.bin"
    path.write_bytes(b"\0" * size)
    with pytest.raises(DataFormatError, match=message):
        read_bin(path, BIN_SHAPE, dtype)


def preprocess(video_dir, save, *extra):
    argv = ["-q", "preprocess", "--video-dir", str(video_dir), "--save-dir", str(save),
            "--ann-file", str(video_dir / "list.txt"), "--num-workers", "1", *extra]  # fmt: skip
    assert main(argv) == ExitStatus.OK


def infer(model, bins, out):
    argv = ["-q", "infer", "--model", str(model), "--input", str(bins), "--output", str(out)]
    return main([*argv, "--outfmt", "NPY"])


def test_uint8_bins_feed_the_uint8_model_the_float_models_results(
    video_dir, tiny_onnx, tiny_uint8_onnx, tmp_path, capsys
):
    preprocess(video_dir, tmp_path / "f32")
    preprocess(video_dir, tmp_path / "u8", "--dtype", "uint8")
    f32_bins, u8_bins = tmp_path / "f32" / "bin", tmp_path / "u8" / "bin"
    assert {p.stat().st_size for p in f32_bins.glob("*.bin")} == {FLOAT_BYTES}
    assert {p.stat().st_size for p in u8_bins.glob("*.bin")} == {UINT8_BYTES}
    # the float default writes the reference's files only; uint8 is recorded twice
    assert not (tmp_path / "f32" / BIN_FORMAT_NAME).exists()
    fmt = json.loads((tmp_path / "u8" / BIN_FORMAT_NAME).read_text())
    assert fmt == {"dtype": "uint8", "shape": list(BIN_SHAPE)}
    records = (tmp_path / "u8" / "bin_sources.jsonl").read_text().splitlines()
    assert {json.loads(line)["dtype"] for line in records} == {"uint8"}
    info = (tmp_path / "u8" / "kinetics400.info").read_bytes()
    assert info == (tmp_path / "f32" / "kinetics400.info").read_bytes()
    # the bytes are the float clips before normalisation
    from slowfast_deploy.runtime.base import model_input
    from slowfast_deploy.specs import SINGLE_VIEW

    u8 = read_bin(u8_bins / "0.bin", BIN_SHAPE, "uint8")
    as_float = model_input(u8[0].transpose(0, 2, 3, 4, 1), SINGLE_VIEW.preprocess, "float32")
    np.testing.assert_array_equal(as_float[None], read_bin(f32_bins / "0.bin"))

    assert infer(tiny_uint8_onnx, u8_bins, tmp_path / "r8") == 0
    assert infer(tiny_onnx, f32_bins, tmp_path / "r32") == 0
    for path in sorted((tmp_path / "r32" / "result").iterdir()):
        want = read_result(path)
        got = read_result(tmp_path / "r8" / "result" / path.name)
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    capsys.readouterr()

    # a model of the other dtype is stopped before any result is written, in one line
    assert infer(tiny_uint8_onnx, f32_bins, tmp_path / "wrong") != 0
    err = capsys.readouterr().err.strip()
    assert "but the model takes uint8; rerun `slowfast-deploy preprocess` with --dtype" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "wrong" / "result").exists()


def test_switching_dtype_redoes_the_bins(video_dir, tmp_path):
    save = tmp_path / "prep"
    preprocess(video_dir, save, "--dtype", "uint8")
    preprocess(video_dir, save)  # float32 now: every .bin is rewritten, the record removed
    assert {p.stat().st_size for p in (save / "bin").glob("*.bin")} == {FLOAT_BYTES}
    assert not (save / BIN_FORMAT_NAME).exists()

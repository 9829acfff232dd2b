"""The PyTorch runtime: eager ``.pth`` in fp32/bf16 and AOTInductor ``.pt2`` packages.

One ``.pt2`` is compiled (the tiny model, uint8 input: about 30 s on 2 cores); the refusals
are checked on doctored copies of its metadata.
"""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
from tests.helpers import tiny_spec

from slowfast_deploy.cli import main
from slowfast_deploy.errors import BackendUnavailableError, ModelFormatError
from slowfast_deploy.runtime import open_backend, run_batched
from slowfast_deploy.runtime.aot_backend import PT2_METADATA, read_pt2_metadata
from slowfast_deploy.runtime.base import PARITY_ATOL, model_input, to_probs
from slowfast_deploy.specs import SINGLE_VIEW

torch = pytest.importorskip("torch")

ATOL = PARITY_ATOL[("torch", "fp32")]
HAS_BF16 = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def crops(batch: int, seed: int = 0, size: int = 224) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, 32, size, size, 3), dtype=np.uint8)


def as_input(views: np.ndarray, dtype: str) -> np.ndarray:
    return model_input(views, SINGLE_VIEW.preprocess, dtype)[:, None]  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_pt2(tiny_checkpoint, tmp_path_factory):
    """The tiny model as a uint8-input fp32 ``.pt2``, batch, H and W dynamic (compile checks it
    against eager fp32)."""
    from slowfast_deploy.export.aot import compile_torch

    out = tmp_path_factory.mktemp("pt2") / "tiny"  # .pt2 is added
    result = compile_torch(
        tiny_checkpoint, out, spec=tiny_spec(), input_dtype="uint8", dynamic_hw=True
    )
    assert result.path.name == "tiny.pt2" and result.parity.ok and result.top1_agree
    return result.path


def test_pt2_metadata_says_what_it_needs(tiny_pt2):
    meta = read_pt2_metadata(tiny_pt2)
    assert meta["torch_version"] == torch.__version__
    assert (meta["device"], meta["precision"], meta["input_dtype"]) == ("cpu", "fp32", "uint8")
    assert meta["input_shape"] == [None, 1, 3, 32, None, None]
    assert (meta["output_kind"], meta["softmax"]) == ("probs", True)
    assert meta["model_spec"]["num_classes"] == 10 and meta["cpu_isa"]


def test_pt2_equals_eager_fp32_at_any_batch_and_crop_size(tiny_pt2, tiny_checkpoint):
    pt2 = open_backend(tiny_pt2)
    eager = open_backend(tiny_checkpoint, spec=tiny_spec())
    assert (pt2.info.name, pt2.input_dtype, eager.input_dtype) == ("torch", "uint8", "float32")
    for batch, size in ((1, 224), (3, 224), (2, 256)):  # batch, H and W are dynamic
        views = crops(batch, seed=batch, size=size)
        got = run_batched(pt2, as_input(views, "uint8"))
        want = run_batched(eager, as_input(views, "float32"))
        assert got.shape == (batch, 10)
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)


def doctored(src, tmp_path, **changes):
    """A copy of the package whose metadata has ``changes``."""
    out = tmp_path / "doctored.pt2"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename.endswith("/" + PT2_METADATA):
                data = json.dumps({**json.loads(data), **changes}).encode()
            zout.writestr(item, data)
    return out


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"torch_version": "2.99.0"}, r"built for torch 2\.99\.0 on cpu; it needs torch 2\.99\.0"),
        ({"device": "cuda"}, r"built for torch .* on cuda; run it with --device cuda"),
        ({"cpu_isa": "amx_tiles_only"}, r"built for amx_tiles_only CPUs"),
    ],
)
def test_a_pt2_for_another_torch_device_or_cpu_is_refused_in_one_line(
    tiny_pt2, tmp_path, changes, message
):
    with pytest.raises(BackendUnavailableError, match=message) as err:
        open_backend(doctored(tiny_pt2, tmp_path, **changes))
    assert "\n" not in str(err.value) and "slowfast-deploy compile" in str(err.value)


def test_pt2_refusals_precision_device_and_foreign_files(tiny_pt2, tmp_path):
    with pytest.raises(BackendUnavailableError, match="is a fp32 package"):
        open_backend(tiny_pt2, precision="bf16")
    with pytest.raises(BackendUnavailableError, match=r"no usable CUDA|built for"):
        open_backend(tiny_pt2, device="cuda")
    plain = tmp_path / "plain.pt2"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("plain/archive_format", "pt2")
    with pytest.raises(ModelFormatError, match="without slowfast-deploy metadata"):
        open_backend(plain)
    junk = tmp_path / "junk.pt2"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ModelFormatError, match=r"not a \.pt2 package"):
        open_backend(junk)


def test_pt2_through_predict_equals_the_checkpoint(tiny_pt2, video_dir, capsys):
    """``predict`` opens a ``.pt2`` like any model and feeds it bytes."""
    shutil.copy(tiny_pt2, tiny_pt2.with_name("copy.pt2"))  # any name: metadata is inside
    video = str(video_dir / "short.mp4")
    assert main(["predict", video, "--model", str(tiny_pt2.with_name("copy.pt2")),
                 "--format", "json"]) == 0  # fmt: skip
    (record,) = json.loads(capsys.readouterr().out)
    assert len(record["scores"]) == 10 and record["status"] == "ok"


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has no native bf16")
def test_pth_bf16_is_close_to_fp32(tiny_checkpoint):
    fp32 = open_backend(tiny_checkpoint, spec=tiny_spec())
    bf16 = open_backend(tiny_checkpoint, spec=tiny_spec(), precision="bf16")
    assert bf16.info.precision == "bf16" and bf16.input_dtype == "float32"
    video = as_input(crops(2), "float32")
    got, want = run_batched(bf16, video), run_batched(fp32, video)
    assert got.dtype == np.float32
    assert 0 < np.abs(got - want).max() < 0.05  # it really ran in bf16, and close
    np.testing.assert_allclose(got.sum(-1), 1, atol=1e-5)  # softmax in float32


def test_bf16_on_a_cpu_without_it_is_refused(tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    with pytest.raises(BackendUnavailableError, match="no native bf16"):
        open_backend(tiny_checkpoint, spec=tiny_spec(), precision="bf16")


def test_threads_are_honoured(tiny_checkpoint):
    before = torch.get_num_threads()
    try:
        backend = open_backend(tiny_checkpoint, spec=tiny_spec(), threads=1)
        assert torch.get_num_threads() == 1 and "1 threads" in backend.info.provider
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend", "torch", "--batchsize", "4"], "dynamic batch"),
        (["--backend", "torch", "--precision", "int8"], "compiles fp32, bf16"),
        (["--backend", "onnxruntime", "--input-dtype", "uint8"], "are for --backend torch"),
    ],
)
def test_compile_cli_torch_argument_errors(tiny_checkpoint, tmp_path, capsys, argv, message):
    code = main(["compile", str(tiny_checkpoint), *argv, "--output", str(tmp_path / "m")])
    assert code != 0 and message in capsys.readouterr().err


def test_compile_cli_cuda_without_cuda_is_one_line(tiny_checkpoint, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    argv = ["compile", str(tiny_checkpoint), "--backend", "torch", "--device", "cuda"]
    assert main([*argv, "--output", str(tmp_path / "m")]) != 0
    err = capsys.readouterr().err.strip()
    assert "no usable CUDA device" in err and len(err.splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_probs_of_pt2_sum_to_one(tiny_pt2):
    out = run_batched(open_backend(tiny_pt2), as_input(crops(1), "uint8"))
    np.testing.assert_allclose(to_probs(out, "probs").sum(-1), 1, atol=1e-5)


def test_fold_batchnorm_keeps_the_function(tiny_model):
    """bf16 folds BN into the convolutions first (one rounding per layer); in fp32 the folded
    model is the same function."""
    import copy

    from slowfast_deploy.model.slowfast import fold_batchnorm

    folded = copy.deepcopy(tiny_model)
    fold_batchnorm(folded)
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in folded.modules())
    x = torch.from_numpy(as_input(crops(1), "float32")[:, 0])
    with torch.inference_mode():
        np.testing.assert_allclose(folded(x).numpy(), tiny_model(x).numpy(), atol=1e-4, rtol=1e-4)


def test_a_pt2_off_beyond_tolerance_is_not_kept(tiny_checkpoint, tmp_path, monkeypatch):
    from slowfast_deploy.errors import ParityError
    from slowfast_deploy.export.aot import compile_torch
    from slowfast_deploy.runtime.base import PARITY_ATOL

    monkeypatch.setitem(PARITY_ATOL, ("torch", "fp32"), -1.0)  # nothing can pass
    with pytest.raises(ParityError, match=r"m\.pt2"):
        compile_torch(tiny_checkpoint, tmp_path / "m.pt2", spec=tiny_spec())
    assert list(tmp_path.iterdir()) == []

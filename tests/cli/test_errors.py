"""Bad input through the CLI: one line naming the problem, the right exit code, no traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slowfast_deploy.cli import ExitStatus, main


@pytest.fixture(scope="module")
def plain_onnx(tiny_model, tmp_path_factory):
    """A logits-output ONNX file without slowfast-deploy metadata (e.g. from another tool)."""
    from tests.helpers import export_plain_onnx

    path = tmp_path_factory.mktemp("plain") / "plain.onnx"
    return export_plain_onnx(tiny_model, path, (1, 1, 3, 32, 224, 224), softmax=False)


def test_logits_model_without_metadata_is_softmaxed(plain_onnx, video_dir, capsys):
    from slowfast_deploy.runtime import open_backend

    assert open_backend(plain_onnx).output_kind == "unknown"
    assert (
        main(
            [
                "predict",
                str(video_dir / "short.mp4"),
                "--model",
                str(plain_onnx),
                "--format",
                "json",
            ]
        )
        == 0
    )
    (record,) = json.loads(capsys.readouterr().out)
    assert sum(record["scores"]) == pytest.approx(1.0, abs=1e-5)
    assert min(record["scores"]) >= 0


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (
            ["report", "{results}", "--out", "{tmp}/r.txt"],
            ExitStatus.USAGE,
            "usage error: --out must end in .md or .html",
        ),
        (
            [
                "compile",
                "{onnx}",
                "--backend",
                "openvino",
                "--precision",
                "int8",
                "--output",
                "{tmp}/m",
            ],
            ExitStatus.USAGE,
            "calibration",
        ),
        (["predict", "{video}", "--model", "{onnx}@x"], ExitStatus.ERROR, "no such model file"),
        (
            ["bench", "--model", "{onnx}@openvino:int8", "--loop", "1"],
            ExitStatus.ERROR,
            "an int8 model comes from `compile --precision int8`",
        ),
        (
            ["infer", "--model", "{onnx}", "--input", "{tmp}", "--output", "{tmp}"],
            ExitStatus.ERROR,
            "holds no .bin files",
        ),
        (
            ["predict", "{video}", "--model", "{ckpt}", "--device", "cuda"],
            ExitStatus.ERROR,
            "the torch backend runs .pth checkpoints on the CPU here",
        ),
        (["predict", "{video}", "--model", "{onnx}", "--batchsize", "0"], ExitStatus.USAGE, ""),
        (
            [
                "evaluate",
                "--video-dir",
                "{tmp}",
                "--ann-file",
                "{list}",
                "--model",
                "{onnx}",
                "--output",
                "{tmp}",
            ],
            ExitStatus.ERROR,
            "is a directory",
        ),
    ],
)
def test_one_line_errors(
    argv, code, message, tiny_onnx, tiny_checkpoint, video_dir, tmp_path, capsys
):
    results = tmp_path / "res.jsonl"
    results.write_text('{"key": "#run", "run": {}}\n')
    values = {
        "results": results,
        "tmp": tmp_path,
        "onnx": tiny_onnx,
        "ckpt": tiny_checkpoint,
        "video": video_dir / "short.mp4",
        "list": video_dir / "list.txt",
    }
    args = [a.format(**values) for a in argv]
    if code == ExitStatus.USAGE and not message:  # argparse rejects it itself
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 2
        assert "must be >= 1, got 0" in capsys.readouterr().err
        return
    assert main(args) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and message in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_infer_logits_flag_on_a_probability_model(tiny_onnx, tmp_path, capsys):
    (tmp_path / "bins").mkdir()
    np.zeros((1, 1, 3, 32, 224, 224), np.float32).tofile(tmp_path / "bins" / "0.bin")
    code = main(
        [
            "infer",
            "--model",
            str(tiny_onnx),
            "--input",
            str(tmp_path / "bins"),
            "--output",
            str(tmp_path),
            "--logits",
        ]
    )
    assert code == ExitStatus.USAGE
    assert "--logits applies to .pth checkpoints" in capsys.readouterr().err


def test_thirty_views_on_a_224_model_stops_before_decoding(
    tiny_checkpoint, video_dir, tmp_path, capsys
):
    from tests.helpers import tiny_spec

    from slowfast_deploy.export.onnx import export_onnx

    static = tmp_path / "static.onnx"
    export_onnx(tiny_checkpoint, static, softmax=True, spec=tiny_spec())
    code = main(["predict", str(video_dir / "short.mp4"), "--model", str(static), "--views", "30"])
    assert code == ExitStatus.ERROR
    assert (
        "takes 224x224 crops but 30 view(s) make 256x256 crops; for --views 30 export with "
        "--dynamic-hw" in capsys.readouterr().err
    )

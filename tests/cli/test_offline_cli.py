"""The reference workflow through the CLI on generated videos: preprocess -> infer -> evaluate."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from slowfast_deploy.cli import ExitStatus, main
from slowfast_deploy.reference.formats import BIN_SHAPE

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A seeded, randomly initialised full-size SlowFast R50 in mmaction2 0.x file layout."""
    from slowfast_deploy.model.slowfast import slowfast_r50

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "random.pth"
    torch.save({"meta": {"epoch": 1}, "state_dict": slowfast_r50().state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def prepared(video_dir, tmp_path_factory):
    save = tmp_path_factory.mktemp("prep")
    code = main(
        [
            "-q",
            "preprocess",
            "--video_dir",
            str(video_dir),
            "--ann_file",
            str(video_dir / "list.txt"),
            "--save_dir",
            str(save),
            "--num_workers",
            "1",
        ]
    )
    assert code == ExitStatus.OK
    return save


def test_preprocess_writes_bins_and_info(prepared):
    assert (prepared / "kinetics400.info").read_bytes() == b"0 3\n1 1\n2 7\n"
    bins = sorted(p.name for p in (prepared / "bin").iterdir())
    assert bins == ["0.bin", "1.bin", "2.bin"]
    for name in bins:
        assert (prepared / "bin" / name).stat().st_size == int(np.prod(BIN_SHAPE)) * 4


def test_preprocess_is_deterministic_across_workers(video_dir, prepared, tmp_path):
    assert (
        main(
            [
                "-q",
                "preprocess",
                "--video-dir",
                str(video_dir),
                "--ann-file",
                str(video_dir / "list.txt"),
                "--save-dir",
                str(tmp_path),
                "--num-workers",
                "2",
            ]
        )
        == 0
    )
    for i in range(3):
        a = (tmp_path / "bin" / f"{i}.bin").read_bytes()
        assert a == (prepared / "bin" / f"{i}.bin").read_bytes()


def test_preprocess_skips_bad_videos_lists_them_and_resumes(video_dir, tmp_path, capsys):
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all" * 50)
    shutil.copy(video_dir / "short.mp4", tmp_path / "ok.mp4")
    ann = tmp_path / "list.txt"
    ann.write_text("ok.mp4 1\nmissing.mp4 2\nbroken.mp4 3\n")
    save = tmp_path / "out"
    args = [
        "preprocess",
        "--video-dir",
        str(tmp_path),
        "--ann-file",
        str(ann),
        "--save-dir",
        str(save),
        "--num-workers",
        "1",
    ]
    assert main(args) == ExitStatus.SOME_FAILED
    err = capsys.readouterr().err
    assert "missing.mp4: no such video file (line 2)" in err
    assert "broken.mp4" in err
    assert (save / "kinetics400.info").read_text() == "0 1\n"
    failed = (save / "failed.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in failed] == ["1 missing.mp4", "2 broken.mp4"]
    # rerun: the good .bin is kept (not rewritten), the failures are reported again
    before = (save / "bin" / "0.bin").stat().st_mtime_ns
    assert main(args) == ExitStatus.SOME_FAILED
    assert (save / "bin" / "0.bin").stat().st_mtime_ns == before


def test_preprocess_malformed_list_stops_before_work(video_dir, tmp_path, capsys):
    ann = tmp_path / "list.txt"
    ann.write_text("a/land.mp4 3\nshort.mp4\n")
    code = main(
        [
            "preprocess",
            "--video-dir",
            str(video_dir),
            "--ann-file",
            str(ann),
            "--save-dir",
            str(tmp_path / "out"),
        ]
    )
    assert code == ExitStatus.ERROR
    err = capsys.readouterr().err.strip()
    assert err == f"error: {ann}:2: expected 'relative/path.mp4 <integer label>', got 'short.mp4'"
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def expected_scores(prepared, checkpoint):
    from slowfast_deploy.reference.formats import read_bin
    from slowfast_deploy.runtime import open_backend

    backend = open_backend(checkpoint)
    return [backend.run(read_bin(prepared / "bin" / f"{i}.bin")) for i in range(3)]


@pytest.mark.parametrize(("batchsize", "outfmt"), [(1, "BIN"), (2, "TXT"), (3, "NPY")])
def test_infer_writes_one_file_per_input_byte_exact(
    prepared, checkpoint, expected_scores, tmp_path, batchsize, outfmt, capsys
):
    from slowfast_deploy.reference.formats import result_bytes

    code = main(
        [
            "-q",
            "infer",
            "--model",
            str(checkpoint),
            "--input",
            str(prepared / "bin"),
            "--output",
            str(tmp_path),
            "--output_dirname",
            "res",
            "--outfmt",
            outfmt,
            "--batchsize",
            str(batchsize),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("[INFO] compute_time (ms): min = ")
    assert f"[INFO] throughput 1000*batchsize.mean({batchsize})/compute_time.mean(" in out
    ext = outfmt.lower()
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == [
        f"{i}_0.{ext}" for i in range(3)
    ]
    for i, expected in enumerate(expected_scores):
        got = (tmp_path / "res" / f"{i}_0.{ext}").read_bytes()
        if outfmt == "TXT":
            assert got == result_bytes(expected, "TXT")
            assert got.count(b" ") == 400 and got.endswith(b" \n")
        else:
            values = np.load(tmp_path / "res" / f"{i}_0.{ext}") if ext == "npy" else None
            assert len(got) == (1600 if ext == "bin" else len(result_bytes(expected, "NPY")))
            if values is not None:
                assert values.shape == (1, 400)
            np.testing.assert_allclose(
                np.frombuffer(got[-1600:], np.float32), expected[0], atol=1e-6
            )
    summary = json.loads((tmp_path / "res_summary.json").read_text())
    assert summary["num_inputs"] == 3 and summary["batchsize"] == batchsize
    assert summary["compute_time_ms"]["count"] == -(-3 // batchsize)


def test_infer_rejects_truncated_bin_before_writing(prepared, checkpoint, tmp_path, capsys):
    bins = tmp_path / "bins"
    shutil.copytree(prepared / "bin", bins)
    with open(bins / "1.bin", "r+b") as f:
        f.truncate(1234)
    code = main(
        [
            "infer",
            "--model",
            str(checkpoint),
            "--input",
            str(bins),
            "--output",
            str(tmp_path),
            "--output-dirname",
            "res",
        ]
    )
    assert code == ExitStatus.ERROR
    assert "1.bin: 1234 bytes, expected 19267584" in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_infer_rejects_a_file_that_is_not_a_model(prepared, tmp_path, capsys):
    fake = tmp_path / "model.txt"
    fake.write_text("hi")
    code = main(
        ["infer", "--model", str(fake), "--input", str(prepared / "bin"), "--output", str(tmp_path)]
    )
    assert code == ExitStatus.ERROR
    assert "model.txt: not a model file" in capsys.readouterr().err


def test_evaluate_text_and_json(tmp_path, capsys):
    res = tmp_path / "res"
    res.mkdir()
    rows = {0: [0.1, 0.7, 0.2], 1: [0.6, 0.3, 0.1], 2: [0.2, 0.3, 0.5]}
    for i, row in rows.items():
        (res / f"{i}_0.txt").write_text("".join(f"{v:f} " for v in row) + "\n")
    info = tmp_path / "k.info"
    info.write_text("0 1\n1 1\n2 2\n")
    assert main(["evaluate", "--result_dir", str(res), "--label_file", str(info)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == ["top1_acc\t0.6667", "top5_acc\t1.0000"]
    assert (
        main(["evaluate", "--result-dir", str(res), "--label-file", str(info), "--format", "json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["top1_acc"] == pytest.approx(2 / 3)


def test_evaluate_missing_result_is_an_error(tmp_path, capsys):
    res = tmp_path / "res"
    res.mkdir()
    (res / "0_0.txt").write_text("0.5 0.5 \n")
    info = tmp_path / "k.info"
    info.write_text("0 1\n1 0\n")
    assert main(["evaluate", "--result-dir", str(res), "--label-file", str(info)]) == 1
    assert f"no result 1_0.txt|npy|bin for {info}:2" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--result-dir", "x"],
        ["evaluate", "--result-dir", "x", "--label-file", "y", "--model", "m.onnx"],
        ["bench", "--model", "m.onnx", "--batchsize", "1,x"],
    ],
)
def test_inconsistent_arguments_are_usage_errors(argv, capsys):
    assert main(argv) == ExitStatus.USAGE
    assert capsys.readouterr().err.startswith("usage error: ")


def test_infer_resume_only_runs_missing_results(prepared, checkpoint, tmp_path, capsys):
    args = [
        "-q",
        "infer",
        "--model",
        str(checkpoint),
        "--input",
        str(prepared / "bin"),
        "--output",
        str(tmp_path),
        "--output-dirname",
        "res",
        "--outfmt",
        "TXT",
    ]
    assert main(args) == 0
    res = tmp_path / "res"
    kept = (res / "0_0.txt").stat().st_mtime_ns
    (res / "2_0.txt").unlink()
    assert main([*args[1:], "--resume"]) == 0  # without -q: the resume note is shown
    assert (res / "0_0.txt").stat().st_mtime_ns == kept
    assert (res / "2_0.txt").is_file()
    assert json.loads((tmp_path / "res_summary.json").read_text())["num_inputs"] == 1
    assert "resuming: 2 results already in" in capsys.readouterr().err


def test_preprocess_redoes_a_bin_whose_list_entry_changed(video_dir, tmp_path):
    ann = tmp_path / "list.txt"
    ann.write_text("a/land.mp4 3\nshort.mp4 7\n")
    save = tmp_path / "out"
    args = [
        "-q",
        "preprocess",
        "--video-dir",
        str(video_dir),
        "--ann-file",
        str(ann),
        "--save-dir",
        str(save),
        "--num-workers",
        "0",
    ]
    assert main(args) == 0
    first = (save / "bin" / "0.bin").read_bytes()
    kept = (save / "bin" / "1.bin").stat().st_mtime_ns
    ann.write_text("a/port.mp4 1\nshort.mp4 7\n")  # line 0 now names another video
    assert main(args) == 0
    assert (save / "bin" / "0.bin").read_bytes() != first
    assert (save / "bin" / "1.bin").stat().st_mtime_ns == kept
    assert (save / "kinetics400.info").read_text() == "0 1\n1 7\n"
    assert not list((save / "bin").glob(".*.tmp"))

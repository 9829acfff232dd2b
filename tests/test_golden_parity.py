"""Parity with mmaction2's own outputs in ../shared/golden (skipped when it is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from slowfast_deploy.cli import main
from slowfast_deploy.specs import SINGLE_VIEW
from slowfast_deploy.video.decode import open_video
from slowfast_deploy.video.preprocess import crop_views
from slowfast_deploy.video.sampling import sample_clip_indices

pytestmark = pytest.mark.golden
CHECKPOINT = "slowfast_r50_8x8x1_random_seed0.pth"
ODD = "syn_odd_321x241_24fps_90f_mpeg4.mp4"


def manifest(golden: Path) -> list[dict]:
    return json.loads((golden / "manifest.json").read_text())


def reference(golden: Path, video: str) -> dict:
    return dict(np.load(golden / "reference" / f"{video}.npz"))


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_indices_and_cropped_frames_identical(golden, decoder):
    checked = 0
    for entry in manifest(golden):
        ref = reference(golden, entry["video"])
        with open_video(golden / "videos" / entry["video"], decoder=decoder) as reader:
            assert reader.info.num_frames == entry["total_frames"]
            indices = sample_clip_indices(reader.info.num_frames, SINGLE_VIEW.clip)[0]
            frames = reader.read(indices)
        np.testing.assert_array_equal(indices, ref["frame_inds"])
        cropped = crop_views(frames, SINGLE_VIEW.preprocess)[0]
        np.testing.assert_array_equal(cropped, ref["cropped"], err_msg=entry["video"])
        checked += 1
    assert checked == 8


@pytest.fixture(scope="module")
def cli_run(golden, tmp_path_factory):
    """preprocess -> infer (logits, batch 1, NPY) and infer (scores, batch 3, TXT) via the CLI."""
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("golden_cli")
    entries = manifest(golden)
    (root / "list.txt").write_text("".join(f"{e['video']} {e['top1']}\n" for e in entries))
    assert (
        main(
            [
                "-q",
                "preprocess",
                "--video-dir",
                str(golden / "videos"),
                "--ann-file",
                str(root / "list.txt"),
                "--save-dir",
                str(root / "prep"),
                "--num-workers",
                "2",
            ]
        )
        == 0
    )
    model = str(golden / CHECKPOINT)
    common = [
        "--model",
        model,
        "--input",
        str(root / "prep" / "bin"),
        "--output",
        str(root),
        "--threads",
        "2",
    ]
    assert (
        main(
            [
                "-q",
                "infer",
                *common,
                "--output-dirname",
                "logits",
                "--outfmt",
                "NPY",
                "--batchsize",
                "1",
                "--logits",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "-q",
                "infer",
                *common,
                "--output-dirname",
                "scores",
                "--outfmt",
                "TXT",
                "--batchsize",
                "3",
            ]
        )
        == 0
    )
    return root, entries


def test_bins_are_the_reference_model_input(golden, cli_run):
    root, entries = cli_run
    mean = np.array([123.675, 116.28, 103.53], np.float32)
    std = np.array([58.395, 57.12, 57.375], np.float32)
    for i, entry in enumerate(entries):
        cropped = reference(golden, entry["video"])["cropped"]
        expected = ((cropped.astype(np.float32) - mean) / std).transpose(3, 0, 1, 2)[None, None]
        got = np.fromfile(root / "prep" / "bin" / f"{i}.bin", dtype="<f4").reshape(expected.shape)
        np.testing.assert_array_equal(got, expected)


def test_logits_and_scores_within_1e4_same_top5(golden, cli_run):
    root, entries = cli_run
    for i, entry in enumerate(entries):
        ref = reference(golden, entry["video"])
        logits = np.load(root / "logits" / f"{i}_0.npy")
        scores = np.array((root / "scores" / f"{i}_0.txt").read_text().split(), np.float32)
        np.testing.assert_allclose(logits, ref["logits"], atol=1e-4, rtol=0)
        np.testing.assert_allclose(scores, ref["scores"], atol=1e-4, rtol=0)
        assert int(np.argmax(scores)) == entry["top1"]
        assert set(np.argsort(scores)[-5:]) == set(entry["top5"])


def test_evaluate_cli_gives_full_accuracy_against_reference_top1(cli_run, capsys):
    root, _ = cli_run
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--result-dir",
                str(root / "scores"),
                "--label-file",
                str(root / "prep" / "kinetics400.info"),
                "--format",
                "json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["top1_acc"] == 1.0
    assert report["top5_acc"] == 1.0
    assert report["num_videos"] == 8


@pytest.mark.parametrize("video", ["demo.mp4", "test.avi"])
def test_thirty_view_indices(golden, video):
    from slowfast_deploy.specs import THIRTY_VIEW

    ref = np.load(golden / "reference" / f"{video}.30view.npz")
    with open_video(golden / "videos" / video) as reader:
        indices = sample_clip_indices(reader.info.num_frames, THIRTY_VIEW.clip)
    np.testing.assert_array_equal(indices.ravel(), ref["frame_inds"])


def test_thirty_view_view_logits_in_mmaction2_order(golden):
    """One clip of each crop (left/top, right/bottom, center) against mmaction2's view logits."""
    torch = pytest.importorskip("torch")
    from slowfast_deploy.engine.decode import load_views
    from slowfast_deploy.model.checkpoint import load_checkpoint
    from slowfast_deploy.specs import THIRTY_VIEW

    ref = np.load(golden / "reference" / "demo.mp4.30view.npz")
    views = load_views(golden / "videos" / "demo.mp4", THIRTY_VIEW)
    assert views.shape == (30, 3, 32, 256, 256)
    model = load_checkpoint(golden / CHECKPOINT)
    picked = [3, 17, 29]  # crop-major: view = crop * 10 + clip
    with torch.inference_mode():
        logits = model(torch.from_numpy(views[picked])).numpy()
    np.testing.assert_allclose(logits, ref["view_logits"][picked], atol=1e-4, rtol=0)


def test_thirty_view_scores_through_predict_cli(golden, capsys):
    pytest.importorskip("torch")
    ref = np.load(golden / "reference" / "test.avi.30view.npz")
    assert (
        main(
            [
                "predict",
                str(golden / "videos" / "test.avi"),
                "--model",
                str(golden / CHECKPOINT),
                "--views",
                "30",
                "--batchsize",
                "6",
                "--format",
                "json",
                "--threads",
                "2",
            ]
        )
        == 0
    )
    (record,) = json.loads(capsys.readouterr().out)
    scores = np.array(record["scores"], np.float32)
    np.testing.assert_allclose(scores, ref["scores"], atol=1e-4, rtol=0)
    assert set(np.argsort(scores)[-5:]) == set(np.argsort(ref["scores"])[-5:])

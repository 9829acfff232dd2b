"""Calibration and validation clip sets: even spread, sources, overlap and too-few warnings."""

from __future__ import annotations

import numpy as np
import pytest

from slowfast_deploy.quantize.calibration import (
    MIN_CALIBRATION_CLIPS,
    MIN_VALIDATION_CLIPS,
    ClipSet,
    check_clip_sets,
    load_clip_set,
    spread,
)


@pytest.mark.parametrize(
    ("num_items", "size", "expected"),
    [(10, 3, [0, 4, 9]), (3, 5, [0, 1, 2]), (5, 1, [0]), (0, 4, [])],
)
def test_spread_picks_evenly_first_and_last_included(num_items, size, expected):
    assert spread(num_items, size) == expected


def _set(name: str, seeds, *, generated: bool = False) -> ClipSet:
    clips = [np.full((1, 1, 3, 2, 4, 4), s, dtype=np.float32) for s in seeds]
    return ClipSet(name, tuple(f"{name}/{s}" for s in seeds), clips, generated=generated)


def test_enough_separate_clips_give_no_warning():
    calibration = _set("cal", range(MIN_CALIBRATION_CLIPS))
    validation = _set("val", range(100, 100 + MIN_VALIDATION_CLIPS))
    assert check_clip_sets(calibration, validation) == []


def test_overlap_is_found_by_content_even_across_files():
    calibration = _set("cal", range(40))
    validation = _set("val", [*range(100, 128), 3, 7])  # two clips equal to calibration clips
    warnings = check_clip_sets(calibration, validation)
    assert len(warnings) == 1
    assert warnings[0].startswith("2 of the 30 validation clips are also calibration clips")
    assert "in-sample" in warnings[0]


def test_too_few_clips_say_how_many_are_needed():
    warnings = check_clip_sets(_set("cal", range(8)), _set("val", range(100, 110)))
    assert any(
        w.startswith("only 8 calibration clips in cal") and f"at least {MIN_CALIBRATION_CLIPS}" in w
        for w in warnings
    )
    assert any(
        w.startswith("only 10 validation clips in val") and f"at least {MIN_VALIDATION_CLIPS}" in w
        for w in warnings
    )


def test_missing_validation_and_generated_clips_are_flagged():
    warnings = check_clip_sets(_set("demo", range(40), generated=True), None)
    assert any("generated sample clips (demo only)" in w for w in warnings)
    assert any("no --validation clips" in w for w in warnings)


def test_clips_from_bins_and_from_a_video_list(tmp_path, video_dir):
    from slowfast_deploy.reference.formats import BIN_SHAPE

    bins = tmp_path / "bins"
    bins.mkdir()
    for i in range(3):
        np.full(BIN_SHAPE, i, dtype=np.float32).tofile(bins / f"{i}.bin")
    from_bins = load_clip_set(bins, 2)
    assert [c[0, 0, 0, 0, 0, 0] for c in from_bins.clips] == [0.0, 2.0]  # first and last
    from_list = load_clip_set(video_dir / "list.txt", 2)
    expected = (video_dir / "a/land.mp4", video_dir / "short.mp4")
    assert from_list.names == tuple(str(p.resolve()) for p in expected)
    assert from_bins.names == (str((bins / "0.bin").resolve()), str((bins / "2.bin").resolve()))
    assert from_list.clips[0].shape == BIN_SHAPE
    with pytest.raises(Exception, match="no such clip source"):
        load_clip_set(tmp_path / "nothing", 2)


def test_compile_int8_cli_warns_and_stores_fidelity(tiny_onnx, video_dir, tmp_path, capsys):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from slowfast_deploy.cli import main
    from slowfast_deploy.quantize.fidelity import read_fidelity

    listed = str(video_dir / "list.txt")
    out = tmp_path / "int8"
    args = ["compile", str(tiny_onnx), "--backend", "openvino", "--precision", "int8"]
    args += ["--calibration", listed, "--validation", listed, "--output", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "3 of the 3 validation clips are also calibration clips" in err
    assert "only 3 calibration clips" in err
    assert "int8 fidelity vs fp32: top-1 " in err and "recipe: " in err
    fidelity = read_fidelity(out.with_suffix(".xml"))
    assert fidelity is not None and fidelity.num_clips == 3
    assert out.with_suffix(".recipe.json").is_file()
    # a standalone check of the saved model, on the same clips: the same figures
    assert (
        main(
            [
                "fidelity",
                str(out.with_suffix(".xml")),
                "--source",
                str(tiny_onnx),
                "--clips",
                listed,
                "--calibration",
                listed,
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "also calibration clips" in captured.err
    assert f"top-1 {fidelity.top1_agree}/3" in captured.out
    assert (
        main(
            [
                "compile",
                str(tiny_onnx),
                "--backend",
                "openvino",
                "--min-agreement",
                "1",
                "--output",
                str(out),
            ]
        )
        == 2
    )  # int8 options without --precision int8


def test_generated_samples_are_labelled_demo_only():
    pytest.importorskip("av")
    from slowfast_deploy.quantize.calibration import GENERATED_SOURCE

    clips = load_clip_set(GENERATED_SOURCE, 2)
    assert clips.generated and len(clips) == 2
    assert clips.describe() == "2 generated sample clips (demo only) from generated-samples"
    assert all(n.startswith("generated-samples/") for n in clips.names)
    assert any("demo" in w for w in check_clip_sets(clips, None))


def test_kept_layers_in_bf16_are_recorded_judged_and_run_that_way(tiny_onnx, video_dir, tmp_path):
    ov = pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU has no bf16")
    from slowfast_deploy.cli import main
    from slowfast_deploy.quantize.calibration import load_clip_set
    from slowfast_deploy.quantize.fidelity import check_fidelity, read_fidelity
    from slowfast_deploy.runtime import open_backend

    listed = str(video_dir / "list.txt")
    out = tmp_path / "int8_bf16"
    args = ["-q", "compile", str(tiny_onnx), "--backend", "openvino", "--precision", "int8"]
    args += ["--calibration", listed, "--kept-precision", "bf16", "--output", str(out)]
    assert main(args) == 0
    backend = open_backend(out.with_suffix(".xml"))
    assert backend.info.precision == "int8" and "bfloat16" in backend.info.provider
    stored = read_fidelity(out.with_suffix(".xml"))
    clips = load_clip_set(listed, 3)
    again = check_fidelity(out.with_suffix(".xml"), tiny_onnx, clips.clips)
    assert again.max_score_diff == pytest.approx(stored.max_score_diff, abs=1e-4)  # as it runs
    fp32_args = ["compile", str(tiny_onnx), "--backend", "openvino", "--output", str(out)]
    assert main([*fp32_args, "--kept-precision", "bf16"]) == 2  # an int8 option

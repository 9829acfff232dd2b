"""Fidelity of a reduced-precision model to its fp32 source: the metric and its storage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slowfast_deploy.quantize.fidelity import Fidelity, compare_scores


def _scores(*rows):
    return np.array(rows, dtype=np.float32)


def test_identical_scores_agree_fully():
    ref = _scores([0.7, 0.2, 0.05, 0.03, 0.01, 0.01], [0.1, 0.5, 0.2, 0.1, 0.05, 0.05])
    f = compare_scores(ref, ref.copy(), clips="two")
    counts = (f.num_clips, f.top1_agree, f.top5_agree, f.num_clear, f.clear_flipped)
    assert counts == (2, 2, 2, 2, 0)
    assert f.max_score_diff == f.mean_score_diff == 0.0
    assert f.summary().startswith("top-1 2/2 (1.000), top-5 set 2/2")


@pytest.mark.parametrize(
    ("candidate", "top1", "top5", "clear", "flipped"),
    [
        # clear margin (0.5 vs 0.2): a flip counts as a clear-margin flip
        ([[0.2, 0.5, 0.1, 0.1, 0.05, 0.05]], 0, 1, 1, 1),
        # same top-1, class 5 replaces class 4 in the top-5 set
        ([[0.5, 0.2, 0.1, 0.1, 0.0, 0.1]], 1, 0, 1, 0),
    ],
)
def test_flips_and_top5_changes(candidate, top1, top5, clear, flipped):
    ref = _scores([0.5, 0.2, 0.1, 0.1, 0.06, 0.04])
    f = compare_scores(ref, _scores(*candidate))
    counts = (f.top1_agree, f.top5_agree, f.num_clear, f.clear_flipped)
    assert counts == (top1, top5, clear, flipped)


def test_near_tie_flip_is_not_a_clear_margin_flip():
    ref = _scores([0.40, 0.38, 0.1, 0.1, 0.01, 0.01], [0.9, 0.02, 0.02, 0.02, 0.02, 0.02])
    got = _scores([0.38, 0.40, 0.1, 0.1, 0.01, 0.01], [0.8, 0.12, 0.02, 0.02, 0.02, 0.02])
    f = compare_scores(ref, got)
    assert (f.top1_agree, f.num_clear, f.clear_flipped) == (1, 1, 0)
    assert f.max_score_diff == pytest.approx(0.1, abs=1e-6)
    assert f.mean_score_diff == pytest.approx((0.02 + 0.1) / 2, abs=1e-6)


def test_fidelity_json_round_trip_and_validation():
    f = Fidelity(3, 3, 2, 0.1, 0.05, 2, 0, clips="3 clips from x")
    assert Fidelity.from_json(f.to_json()) == f
    assert f.top5_agreement == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="at least one clip"):
        Fidelity(0, 0, 0, 0.0, 0.0, 0, 0)
    with pytest.raises(ValueError, match=r"\[N, classes\]"):
        compare_scores(np.zeros((2, 3)), np.zeros((3, 3)))


def test_fidelity_check_of_an_existing_model_is_stored_in_the_ir(tiny_onnx, tmp_path):
    pytest.importorskip("openvino")
    from slowfast_deploy.cli import main
    from slowfast_deploy.export.compile import compile_model
    from slowfast_deploy.quantize.fidelity import check_fidelity, read_fidelity

    xml = compile_model(tiny_onnx, backend="openvino", output=tmp_path / "m").path
    assert read_fidelity(xml) is None
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal((1, 1, 3, 32, 32, 32), dtype=np.float32) for _ in range(3)]
    f = check_fidelity(xml, tiny_onnx, clips, description="3 random clips")
    assert f.top1_agree == 3 and f.max_score_diff < 1e-4  # fp32 IR vs its own source
    from slowfast_deploy.quantize.fidelity import write_fidelity

    write_fidelity(xml, f)
    assert read_fidelity(xml) == f
    assert main(["fidelity", str(xml), "--source", str(tiny_onnx), "--clips", "x"]) == 1


def test_bench_names_the_cpu_and_shows_stored_fidelity(tiny_onnx, tmp_path, capsys):
    pytest.importorskip("openvino")
    from slowfast_deploy.cli import main
    from slowfast_deploy.export.compile import compile_model
    from slowfast_deploy.quantize.fidelity import write_fidelity

    xml = compile_model(tiny_onnx, backend="openvino", output=tmp_path / "m").path
    write_fidelity(xml, Fidelity(8, 8, 7, 0.05, 0.01, 6, 0, clips="8 clips from val"))
    summary = tmp_path / "bench.json"
    args = ["bench", "--model", str(xml), "--loop", "1", "--warmup", "0", "--summary", str(summary)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "CPU: " in out
    assert f"fidelity of {xml} to fp32: top-1 8/8 (1.000), top-5 set 7/8" in out
    assert "cpu" in json.loads(summary.read_text())

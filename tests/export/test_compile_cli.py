"""``compile --precision int8``'s report lines and exit codes (library results stubbed in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slowfast_deploy.cli import main
from slowfast_deploy.export.validate import OutputCheck, ParityReport
from slowfast_deploy.quantize.fidelity import Fidelity
from slowfast_deploy.quantize.int8 import Int8Outcome
from slowfast_deploy.quantize.search import Recipe


def _result(tmp_path: Path, *, met: bool | None, timed_out: bool = False):
    from slowfast_deploy.export.compile import CompileResult

    outcome = Int8Outcome(
        path=tmp_path / "m.xml",
        recipe=Recipe(keep_fp32=("conv_a", "conv_b")),
        recipe_path=tmp_path / "m.recipe.json",
        fidelity=Fidelity(30, 29, 25, 0.12, 0.03, 28, 1, clips="30 clips from val"),
        in_sample=False,
        met=met,
        timed_out=timed_out,
        all_int8_ms=100.0,
        kept_ms=150.0,
    )
    parity = ParityReport([OutputCheck("class", (1, 400), (1, 400), 0.1, float("inf"), True)])
    return CompileResult(tmp_path / "m.xml", "openvino", "int8", None, parity, True, outcome)


@pytest.mark.parametrize(
    ("met", "timed_out", "code", "line"),
    [
        (True, False, 0, None),
        (False, True, 3, "target agreement 1.0 NOT met (the time budget ran out)"),
        (False, False, 3, "target agreement 1.0 NOT met (keeping every block did not"),
    ],
)
def test_search_outcome_sets_the_exit_code(
    tmp_path, monkeypatch, capsys, met, timed_out, code, line
):
    import slowfast_deploy.cli.compile as compile_module  # the name the command calls

    seen = {}

    def fake_compile(onnx, **kwargs):
        seen.update(kwargs)
        return _result(tmp_path, met=met, timed_out=timed_out)

    monkeypatch.setattr(compile_module, "compile_model", fake_compile)
    args = ["compile", "m.onnx", "--backend", "openvino", "--precision", "int8", "--output", "m"]
    args += ["--calibration", "cal", "--validation", "val", "--max-minutes", "2.5"]
    assert main(args) == code
    err = capsys.readouterr().err
    assert seen["int8"].min_agreement == 1.0  # the default target once validation clips are given
    assert seen["int8"].max_minutes == 2.5
    assert "int8 fidelity vs fp32: top-1 29/30 (0.967)" in err
    assert (
        "kept in fp32: 2 convolutions in 2 blocks (conv_a, conv_b); speed cost: 150 ms vs "
        "100 ms per call all-int8 (+50%" in err
    )
    assert (line in err) if line else "NOT met" not in err


@pytest.mark.parametrize("extra", [["--min-agreement", "1.5"], ["--max-minutes", "0"]])
def test_out_of_range_int8_arguments_are_refused(extra, capsys):
    args = ["compile", "m.onnx", "--backend", "openvino", "--precision", "int8", "--output", "m"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, *extra])
    assert exit_info.value.code == 2
    assert extra[0] in capsys.readouterr().err


def test_recipe_does_not_search_and_int8_options_need_int8(capsys):
    args = ["compile", "m.onnx", "--backend", "openvino", "--output", "m", "--recipe", "r.json"]
    assert main([*args, "--precision", "int8", "--min-agreement", "1"]) == 2
    assert "--min-agreement must not be given with a recipe" in capsys.readouterr().err
    assert main(args) == 2
    assert "need --precision int8" in capsys.readouterr().err

"""int8 quantization of a tiny model: plain, agreement-controlled, replayed from a recipe."""

from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ov = pytest.importorskip("openvino")
pytest.importorskip("nncf")

SIZE = 32  # small clips keep calibration fast (the models take any H and W)


def _clip(seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 1, 3, 32, SIZE, SIZE), dtype=np.float32)
    shift = rng.uniform(-2, 2, (1, 1, 3, 1, 1, 1))
    return (x * rng.uniform(2, 30) * scale + shift).astype(np.float32)


@pytest.fixture(scope="module")
def sensitive_onnx(tiny_model, tmp_path_factory):
    """The tiny model with a sharper classifier, exported with H and W dynamic."""
    from tests.helpers import tiny_spec

    from slowfast_deploy.export.onnx import export_onnx

    model = copy.deepcopy(tiny_model)
    with torch.no_grad():
        model.cls_head.fc_cls.weight.mul_(20)
    root = tmp_path_factory.mktemp("sensitive")
    torch.save({"meta": {}, "state_dict": model.state_dict()}, root / "m.pth")
    export_onnx(root / "m.pth", root / "m.onnx", softmax=True, spec=tiny_spec(), dynamic_hw=True)
    return root / "m.onnx"


@pytest.fixture(scope="module")
def clip_sets():
    """A deliberately poor calibration (one faint clip) and 12 strong validation clips: plain
    int8 then flips most top-1s, so agreement has to be bought back with fp32 layers."""
    from slowfast_deploy.quantize.calibration import ClipSet

    calibration = ClipSet("faint", ("c0",), [_clip(100, scale=0.002)])
    validation = ClipSet("strong", tuple(f"v{i}" for i in range(12)), [_clip(i) for i in range(12)])
    return calibration, validation


def test_int8_ir_runs_close_to_fp32(tiny_onnx, tmp_path):
    from slowfast_deploy.export.compile import compile_model
    from slowfast_deploy.quantize.calibration import ClipSet
    from slowfast_deploy.runtime import open_backend
    from slowfast_deploy.runtime.openvino_backend import rt_value

    rng = np.random.default_rng(0)
    clips = [rng.standard_normal((1, 1, 3, 32, SIZE, SIZE), dtype=np.float32) for _ in range(4)]
    result = compile_model(
        tiny_onnx,
        backend="openvino",
        output=tmp_path / "int8",
        precision="int8",
        calibration=ClipSet("random", ("a", "b", "c", "d"), clips),
    )
    xml = result.path
    assert xml.suffix == ".xml"
    assert rt_value(ov.Core().read_model(str(xml)), "precision") == "int8"
    backend = open_backend(xml)
    assert backend.info.precision == "int8"
    video = rng.standard_normal((2, 1, 3, 32, SIZE, SIZE), dtype=np.float32)
    expected = open_backend(tiny_onnx, backend="onnxruntime").run(video)
    assert np.abs(backend.run(video) - expected).max() < 0.05
    # no validation clips: the fidelity is measured in-sample, and says so
    assert result.int8.in_sample and "in-sample" in result.int8.fidelity.clips
    assert result.int8.fidelity.num_clips == 4


def test_int8_compile_needs_calibration(tiny_onnx, tmp_path):
    from slowfast_deploy.export.compile import compile_model

    with pytest.raises(ValueError, match="calibration"):
        compile_model(tiny_onnx, backend="openvino", output=tmp_path / "m", precision="int8")


def test_search_keeps_blocks_in_fp32_until_the_target_then_replays(
    sensitive_onnx, clip_sets, tmp_path
):
    from slowfast_deploy.export.compile import Int8Options, compile_model
    from slowfast_deploy.quantize.fidelity import read_fidelity
    from slowfast_deploy.quantize.search import Recipe
    from slowfast_deploy.runtime import open_backend

    calibration, validation = clip_sets

    def compile_int8(name: str, **options):
        return compile_model(
            sensitive_onnx,
            backend="openvino",
            output=tmp_path / name,
            precision="int8",
            calibration=calibration,
            int8=Int8Options(validation=validation, preset="performance", **options),
        ).int8

    found = compile_int8("searched", min_agreement=1.0, max_minutes=5)
    assert found.steps[0].num_layers == 0
    assert found.steps[0].fidelity.top1_agree < 9  # all int8: the poor calibration flips many
    assert found.met and not found.timed_out
    assert found.fidelity.top1_agree == 12 and found.fidelity.clear_flipped == 0
    counts = {s.num_groups: s.fidelity for s in found.steps}
    chosen = min(c for c, f in counts.items() if f.top1_agree == 12)
    assert chosen - 1 in counts  # the fewest blocks that meet the target
    assert 0 < len(found.recipe.keep_fp32) < 40
    # the metadata: fidelity in rt_info, the recipe beside the model
    assert read_fidelity(found.path) == found.fidelity
    recipe = Recipe.read(found.recipe_path)
    assert recipe == found.recipe and recipe.preset == "performance"
    # replaying the recipe gives the same model
    again = compile_int8("replayed", recipe=found.recipe_path)
    video = np.concatenate(validation.clips[:4])
    a = open_backend(found.path).run(video)
    b = open_backend(again.path).run(video)
    np.testing.assert_array_equal(a, b)
    assert again.fidelity == found.fidelity


@pytest.fixture(scope="module")
def search_parts(sensitive_onnx, clip_sets):
    """``search_recipe``'s arguments for the sensitive model and clip sets."""
    from slowfast_deploy.quantize.fidelity import compare_scores
    from slowfast_deploy.runtime.openvino_ir import load_onnx, to_openvino

    calibration, validation = clip_sets
    fp32 = to_openvino(load_onnx(sensitive_onnx))
    core = ov.Core()

    def scores(model, clips):
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return np.concatenate([compiled(c)[0] for c in clips])

    reference = scores(fp32, validation.clips)

    def evaluate(model, subset):
        index = list(range(len(validation))) if subset is None else list(subset)
        got = scores(model, [validation.clips[i] for i in index])
        return compare_scores(reference[index], got), got

    return fp32, calibration.clips, evaluate, reference


def test_search_stops_at_once_when_all_int8_meets_the_target(search_parts):
    from slowfast_deploy.quantize.search import Recipe, quantize_model, search_recipe

    fp32, calibration, evaluate, reference = search_parts
    base, _ = evaluate(quantize_model(fp32, calibration, Recipe(preset="performance")), None)
    result = search_recipe(
        fp32,
        calibration,
        evaluate,
        reference=reference,
        min_agreement=base.top1_agreement,
        base=Recipe(preset="performance"),
    )
    assert result.met and result.recipe.keep_fp32 == () and len(result.steps) == 1
    assert result.fidelity == base


def test_search_out_of_time_returns_the_best_model(search_parts):
    from slowfast_deploy.quantize.search import Recipe, search_recipe

    fp32, calibration, evaluate, reference = search_parts
    ticks = itertools.count(step=200.0)  # every look at the clock: 200 s later
    result = search_recipe(
        fp32,
        calibration,
        evaluate,
        reference=reference,
        min_agreement=1.0,
        max_minutes=10,  # 3 looks at the clock
        base=Recipe(preset="performance"),
        clock=lambda: float(next(ticks)),
    )
    assert result.timed_out and not result.met
    assert result.fidelity.top1_agree == max(s.fidelity.top1_agree for s in result.steps)
    assert len(result.steps) < 4


def test_recipe_json_errors_name_the_file(tmp_path):
    from slowfast_deploy.errors import DataFormatError
    from slowfast_deploy.quantize.search import Recipe

    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"version": 99}))
    with pytest.raises(DataFormatError, match=r"r\.json: not a quantization recipe"):
        Recipe.read(bad)
    with pytest.raises(ValueError, match="preset"):
        Recipe(preset="fast")

"""``compile --precision int8``: clips in, an int8 IR with its fidelity and recipe out.

Reads the calibration (and validation) clips, warns about weak clip sets, quantizes (replaying a
recipe, searching one to a target agreement, or plainly), measures the fidelity to the fp32
source, stores it and the recipe in the IR's ``rt_info`` and writes ``NAME.recipe.json``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy._files import write_text_atomic
from slowfast_deploy._optional import require
from slowfast_deploy.engine.decode import load_views
from slowfast_deploy.errors import DataFormatError
from slowfast_deploy.quantize.calibration import ClipSet, check_clip_sets, load_clip_set
from slowfast_deploy.quantize.fidelity import FIDELITY_KEY, Fidelity, compare_scores
from slowfast_deploy.quantize.search import (
    DEFAULT_CALIBRATION_SIZE,
    Recipe,
    SearchStep,
    quantize_model,
    search_recipe,
)
from slowfast_deploy.reference.formats import read_bin
from slowfast_deploy.runtime.base import OutputKind, to_probs
from slowfast_deploy.runtime.benchmark import bench_alternating
from slowfast_deploy.runtime.openvino_backend import check_precision
from slowfast_deploy.runtime.openvino_ir import save_ir, to_openvino

logger = logging.getLogger(__name__)

DEFAULT_VALIDATION_SIZE = 64
RECIPE_KEY = "int8_recipe"


@dataclass(frozen=True, slots=True)
class Int8Options:
    validation: str | os.PathLike[str] | ClipSet | None = None  # judged, never calibrated on
    validation_size: int = DEFAULT_VALIDATION_SIZE
    video_dir: str | os.PathLike[str] | None = None  # root of the videos of list files
    min_agreement: float | None = None  # None: no search, quantize everything
    max_minutes: float = 30.0  # the search's time budget
    recipe: str | os.PathLike[str] | Recipe | None = None  # replay this recipe
    preset: str = "mixed"
    fast_bias_correction: bool = True
    # how the layers left unquantized run: "fp32", or "bf16" on CPUs with bf16 (faster);
    # searched and judged that way, stored in the IR, and used by the backend
    kept_precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.recipe is not None and self.min_agreement is not None:
            raise ValueError(
                "min_agreement must not be given with a recipe, which replays a saved choice "
                "and does not search"
            )
        if self.min_agreement is None and self.validation is not None and self.recipe is None:
            # validation clips without a target: search for full agreement with fp32
            object.__setattr__(self, "min_agreement", 1.0)
        if self.min_agreement is not None and not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError(f"min_agreement must be in 0..1, got {self.min_agreement}")
        if self.validation_size < 1:
            raise ValueError(f"validation_size must be >= 1, got {self.validation_size}")
        if self.max_minutes <= 0:
            raise ValueError(f"max_minutes must be > 0, got {self.max_minutes}")
        if self.preset not in ("mixed", "performance"):
            raise ValueError(f"preset must be 'mixed' or 'performance', got {self.preset!r}")
        if self.kept_precision not in ("fp32", "bf16"):
            raise ValueError(
                f"kept_precision must be 'fp32' or 'bf16', got {self.kept_precision!r}"
            )


@dataclass
class Int8Outcome:
    path: Path
    recipe: Recipe
    recipe_path: Path
    fidelity: Fidelity
    in_sample: bool  # fidelity measured on the calibration clips
    warnings: list[str] = field(default_factory=list)
    met: bool | None = None  # searched: was the target agreement reached
    steps: list[SearchStep] = field(default_factory=list)
    timed_out: bool = False
    all_int8_ms: float | None = None  # latency of the fully int8 model (when layers are kept)
    kept_ms: float | None = None  # latency of the saved model, measured alternately with it


def _clips_of_recipe(recipe: Recipe, source: str) -> ClipSet:
    """Re-read the calibration clips a recipe names, checking they have not changed."""

    if not recipe.calibration:
        raise DataFormatError(f"{source}: the recipe names no calibration clips; add --calibration")
    clips = []
    for name in recipe.calibration:
        path = Path(name)
        if not path.is_file():
            raise DataFormatError(
                f"{source}: calibration clip {path} is missing; pass --calibration with the "
                "same clips"
            )
        is_bin = path.suffix == ".bin"
        clips.append(read_bin(path) if is_bin else load_views(path)[None].astype(np.float32))
    return ClipSet(source, recipe.calibration, clips)


def _as_clip_set(value: str | os.PathLike[str] | ClipSet, size: int, video_dir: Any) -> ClipSet:
    return value if isinstance(value, ClipSet) else load_clip_set(value, size, video_dir=video_dir)


KEPT_PRECISION_KEY = "int8_kept_precision"
KEPT_HINTS = {"fp32": "f32", "bf16": "bf16"}


def _compile(ov: Any, model: Any, threads: int | None, hint: str = "f32") -> Any:
    config: dict[str, str | int] = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return ov.Core().compile_model(model, "CPU", config)


def _scores(
    compiled: Any, clips: Sequence[NDArray[np.float32]], kind: OutputKind
) -> NDArray[np.float32]:

    dim = compiled.inputs[0].get_partial_shape()[0]
    batch = dim.get_length() if dim.is_static else 1
    request = compiled.create_infer_request()
    out = []
    for clip in clips:
        padded = np.concatenate([clip, np.zeros((batch - 1, *clip.shape[1:]), np.float32)])
        out.append(np.asarray(request.infer({0: padded})[compiled.outputs[0]])[:1])
    return to_probs(np.concatenate(out).astype(np.float32), kind)


def quantize_to_ir(
    proto: Any,
    meta: dict[str, str],
    output: Path,
    *,
    source: Path,
    calibration: str | os.PathLike[str] | ClipSet | None,
    calibration_size: int | None,
    options: Int8Options,
    threads: int | None = None,
) -> Int8Outcome:
    """The int8 IR of an ONNX model (``proto``), with its fidelity and recipe; see the module."""
    ov = require("openvino", extra="openvino", purpose="compile --precision int8")

    check_precision(ov.Core(), "CPU", "int8")
    if options.kept_precision not in KEPT_HINTS:
        raise ValueError(
            f"kept precision must be one of {', '.join(KEPT_HINTS)}, got {options.kept_precision!r}"
        )
    if options.kept_precision != "fp32":
        check_precision(ov.Core(), "CPU", options.kept_precision)
    hint = KEPT_HINTS[options.kept_precision]
    recipe = options.recipe
    if recipe is not None and not isinstance(recipe, Recipe):
        recipe = Recipe.read(recipe)
    if calibration is not None:
        clip_set = _as_clip_set(
            calibration, calibration_size or DEFAULT_CALIBRATION_SIZE, options.video_dir
        )
    elif recipe is not None:
        clip_set = _clips_of_recipe(recipe, str(options.recipe))
    else:
        raise ValueError(
            "int8 needs calibration clips: pass a directory of .bin files written by "
            "`slowfast-deploy preprocess` (--calibration DIR/bin) or an annotation list of videos"
        )
    digests = tuple(clip_set.digests())
    if recipe is not None and recipe.calibration_sha256 and recipe.calibration_sha256 != digests:
        raise DataFormatError(
            f"{options.recipe}: the calibration clips differ from the recipe's "
            f"({clip_set.describe()}); pass the clips the recipe names, in its order"
        )
    validation = (
        _as_clip_set(options.validation, options.validation_size, options.video_dir)
        if options.validation is not None
        else None
    )
    warnings = check_clip_sets(clip_set, validation)
    for text in warnings:
        logger.warning(text)
    judged = validation or clip_set
    fp32 = to_openvino(proto)
    stored = meta.get("output_kind")
    kind: OutputKind = (
        "probs" if stored == "probs" else "logits" if stored == "logits" else "unknown"
    )
    reference = _scores(_compile(ov, fp32, threads), judged.clips, kind)
    in_sample = validation is None
    description = judged.describe() + (" (in-sample: the calibration clips)" if in_sample else "")

    def evaluate(model: Any, subset: Sequence[int] | None) -> tuple[Fidelity, NDArray[np.float32]]:
        index = list(range(len(judged))) if subset is None else list(subset)
        scores = _scores(_compile(ov, model, threads, hint), [judged.clips[i] for i in index], kind)
        return compare_scores(reference[index], scores, clips=description), scores

    base = Recipe(
        preset=options.preset,
        fast_bias_correction=options.fast_bias_correction,
        calibration=clip_set.names,
        calibration_sha256=digests,
    )
    met: bool | None = None
    steps: list[SearchStep] = []
    timed_out = False
    all_int8 = None
    if recipe is not None:
        recipe = replace(recipe, calibration=clip_set.names, calibration_sha256=digests)
        model = quantize_model(fp32, clip_set.clips, recipe)
        fidelity, _ = evaluate(model, None)
    elif options.min_agreement is not None:
        result = search_recipe(
            fp32,
            clip_set.clips,
            evaluate,
            reference=reference,
            min_agreement=options.min_agreement,
            max_minutes=options.max_minutes,
            base=base,
        )
        recipe, model, fidelity = result.recipe, result.model, result.fidelity
        met, steps, timed_out = result.met, result.steps, result.timed_out
        all_int8 = result.all_int8
    else:
        recipe = base
        model = quantize_model(fp32, clip_set.clips, recipe)
        fidelity, _ = evaluate(model, None)
    timing: dict[str, float] = {}
    if recipe.keep_fp32:
        if all_int8 is None:
            all_int8 = quantize_model(fp32, clip_set.clips, replace(recipe, keep_fp32=()))
        timing = _speed_cost(ov, all_int8, clip_set.clips, model, threads, hint)
    recipe_json = recipe.to_json()
    path = save_ir(
        model,
        output,
        {
            **meta,
            "precision": "int8",
            FIDELITY_KEY: fidelity.to_json(),
            RECIPE_KEY: recipe_json,
            "int8_calibration": clip_set.describe(),
            KEPT_PRECISION_KEY: options.kept_precision,
        },
    )
    recipe_path = path.with_suffix(".recipe.json")
    write_text_atomic(recipe_path, recipe_json)
    logger.info("int8 fidelity vs fp32: %s", fidelity.summary())
    return Int8Outcome(
        path,
        recipe,
        recipe_path,
        fidelity,
        in_sample,
        warnings,
        met,
        steps,
        timed_out,
        timing.get("all_int8_ms"),
        timing.get("kept_ms"),
    )


def _infer_one(request: Any, video: NDArray[np.float32]) -> object:
    return request.infer({0: video})


def _speed_cost(
    ov: Any,
    all_int8: Any,
    clips: Sequence[NDArray[np.float32]],
    model: Any,
    threads: int | None,
    hint: str = "f32",
    loop: int = 3,
) -> dict[str, float]:
    """Latency of the fully int8 model and of ``model``, timed alternately on one clip."""

    runners: list[tuple[str, str, str, str, Callable[[NDArray[np.float32]], object]]] = []
    for label, m in (("all int8", all_int8), ("kept", model)):
        request = _compile(ov, m, threads, hint).create_infer_request()
        runners.append((label, "openvino", "int8", "CPU", partial(_infer_one, request)))
    clip = clips[0]
    rows = bench_alternating(
        runners,
        batchsizes=[clip.shape[0]],
        make_input=lambda n: clip,
        loop=loop,
        warmup=1,
        baseline=None,
    )
    return {"all_int8_ms": rows[0].latency.median_ms, "kept_ms": rows[1].latency.median_ms}


__all__ = ["DEFAULT_VALIDATION_SIZE", "Int8Options", "Int8Outcome", "quantize_to_ir"]

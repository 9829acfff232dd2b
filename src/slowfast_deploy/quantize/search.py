"""OpenVINO int8 post-training quantization (NNCF), with layers kept in fp32 on request.

A quantization is described by a ``Recipe``: NNCF settings, the calibration clips, and the
convolutions kept in fp32. ``quantize_with_recipe`` applies it: ``nncf.quantize`` on all the
calibration clips (min-max statistics over every clip: nothing is sampled at random), then the
kept convolutions get back their fp32 input (the activation quantizer is bypassed), their fp32
weights and their fp32 bias. So the same recipe and clips give the same model, bit for bit.

``search_recipe`` (``compile --min-agreement``) finds which layers to keep: it ranks residual
blocks (and the stems and laterals) by how much keeping each in fp32 brings the int8 scores
back to the fp32 model's, then keeps the highest-ranked ones, doubling then bisecting their
number, until the top-1 agreement with the fp32 model on the validation clips reaches the
target, within a time budget. That is the revert-and-rank idea of NNCF's
``quantize_with_accuracy_control``, with agreement with the fp32 model as the metric (no labels
needed), ranking per block instead of per operation, and a clock.

Settings (measured on the golden checkpoint):
- ``preset="mixed"`` (asymmetric activations): "performance" (symmetric) kept only 4 of 8
  golden top-1s; mixed keeps all 8.
- ``model_type=None``: the transformer preset does not apply to a 3-D CNN.
- ``IGNORED_TYPES``: the classifier and softmax stay f32 (cheap).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy._optional import require
from slowfast_deploy.errors import DataFormatError
from slowfast_deploy.quantize.fidelity import Fidelity

logger = logging.getLogger(__name__)

# Calibration clips used by `compile --precision int8` unless told otherwise.
DEFAULT_CALIBRATION_SIZE = 32
# Left in f32: the classifier (Gemm/MatMul) and the softmax.
IGNORED_TYPES = ("MatMul", "Softmax")
PRESETS = ("mixed", "performance")
RECIPE_VERSION = 1
# Clips the ranking runs on: the validation clips closest to flipping, at most this many.
RANKING_CLIPS = 4


@dataclass(frozen=True, slots=True)
class Recipe:
    """Everything that decides an int8 model, saved as JSON by ``compile``
    (``NAME.recipe.json``) and replayed with ``compile --recipe``."""

    preset: str = "mixed"  # nncf.QuantizationPreset
    fast_bias_correction: bool = True  # False: NNCF's full bias correction
    keep_fp32: tuple[str, ...] = ()  # Convolution node names kept in fp32
    calibration: tuple[str, ...] = ()  # the calibration clips (files), in order
    calibration_sha256: tuple[str, ...] = ()  # their values' sha256, checked on replay

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {PRESETS}, got {self.preset!r}")

    def to_json(self) -> str:
        data = {"version": RECIPE_VERSION, **asdict(self)}
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "recipe") -> Recipe:
        try:
            data = json.loads(text)
            if data.pop("version", None) != RECIPE_VERSION:
                raise ValueError(f"recipe version must be {RECIPE_VERSION}")
            fields: dict[str, Any] = {
                k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
            }
            return cls(**fields)
        except (ValueError, TypeError) as err:
            raise DataFormatError(
                f"{source}: not a quantization recipe ({err}); use the NAME.recipe.json that "
                "`slowfast-deploy compile --precision int8` wrote"
            ) from err

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Recipe:
        path = Path(path)
        if not path.is_file():
            raise DataFormatError(f"{path}: no such recipe (NAME.recipe.json from compile)")
        return cls.from_json(path.read_text(encoding="utf-8"), source=str(path))


def _batches(clips: Sequence[NDArray[np.float32]], batch: int | None) -> list[NDArray[np.float32]]:
    """Calibration items for a model whose batch axis is ``batch`` (``None``: dynamic)."""
    if not batch or batch == 1:
        return [np.ascontiguousarray(c, dtype=np.float32) for c in clips]
    if len(clips) < batch:
        raise ValueError(
            f"the model has a fixed batch of {batch} but only {len(clips)} calibration clips "
            "were given"
        )
    return [
        np.concatenate(clips[i : i + batch]).astype(np.float32)
        for i in range(0, len(clips) - batch + 1, batch)
    ]


def quantize_model(
    model: Any, calibration: Sequence[NDArray[np.float32]], recipe: Recipe | None = None
) -> Any:
    """``nncf.quantize`` an fp32 ``openvino.Model`` as ``recipe`` says (default: all int8).

    ``calibration`` holds preprocessed clips ``[1, 1, 3, 32, 224, 224]`` float32. ``model`` is
    left unchanged.
    """
    nncf = require("nncf", extra="int8", purpose="int8 quantization")
    recipe = recipe or Recipe()
    clips = list(calibration)
    if not clips:
        raise ValueError("int8 quantization needs at least one calibration clip")
    dim = model.inputs[0].get_partial_shape()[0]
    items = _batches(clips, dim.get_length() if dim.is_static else None)
    logger.info("calibrating int8 on %d clips (preset %s)", len(clips), recipe.preset)
    preset = {
        "mixed": nncf.QuantizationPreset.MIXED,
        "performance": nncf.QuantizationPreset.PERFORMANCE,
    }[recipe.preset]
    quantized = nncf.quantize(
        model.clone(),
        nncf.Dataset(items),
        preset=preset,
        model_type=None,
        subset_size=len(items),
        fast_bias_correction=recipe.fast_bias_correction,
        ignored_scope=nncf.IgnoredScope(types=list(IGNORED_TYPES)),
    )
    return keep_fp32(quantized, model, recipe.keep_fp32) if recipe.keep_fp32 else quantized


def conv_names(model: Any) -> list[str]:
    """The Convolution nodes of an ``openvino.Model``, in execution order."""
    return [op.get_friendly_name() for op in model.get_ordered_ops() if _is_conv(op)]


def _is_conv(op: Any) -> bool:
    return op.get_type_name() in ("Convolution", "GroupConvolution")


def _bias_add(conv: Any) -> Any | None:
    """The ``Add`` of a constant right after ``conv`` (its bias), if any."""
    for target in conv.output(0).get_target_inputs():
        node = target.get_node()
        if node.get_type_name() == "Add":
            other = node.input_value(1 - target.get_index()).get_node()
            if other.get_type_name() == "Constant":
                return node
    return None


def _producer_conv(output: Any, depth: int = 0) -> str | None:
    """The convolution an activation comes from, through bias adds, ReLUs, pooling, residual
    adds (first input that leads to one) and concatenations; ``None`` for the model input."""
    node = output.get_node()
    if _is_conv(node):
        return str(node.get_friendly_name())
    if depth > 8 or node.get_type_name() in ("Parameter", "Constant", "FakeQuantize"):
        return None
    for value in node.input_values():
        found = _producer_conv(value, depth + 1)
        if found is not None:
            return found
    return None


def keep_fp32(quantized: Any, fp32: Any, names: Sequence[str]) -> Any:
    """A copy of ``quantized`` whose convolutions ``names`` compute in fp32 again: their input
    quantizer is bypassed, their weights and bias are ``fp32``'s (undoing NNCF's weight
    rounding and bias correction), and so is every quantizer of an activation they produce
    (residual-add and lateral inputs included), so keeping every block gives the fp32 model."""
    ov = require("openvino", extra="openvino", purpose="int8 quantization")
    model = quantized.clone()
    wanted = set(names)
    source = {op.get_friendly_name(): op for op in fp32.get_ordered_ops() if _is_conv(op)}
    found = set()
    for op in model.get_ordered_ops():
        name = op.get_friendly_name()
        if name not in wanted or not _is_conv(op):
            continue
        if name not in source:
            raise ValueError(f"layer {name!r} is not a convolution of the fp32 model")
        found.add(name)
        activation = op.input_value(0)
        if activation.get_node().get_type_name() == "FakeQuantize":
            op.input(0).replace_source_output(activation.get_node().input_value(0))
        weights = source[name].input_value(1)
        op.input(1).replace_source_output(
            ov.opset13.constant(weights.get_node().get_data()).output(0)
            if weights.get_node().get_type_name() == "Constant"
            else weights
        )
        bias, fp32_bias = _bias_add(op), _bias_add(source[name])
        if bias is not None and fp32_bias is not None:
            for k in range(2):
                if bias.input_value(k).get_node().get_type_name() == "Constant":
                    data = fp32_bias.input_value(k).get_node().get_data()
                    bias.input(k).replace_source_output(ov.opset13.constant(data).output(0))
    for op in model.get_ordered_ops():
        if op.get_type_name() == "FakeQuantize" and _producer_conv(op.input_value(0)) in wanted:
            for target in list(op.output(0).get_target_inputs()):
                target.replace_source_output(op.input_value(0))
    missing = wanted - found
    if missing:
        raise ValueError(
            f"{len(missing)} layers to keep in fp32 are not in this model: "
            f"{', '.join(sorted(missing)[:3])}; the recipe was made for another model"
        )
    model.validate_nodes_and_infer_types()
    return model


_BLOCK = re.compile(r"^(.*?layer\d+[./_]\d+)")


def layer_groups(names: Sequence[str]) -> list[tuple[str, tuple[str, ...]]]:
    """Convolutions grouped by residual block (``...layerS.B``); stems, laterals and other
    convolutions are groups of their own. Execution order is kept."""
    groups: dict[str, list[str]] = {}
    for name in names:
        match = _BLOCK.match(name)
        groups.setdefault(match.group(1) if match else name, []).append(name)
    return [(key, tuple(members)) for key, members in groups.items()]


@dataclass(frozen=True, slots=True)
class SearchStep:
    num_groups: int  # highest-ranked groups kept in fp32
    num_layers: int  # convolutions kept in fp32
    fidelity: Fidelity
    elapsed_s: float


@dataclass
class SearchResult:
    recipe: Recipe
    model: Any  # the openvino.Model of ``recipe``
    fidelity: Fidelity
    met: bool  # the target agreement was reached
    ranking: list[tuple[str, float]]  # group, mean L1 score distance when kept in fp32
    steps: list[SearchStep] = field(default_factory=list)
    timed_out: bool = False
    all_int8: Any = None  # the model with nothing kept in fp32, for speed comparisons


def search_recipe(
    fp32_model: Any,
    calibration: Sequence[NDArray[np.float32]],
    evaluate: Callable[[Any, Sequence[int] | None], tuple[Fidelity, NDArray[np.float32]]],
    *,
    reference: NDArray[np.float32],
    min_agreement: float = 1.0,
    max_minutes: float = 30.0,
    base: Recipe | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    """Keep the fewest residual blocks in fp32 that bring top-1 agreement to ``min_agreement``.

    ``evaluate(model, subset)`` runs an ``openvino.Model`` on the validation clips (``subset``:
    their indices, ``None`` for all) and returns its ``Fidelity`` and softmax scores;
    ``reference`` are the fp32 scores of all validation clips. The search stops at the target
    or after ``max_minutes``; it then returns the best model seen (highest agreement, then
    fewest layers in fp32).
    """
    if not 0.0 <= min_agreement <= 1.0:
        raise ValueError(f"min agreement must be in [0, 1], got {min_agreement}")
    if max_minutes <= 0:
        raise ValueError(f"max minutes must be > 0, got {max_minutes}")
    start = clock()
    deadline = start + 60.0 * max_minutes
    base = replace(base or Recipe(), keep_fp32=())
    quantized = quantize_model(fp32_model, calibration, base)
    groups = layer_groups(conv_names(fp32_model))
    steps: list[SearchStep] = []
    models: dict[int, tuple[Fidelity, tuple[str, ...]]] = {}  # blocks kept -> result

    def judge(count: int, order: list[tuple[str, tuple[str, ...]]]) -> Fidelity:
        names = tuple(n for _, members in order[:count] for n in members)
        model = keep_fp32(quantized, fp32_model, names) if names else quantized
        fidelity, _ = evaluate(model, None)
        models[count] = (fidelity, names)
        steps.append(SearchStep(count, len(names), fidelity, clock() - start))
        logger.info("%d blocks (%d layers) in fp32: %s", count, len(names), fidelity.summary())
        return fidelity

    def done(fidelity: Fidelity) -> bool:
        return fidelity.top1_agreement >= min_agreement

    ranking: list[tuple[str, float]] = []
    base_fidelity, base_scores = evaluate(quantized, None)
    models[0] = (base_fidelity, ())
    steps.append(SearchStep(0, 0, base_fidelity, clock() - start))
    logger.info("all int8: %s", base_fidelity.summary())
    timed_out = False
    order = list(groups)
    if not done(base_fidelity):
        # rank on the clips closest to flipping: smallest lead of the reference top-1 in the
        # int8 scores (negative: already flipped)
        top1 = reference.argmax(1)
        lead = base_scores[np.arange(len(top1)), top1] - np.where(
            np.eye(reference.shape[1], dtype=bool)[top1], -np.inf, base_scores
        ).max(1)
        subset = [int(i) for i in np.argsort(lead)[:RANKING_CLIPS]]
        distance: dict[str, float] = {}
        for key, members in groups:
            if clock() > deadline:
                timed_out = True
                break
            _, scores = evaluate(keep_fp32(quantized, fp32_model, members), subset)
            distance[key] = float(np.abs(scores - reference[subset]).sum(1).mean())
            logger.debug("kept %s in fp32: mean L1 distance %.4f", key, distance[key])
        ranking = sorted(distance.items(), key=lambda kv: kv[1])
        rank_of = {key: k for k, (key, _) in enumerate(ranking)}
        order = sorted(groups, key=lambda g: rank_of.get(g[0], len(rank_of)))
        # double the number of blocks kept until the target is met, then bisect
        low, high, count = 0, None, 1
        while count <= len(order) and not timed_out:
            if clock() > deadline:
                timed_out = True
                break
            if done(judge(count, order)):
                high = count
                break
            low, count = count, min(2 * count, len(order)) if count < len(order) else count + 1
        while high is not None and high - low > 1:
            if clock() > deadline:
                timed_out = True
                break
            middle = (low + high) // 2
            if done(judge(middle, order)):
                high = middle
            else:
                low = middle
    met = [c for c, (fidelity, _) in models.items() if done(fidelity)]
    count = min(met) if met else max(models, key=lambda c: (models[c][0].top1_agree, -c))
    fidelity, names = models[count]
    return SearchResult(
        replace(base, keep_fp32=names),
        keep_fp32(quantized, fp32_model, names) if names else quantized,
        fidelity,
        bool(met),
        ranking,
        steps,
        timed_out,
        quantized,
    )


__all__ = [
    "DEFAULT_CALIBRATION_SIZE",
    "PRESETS",
    "Recipe",
    "SearchResult",
    "SearchStep",
    "conv_names",
    "keep_fp32",
    "layer_groups",
    "quantize_model",
    "search_recipe",
]

"""The guide's compile step (its ATC) for commodity runtimes.

- ``openvino``: OpenVINO IR (``NAME.xml`` + ``NAME.bin``) with the inference precision and,
  optionally, a static batch size stored in the IR (``rt_info`` ``slowfast_deploy``).
  ``--precision int8`` quantizes with NNCF on calibration clips (``export/int8.py``), optionally
  searching for the layers to keep in fp32 until a target agreement with fp32 is met.
- ``onnxruntime``: an ONNX file with ORT's full graph optimizations applied offline (fused
  Conv+BN+ReLU for the CPU provider) and, optionally, a static batch size.
- ``torch`` (from a ``.pth`` checkpoint, not ONNX): an AOTInductor ``.pt2``, ``export/aot.py``.

A uint8-input ONNX (``export --input-dtype uint8``) compiles to a uint8-input IR or ONNX: the
normalisation stays inside the graph.

Each compiled model is checked against the source ONNX on real input before it is kept.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from slowfast_deploy._optional import require
from slowfast_deploy.errors import BackendUnavailableError
from slowfast_deploy.export.onnx import sample_input
from slowfast_deploy.export.validate import OutputCheck, ParityReport, compare_outputs
from slowfast_deploy.quantize.calibration import ClipSet
from slowfast_deploy.quantize.int8 import Int8Options, Int8Outcome, quantize_to_ir
from slowfast_deploy.runtime import open_backend
from slowfast_deploy.runtime.base import PARITY_ATOL, run_batched, to_probs
from slowfast_deploy.runtime.openvino_backend import check_precision
from slowfast_deploy.runtime.openvino_ir import load_onnx, onnx_metadata, save_ir, to_openvino
from slowfast_deploy.runtime.ort_backend import session_options

if TYPE_CHECKING:  # for annotations only: onnx loads when used
    from onnx import ModelProto

logger = logging.getLogger(__name__)

COMPILE_BACKENDS = ("openvino", "onnxruntime")


@dataclass(frozen=True, slots=True)
class CompileResult:
    path: Path
    backend: str
    precision: str
    batchsize: int | None
    parity: ParityReport
    top1_agree: bool
    int8: Int8Outcome | None = None  # int8 only: fidelity, recipe, search, warnings


def _static_batch(proto: ModelProto, batchsize: int) -> None:
    for value in (*proto.graph.input, *proto.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_param")
        dim.dim_value = batchsize


def compile_model(
    onnx_path: str | os.PathLike[str],
    *,
    backend: str,
    output: str | os.PathLike[str],
    precision: str = "fp32",
    batchsize: int | None = None,
    threads: int | None = None,
    calibration: str | os.PathLike[str] | ClipSet | None = None,
    calibration_size: int | None = None,
    int8: Int8Options | None = None,
) -> CompileResult:
    """Compile ``onnx_path`` for ``backend``; returns the model path and its parity report.

    ``precision="int8"`` (openvino only) needs ``calibration``: a directory of ``.bin`` clips
    written by ``slowfast-deploy preprocess`` or an annotation list of videos (or a recipe in
    ``int8`` naming its clips), of which ``calibration_size`` are used, evenly spread. ``int8``
    adds validation clips, a target agreement with a time budget, or a recipe to replay; the
    int8 model's fidelity to the fp32 source is stored in its metadata.
    """
    onnx_path = Path(onnx_path)
    if backend not in COMPILE_BACKENDS:
        raise BackendUnavailableError(f"compile backend must be one of {COMPILE_BACKENDS}")
    if batchsize is not None and batchsize < 1:
        raise ValueError(f"batchsize must be >= 1, got {batchsize}")
    proto = load_onnx(onnx_path)
    meta = onnx_metadata(proto)
    if batchsize:
        _static_batch(proto, batchsize)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    outcome = None
    if precision == "int8" and meta.get("input_dtype") == "uint8":
        raise BackendUnavailableError(
            f"{onnx_path} takes uint8 input; int8 calibration feeds float clips: quantize "
            "the float export (without --input-dtype uint8)"
        )
    if precision == "int8" and backend == "openvino":
        outcome = quantize_to_ir(
            proto,
            meta,
            output,
            source=onnx_path,
            calibration=calibration,
            calibration_size=calibration_size,
            options=int8 or Int8Options(),
            threads=threads,
        )
        path = outcome.path
    elif backend == "openvino":
        path = _compile_openvino(proto, meta, output, precision)
    else:
        if precision != "fp32":
            raise BackendUnavailableError(
                f"onnxruntime compiles fp32 only here, not {precision!r}; use --backend openvino"
            )
        path = _compile_onnxruntime(proto, output, threads)
    parity, agree = check_compiled(
        onnx_path, path, precision=precision, batchsize=batchsize, threads=threads
    )
    return CompileResult(path, backend, precision, batchsize, parity, agree, outcome)


def _compile_openvino(
    proto: ModelProto, meta: dict[str, str], output: Path, precision: str
) -> Path:
    ov = require("openvino", extra="openvino", purpose="compile --backend openvino")

    check_precision(ov.Core(), "CPU", precision)
    return save_ir(to_openvino(proto), output, {**meta, "precision": precision})


def _compile_onnxruntime(proto: ModelProto, output: Path, threads: int | None) -> Path:
    ort = require("onnxruntime", extra="onnx", purpose="compile --backend onnxruntime")
    onnx = require("onnx", extra="onnx", purpose="compile")

    target = output.with_suffix(".onnx")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "model.onnx"
        onnx.save(proto, str(src))
        opts = session_options(ort, threads)
        opts.optimized_model_filepath = str(target)
        ort.InferenceSession(str(src), sess_options=opts, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(target))
    del optimized.metadata_props[:]
    for prop in proto.metadata_props:
        optimized.metadata_props.add(key=prop.key, value=prop.value)
    optimized.metadata_props.add(key="compiled_for", value="onnxruntime CPUExecutionProvider")
    onnx.save(optimized, str(target))
    return target


def check_compiled(
    source: Path, compiled: Path, *, precision: str, batchsize: int | None, threads: int | None
) -> tuple[ParityReport, bool]:
    """Compare ``compiled`` with ``source`` under ONNX Runtime fp32 on real input.

    fp32 must agree within the fp32 tolerance (else ``ParityError``); reduced precision is
    only reported (max |diff|, top-1 agreement): it cannot meet fp32 tolerances by design, and
    the sample clip's top-1 may flip under int8 when its top-2 scores are close.
    """

    reference = open_backend(source, backend="onnxruntime", threads=threads)
    video = sample_input(batchsize or 1, reference.input_dtype)  # a uint8 source stays uint8
    expected = to_probs(run_batched(reference, video), reference.output_kind)
    candidate = open_backend(compiled, threads=threads)
    got = to_probs(run_batched(candidate, video), candidate.output_kind)
    agree = bool((expected.argmax(-1) == got.argmax(-1)).all())
    atol = PARITY_ATOL.get((candidate.info.name, precision), None)
    if atol is None:  # reduced precision: report only, a flipped near-tie top-1 included
        diff = float(np.abs(expected - got).max())
        report = ParityReport(
            [OutputCheck("class", expected.shape, got.shape, diff, float("inf"), agree)]
        )
    else:
        report = compare_outputs(
            {"class": expected}, {"class": got}, atol=atol, source=str(compiled)
        )
    logger.info(
        "compiled %s: max |diff| %.3g vs source, top-1 %s",
        compiled,
        report.max_abs_diff,
        "agrees" if agree else "differs",
    )
    return report, agree


__all__ = ["COMPILE_BACKENDS", "CompileResult", "Int8Options", "compile_model"]

"""The guide's compile step (its ATC) for commodity runtimes.

- ``openvino``: OpenVINO IR (``NAME.xml`` + ``NAME.bin``) with the inference precision and,
  optionally, a static batch size stored in the IR (``rt_info`` ``slowfast_deploy``).
  ``--precision int8`` quantizes with NNCF on calibration clips (``export/quantize.py``).
- ``onnxruntime``: an ONNX file with ORT's full graph optimizations applied offline (fused
  Conv+BN+ReLU for the CPU provider) and, optionally, a static batch size.

Each compiled model is checked against the source ONNX on real input before it is kept.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy._optional import require
from slowfast_deploy.errors import BackendUnavailableError, ModelFormatError
from slowfast_deploy.export.validate import OutputCheck, ParityReport, compare_outputs

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


def _static_batch(proto: object, batchsize: int) -> None:
    for value in (*proto.graph.input, *proto.graph.output):  # type: ignore[attr-defined]
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
    calibration: str | os.PathLike[str] | None = None,
    calibration_size: int | None = None,
) -> CompileResult:
    """Compile ``onnx_path`` for ``backend``; returns the model path and its parity report.

    ``precision="int8"`` (openvino only) needs ``calibration``: a directory of ``.bin`` clips
    written by ``slowfast-deploy preprocess``, of which ``calibration_size`` are used.
    """
    onnx_path = Path(onnx_path)
    if backend not in COMPILE_BACKENDS:
        raise BackendUnavailableError(f"compile backend must be one of {COMPILE_BACKENDS}")
    if batchsize is not None and batchsize < 1:
        raise ValueError(f"batchsize must be >= 1, got {batchsize}")
    proto = _load_onnx(onnx_path)
    clips = None
    if precision == "int8" and backend == "openvino":
        if calibration is None:
            raise ValueError(
                "int8 needs calibration clips: pass a directory of .bin files written by "
                "`slowfast-deploy preprocess` (--calibration DIR/bin)"
            )
        from slowfast_deploy.export.quantize import DEFAULT_CALIBRATION_SIZE, load_calibration

        clips = load_calibration(calibration, calibration_size or DEFAULT_CALIBRATION_SIZE)
    meta = {p.key: p.value for p in proto.metadata_props}
    if batchsize:
        _static_batch(proto, batchsize)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if backend == "openvino":
        path = _compile_openvino(proto, meta, output, precision, clips)
    else:
        if precision != "fp32":
            raise BackendUnavailableError(
                f"onnxruntime compiles fp32 only here, not {precision!r}; use --backend openvino"
            )
        path = _compile_onnxruntime(proto, output, threads)
    parity, agree = check_compiled(
        onnx_path, path, precision=precision, batchsize=batchsize, threads=threads
    )
    return CompileResult(path, backend, precision, batchsize, parity, agree)


def _load_onnx(onnx_path: Path) -> object:
    onnx = require("onnx", extra="onnx", purpose="compile")
    if onnx_path.suffix.lower() != ".onnx" or not onnx_path.is_file():
        raise ModelFormatError(f"{onnx_path}: compile takes an exported .onnx file")
    try:
        return onnx.load(str(onnx_path))
    except Exception as err:  # onnx raises DecodeError and friends
        raise ModelFormatError(f"{onnx_path}: not a readable ONNX file ({err})") from err


def _compile_openvino(
    proto: object,
    meta: dict[str, str],
    output: Path,
    precision: str,
    calibration: list[NDArray[np.float32]] | None = None,
) -> Path:
    ov = require("openvino", extra="openvino", purpose="compile --backend openvino")
    from slowfast_deploy.runtime.openvino_backend import check_precision

    check_precision(ov.Core(), "CPU", precision)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "model.onnx"
        require("onnx", extra="onnx", purpose="compile").save(proto, str(src))
        model = ov.convert_model(str(src))
    if precision == "int8":
        from slowfast_deploy.export.quantize import quantize_model

        model = quantize_model(model, calibration or [])
    for key, value in {**meta, "precision": precision}.items():
        model.set_rt_info(value, ["slowfast_deploy", key])
    xml = output.with_suffix(".xml")
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml


def _compile_onnxruntime(proto: object, output: Path, threads: int | None) -> Path:
    ort = require("onnxruntime", extra="onnx", purpose="compile --backend onnxruntime")
    onnx = require("onnx", extra="onnx", purpose="compile")
    from slowfast_deploy.runtime.ort_backend import session_options

    target = output.with_suffix(".onnx")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "model.onnx"
        onnx.save(proto, str(src))
        opts = session_options(ort, threads)
        opts.optimized_model_filepath = str(target)
        ort.InferenceSession(str(src), sess_options=opts, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(target))
    del optimized.metadata_props[:]
    for prop in proto.metadata_props:  # type: ignore[attr-defined]
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
    from slowfast_deploy.export.onnx import sample_input
    from slowfast_deploy.runtime import open_backend
    from slowfast_deploy.runtime.base import PARITY_ATOL, run_batched, to_probs

    video = sample_input(batchsize or 1)
    reference = open_backend(source, backend="onnxruntime", threads=threads)
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


__all__ = ["COMPILE_BACKENDS", "CompileResult", "compile_model"]

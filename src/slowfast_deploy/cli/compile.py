"""``slowfast-deploy compile``: ONNX -> a model compiled for a runtime (the guide's ATC step)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slowfast_deploy.cli._types import positive_int


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compile",
        help="compile an exported ONNX model for OpenVINO (IR) or ONNX Runtime (optimized ONNX)",
    )
    p.add_argument("onnx", type=Path, help="exported .onnx file")
    p.add_argument("--backend", choices=("openvino", "onnxruntime"), required=True)
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16", "int8"),
        default="fp32",
        help="int8: OpenVINO post-training quantization; needs --calibration",
    )
    p.add_argument(
        "--batchsize",
        type=positive_int,
        default=None,
        help="fix the batch size (default: keep it dynamic)",
    )
    p.add_argument(
        "--output",
        type=Path,
        required=True,
        help="output name; .xml/.bin (openvino) or .onnx (onnxruntime) is added",
    )
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument(
        "--calibration",
        type=Path,
        default=None,
        help="int8: directory of .bin clips from `slowfast-deploy preprocess` "
        "(SAVE_DIR/bin); use clips you do not evaluate on",
    )
    p.add_argument(
        "--calibration-size",
        "--calibration_size",
        type=positive_int,
        default=None,
        help="int8: number of calibration clips, spread over the directory "
        "(default 32, or all if fewer)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from slowfast_deploy.cli import note
    from slowfast_deploy.export.compile import compile_model

    result = compile_model(
        args.onnx,
        backend=args.backend,
        output=args.output,
        precision=args.precision,
        batchsize=args.batchsize,
        threads=args.threads,
        calibration=args.calibration,
        calibration_size=args.calibration_size,
    )
    note(
        args,
        f"compiled {result.path} ({result.backend}, {result.precision}, batch "
        f"{result.batchsize or 'dynamic'}); vs source ONNX: max |diff| "
        f"{result.parity.max_abs_diff:.3g}, top-1 {'agrees' if result.top1_agree else 'DIFFERS'}",
    )
    return 0

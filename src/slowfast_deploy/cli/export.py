"""``slowfast-deploy export``: mmaction2 checkpoint -> ONNX (guide steps 2 and 3)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slowfast_deploy.cli._model_args import add_spec_arg
from slowfast_deploy.cli._status import note
from slowfast_deploy.export.onnx import export_onnx
from slowfast_deploy.specs import MODEL_SPECS


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX (video [N,1,3,32,224,224] -> class [N,400])",
        description="Exports, optionally simplifies (onnxslim), embeds metadata, and validates "
        "the file against PyTorch on real input; fails beyond tolerance.",
    )
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--output-file", "--output_file", type=Path, required=True)
    p.add_argument("--softmax", action="store_true", help="append softmax (the guide's export)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--simplify", action="store_true", help="simplify the graph with onnxslim")
    p.add_argument(
        "--dynamic-hw",
        "--dynamic_hw",
        action="store_true",
        help="also make H and W dynamic (needed for --views 30's 256x256 crops)",
    )
    p.add_argument(
        "--input-dtype",
        "--input_dtype",
        choices=("float32", "uint8"),
        default="float32",
        help="uint8: the input is RGB crops 0-255 and mean/std normalisation is in the graph "
        "(4x fewer bytes per clip; every command feeds it bytes); default float32, the "
        "reference contract",
    )
    add_spec_arg(p)
    p.add_argument("--config", help="accepted for compatibility with the reference; ignored")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    result = export_onnx(
        args.checkpoint,
        args.output_file,
        softmax=args.softmax,
        opset=args.opset,
        simplify=args.simplify,
        dynamic_hw=args.dynamic_hw,
        spec=MODEL_SPECS[args.spec],
        input_dtype=args.input_dtype,
    )
    note(
        args,
        f"exported {result.path} (opset {args.opset}"
        + (f", simplified with {result.simplified_with}" if result.simplified_with else "")
        + f"); validated against PyTorch: {result.parity.describe()}",
    )
    return 0

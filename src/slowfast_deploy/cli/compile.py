"""``slowfast-deploy compile``: ONNX -> a model compiled for a runtime (the guide's ATC step)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slowfast_deploy.cli._model_args import add_spec_arg
from slowfast_deploy.cli._status import ExitStatus, UsageError, note
from slowfast_deploy.cli._types import positive_int
from slowfast_deploy.export.aot import compile_torch
from slowfast_deploy.export.compile import Int8Options, compile_model
from slowfast_deploy.quantize.search import layer_groups
from slowfast_deploy.specs import MODEL_SPECS


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compile",
        help="compile an exported ONNX model for OpenVINO (IR) or ONNX Runtime (optimized "
        "ONNX), or a checkpoint for PyTorch (AOTInductor .pt2)",
    )
    p.add_argument(
        "onnx", type=Path, help="exported .onnx file; a .pth checkpoint with --backend torch"
    )
    p.add_argument("--backend", choices=("openvino", "onnxruntime", "torch"), required=True)
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
    t = p.add_argument_group("torch (.pth -> AOTInductor .pt2)")
    t.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="the device the .pt2 runs on (its machine code is for this device only)",
    )
    t.add_argument("--softmax", action="store_true", help="append softmax, as export --softmax")
    t.add_argument(
        "--input-dtype",
        "--input_dtype",
        choices=("float32", "uint8"),
        default="float32",
        help="uint8: RGB crops in, mean/std normalisation in the graph (as export --input-dtype)",
    )
    t.add_argument(
        "--dynamic-hw",
        "--dynamic_hw",
        action="store_true",
        help="also make H and W dynamic (needed for --views 30's 256x256 crops)",
    )
    add_spec_arg(t)
    g = p.add_argument_group("int8 (OpenVINO, NNCF)")
    g.add_argument(
        "--calibration",
        type=Path,
        default=None,
        help="directory of .bin clips from `slowfast-deploy preprocess` (SAVE_DIR/bin), or an "
        "annotation list of videos; clips of your own data that you do not evaluate on "
        "('generated-samples': generated sample videos, for the demo only)",
    )
    g.add_argument(
        "--calibration-size",
        "--calibration_size",
        type=positive_int,
        default=None,
        help="number of calibration clips, evenly spread (default 32, or all if fewer)",
    )
    g.add_argument(
        "--validation",
        type=Path,
        default=None,
        help="clips (.bin directory or video list) on which agreement with the fp32 model is "
        "judged; default: the calibration clips (in-sample, a warning says so)",
    )
    g.add_argument(
        "--validation-size",
        type=positive_int,
        default=64,
        help="number of validation clips, evenly spread (default 64)",
    )
    g.add_argument(
        "--video-dir",
        type=Path,
        default=None,
        help="root of the videos of --calibration/--validation lists (default: the list's folder)",
    )
    g.add_argument(
        "--min-agreement",
        type=agreement,
        default=None,
        metavar="A",
        help="search for the layers to keep in fp32 until the top-1 agreement with the fp32 "
        "model on the validation clips is at least A (0-1; default 1.0 with --validation, no "
        "search without); exit 3 if not met in time",
    )
    g.add_argument(
        "--max-minutes",
        type=positive_float,
        default=30.0,
        help="time budget of the --min-agreement search (default 30)",
    )
    g.add_argument(
        "--recipe",
        type=Path,
        default=None,
        help="replay a NAME.recipe.json written by an earlier int8 compile (same clips, same "
        "layers in fp32: the same model)",
    )
    g.add_argument("--preset", choices=("mixed", "performance"), default="mixed")
    g.add_argument(
        "--full-bias-correction",
        action="store_true",
        help="NNCF's full bias correction instead of the fast one (slower to compile)",
    )
    g.add_argument(
        "--kept-precision",
        "--kept_precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="how the layers left unquantized run: fp32 (default), or bf16 on a CPU with bf16 "
        "(faster); the search and the fidelity figures use it, and the IR records it",
    )
    p.set_defaults(run=run)


def agreement(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def run_torch(args: argparse.Namespace) -> int:
    """``compile X.pth --backend torch``: an AOTInductor package."""
    if args.precision not in ("fp32", "bf16", "fp16") or args.batchsize or args.calibration:
        raise UsageError(
            "--backend torch compiles fp32, bf16 (or fp16 on CUDA) with a dynamic batch; "
            "--batchsize and int8 options are for openvino/onnxruntime"
        )
    result = compile_torch(
        args.onnx,
        args.output,
        precision=args.precision,
        device=args.device,
        softmax=args.softmax,
        input_dtype=args.input_dtype,
        spec=MODEL_SPECS[args.spec],
        threads=args.threads,
        dynamic_hw=args.dynamic_hw,
    )
    note(
        args,
        f"compiled {result.path} (torch AOTInductor, {result.precision}, {result.device}, "
        f"{result.input_dtype} input, batch dynamic) in {result.compile_s:.0f} s; vs eager fp32: "
        f"max |diff| {result.parity.max_abs_diff:.3g}, "
        f"top-1 {'agrees' if result.top1_agree else 'DIFFERS'}",
    )
    return ExitStatus.OK


def run(args: argparse.Namespace) -> int:
    if args.backend == "torch":
        return run_torch(args)
    if args.device != "cpu" or args.softmax or args.input_dtype != "float32" or args.dynamic_hw:
        raise UsageError(
            "--device, --softmax, --input-dtype and --dynamic-hw are for --backend torch; an "
            "ONNX file carries its own (export with --softmax/--input-dtype uint8/--dynamic-hw)"
        )
    int8_only = (args.validation, args.min_agreement, args.recipe, args.full_bias_correction)
    if args.precision != "int8" and (
        any(v not in (None, False) for v in int8_only) or args.kept_precision != "fp32"
    ):
        raise UsageError(
            "--validation, --min-agreement, --recipe, --full-bias-correction and "
            "--kept-precision need --precision int8"
        )
    int8 = Int8Options(  # its defaults and checks are the library's
        validation=args.validation,
        validation_size=args.validation_size,
        video_dir=args.video_dir,
        min_agreement=args.min_agreement,
        max_minutes=args.max_minutes,
        recipe=args.recipe,
        preset=args.preset,
        fast_bias_correction=not args.full_bias_correction,
        kept_precision=args.kept_precision,
    )
    min_agreement = int8.min_agreement
    result = compile_model(
        args.onnx,
        backend=args.backend,
        output=args.output,
        precision=args.precision,
        batchsize=args.batchsize,
        threads=args.threads,
        calibration=args.calibration,
        calibration_size=args.calibration_size,
        int8=int8,
    )
    note(
        args,
        f"compiled {result.path} ({result.backend}, {result.precision}, batch "
        f"{result.batchsize or 'dynamic'}); vs source ONNX: max |diff| "
        f"{result.parity.max_abs_diff:.3g}, top-1 {'agrees' if result.top1_agree else 'DIFFERS'}",
    )
    outcome = result.int8
    if outcome is None:
        return ExitStatus.OK
    note(args, f"int8 fidelity vs fp32: {outcome.fidelity.summary()}")
    kept = outcome.recipe.keep_fp32
    if kept:
        cost = ""
        if outcome.all_int8_ms and outcome.kept_ms:
            cost = (
                f"; speed cost: {outcome.kept_ms:.0f} ms vs {outcome.all_int8_ms:.0f} ms per call "
                f"all-int8 ({outcome.kept_ms / outcome.all_int8_ms - 1:+.0%}, 3 alternating calls)"
            )

        blocks = [key.rsplit("/", 1)[-1] for key, _ in layer_groups(kept)]
        shown = ", ".join(blocks[:8]) + (f" and {len(blocks) - 8} more" if len(blocks) > 8 else "")
        note(
            args, f"kept in fp32: {len(kept)} convolutions in {len(blocks)} blocks ({shown}){cost}"
        )
    note(args, f"recipe: {outcome.recipe_path} (replay with --recipe)")
    if outcome.met is False:
        why = "the time budget ran out" if outcome.timed_out else "keeping every block did not"
        note(
            args,
            f"target agreement {min_agreement} NOT met ({why}); saved the best model found "
            f"({outcome.fidelity.top1_agreement:.3f})",
        )
        return ExitStatus.SOME_FAILED
    return ExitStatus.OK

"""``slowfast-deploy fidelity``: how far an existing reduced-precision model drifts from fp32."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from slowfast_deploy.cli._status import note
from slowfast_deploy.cli._types import positive_int
from slowfast_deploy.quantize.calibration import check_clip_sets, load_clip_set
from slowfast_deploy.quantize.fidelity import check_fidelity, write_fidelity


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fidelity",
        help="compare a model (e.g. an int8 IR) with its fp32 source on clips, without labels",
        description="Top-1 and top-5-set agreement, max and mean score difference and "
        "clear-margin flips (reference top-1 ahead by > 0.05) of MODEL against SOURCE on the "
        "clips. --write stores the figures in an OpenVINO IR, where bench and report show them.",
    )
    p.add_argument("model", type=Path, help="the model to judge (.xml, .onnx)")
    p.add_argument("--source", type=Path, required=True, help="its fp32 source (.onnx, .pth)")
    p.add_argument(
        "--clips",
        type=Path,
        required=True,
        help="directory of .bin clips from `slowfast-deploy preprocess`, or an annotation list "
        "of videos; not the clips the model was calibrated on",
    )
    p.add_argument("--size", type=positive_int, default=64, help="clips used, evenly spread")
    p.add_argument("--video-dir", type=Path, default=None, help="root of a list's videos")
    p.add_argument(
        "--calibration",
        type=Path,
        default=None,
        help="the model's calibration clips, to warn if --clips overlap them",
    )
    p.add_argument("--write", action="store_true", help="store the figures in the IR's metadata")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--threads", type=positive_int, default=None)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    clips = load_clip_set(args.clips, args.size, video_dir=args.video_dir)
    if args.calibration is not None:
        calibration = load_clip_set(args.calibration, 10**9, video_dir=args.video_dir)
        for text in check_clip_sets(calibration, clips):
            if "validation" in text:
                note(args, f"warning: {text}")
    fidelity = check_fidelity(
        args.model, args.source, clips.clips, description=clips.describe(), threads=args.threads
    )
    if args.format == "json":
        print(json.dumps({"model": str(args.model), **json.loads(fidelity.to_json())}))
    else:
        print(f"{args.model} vs {args.source}: {fidelity.summary()}")
    if args.write:
        write_fidelity(args.model, fidelity)
        note(args, f"stored in {args.model}")
    return 0

"""``slowfast-deploy infer``: ``.bin`` files -> result files (the reference's inference step)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from slowfast_deploy._files import write_text_atomic
from slowfast_deploy.cli._model_args import add_model_args, open_model
from slowfast_deploy.cli._progress import progress
from slowfast_deploy.cli._status import UsageError, note
from slowfast_deploy.cli._types import positive_int
from slowfast_deploy.reference.formats import list_bins
from slowfast_deploy.reference.offline import infer_bins, pending_bins
from slowfast_deploy.runtime.benchmark import LatencyStats, reference_lines, throughput


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "infer",
        help="run a model over preprocessed .bin files, writing one result file per input",
        description="Writes OUTPUT/NAME/{stem}_0.{txt,npy,bin} per input .bin and "
        "OUTPUT/NAME_summary.json. Every .bin is size-checked before anything runs.",
    )
    add_model_args(p)
    p.add_argument("--input", type=Path, required=True, help="directory of .bin files")
    p.add_argument("--output", type=Path, required=True, help="parent directory of the results")
    p.add_argument(
        "--output-dirname",
        "--output_dirname",
        default="result",
        help="sub-directory of --output for the result files",
    )
    p.add_argument("--outfmt", choices=("TXT", "NPY", "BIN"), default="BIN")
    p.add_argument("--batchsize", type=positive_int, default=1, help=".bin files per model call")
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip inputs whose result file already exists (after an interruption)",
    )
    p.add_argument(
        "--logits", action="store_true", help=".pth models: write logits instead of softmax scores"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    bins = list_bins(args.input)
    out_dir = args.output / args.output_dirname
    if args.resume:
        todo = pending_bins(bins, out_dir, args.outfmt)
        note(args, f"resuming: {len(bins) - len(todo)} results already in {out_dir}")
        bins = todo
        if not bins:
            return 0
    backend = open_model(args, softmax=not args.logits)
    if args.logits and backend.output_kind != "logits":
        raise UsageError(
            f"--logits applies to .pth checkpoints; {args.model} outputs {backend.output_kind} "
            "(export without --softmax for a logits model)"
        )
    batches = infer_bins(
        backend, bins, out_dir=out_dir, outfmt=args.outfmt, batchsize=args.batchsize
    )
    times = []
    total = -(-len(bins) // args.batchsize)
    bar = progress(batches, total=total, desc="infer", quiet=args.quiet, unit="batch")
    try:
        for outcome in bar:
            times.append(outcome.compute_ms)
    finally:
        bar.close()
    backend.close()
    stats = LatencyStats.from_ms(times)
    summary = {
        "model": str(args.model),
        "backend": backend.info.name,
        "provider": backend.info.provider,
        "precision": backend.info.precision,
        "batchsize": args.batchsize,
        "num_inputs": len(bins),
        "output_kind": backend.output_kind,
        "compute_time_ms": stats.to_dict(),
        "throughput": throughput(args.batchsize, stats),
    }
    summary_path = args.output / f"{args.output_dirname}_summary.json"
    write_text_atomic(summary_path, json.dumps(summary, indent=2) + "\n")
    sys.stdout.write(reference_lines(stats, args.batchsize))
    note(args, f"[INFO] wrote {len(bins)} results to {out_dir} and {summary_path}")
    return 0

"""``slowfast-deploy evaluate``: accuracy from result files (reference step 7)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="top-1/top-5 accuracy from result files and a kinetics400.info label file",
        description="Prints top1_acc / top5_acc (and mean class accuracy) as the reference "
        "postprocess does. Every index in the label file needs a result file.",
    )
    p.add_argument("--result-dir", "--result_dir", type=Path, required=True)
    p.add_argument("--label-file", "--label_file", type=Path, required=True)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from slowfast_deploy.offline import evaluate_results

    acc = evaluate_results(args.result_dir, args.label_file)
    if args.format == "json":
        print(json.dumps(acc.to_dict()))
    else:
        print("Evaluating top_k_accuracy ...\n", file=sys.stderr)
        sys.stdout.write(acc.lines())
    return 0

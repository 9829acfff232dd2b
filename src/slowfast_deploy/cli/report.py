"""``slowfast-deploy report``: accuracy tables and pictures from evaluation results."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slowfast_deploy.cli._status import note
from slowfast_deploy.evaluation.report import write_report
from slowfast_deploy.labels import load_labels


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="HTML/Markdown report: accuracy, per-class accuracy, confusions, plots",
    )
    p.add_argument(
        "results",
        nargs="+",
        type=Path,
        metavar="RESULTS",
        help="JSON Lines files from `evaluate --output`",
    )
    p.add_argument("--out", type=Path, default=Path("report.html"), help="report.html or .md")
    p.add_argument(
        "--bench",
        nargs="*",
        type=Path,
        default=[],
        help="bench summaries (`bench --summary`) for a throughput plot",
    )
    p.add_argument(
        "--label-map",
        "--label_map",
        type=Path,
        help="class names, one per line (default: the shipped Kinetics-400 names for "
        "400-class results)",
    )
    p.add_argument(
        "--no-names", action="store_true", help="show class indices only, no default names"
    )
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        help="the model that made the results: its file name and fidelity to fp32 go in the "
        "header (its sha256 is checked against the results)",
    )
    p.add_argument(
        "--curve",
        type=Path,
        default=None,
        help="sweep.json from tools/int8_sweep.py: a speed/agreement plot and table",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    names = load_labels(args.label_map) if args.label_map else None
    written = write_report(
        args.results,
        args.out,
        bench=args.bench,
        names=names,
        default_names=not args.no_names,
        model=args.model,
        curve=args.curve,
    )
    note(args, "wrote " + ", ".join(str(p) for p in written))
    return 0

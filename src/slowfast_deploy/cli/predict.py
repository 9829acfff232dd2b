"""``slowfast-deploy predict``: label videos (top-k classes, names, scores)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from slowfast_deploy.api import Model
from slowfast_deploy.cli._model_args import add_model_args, model_config
from slowfast_deploy.cli._status import ExitStatus
from slowfast_deploy.cli._stream_args import add_stream_args, engine_options
from slowfast_deploy.cli._types import positive_int
from slowfast_deploy.engine.prediction import PredictionJSON
from slowfast_deploy.labels import resolve_labels


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("predict", help="top-k classes of one or more videos")
    p.add_argument("videos", nargs="+", type=Path, metavar="VIDEO")
    add_model_args(p)
    p.add_argument(
        "--label-map",
        "--label_map",
        type=Path,
        help="class names, one per line (Kinetics-400: the sorted class names)",
    )
    p.add_argument("--topk", type=positive_int, default=5)
    p.add_argument(
        "--format",
        choices=("table", "json", "jsonl"),
        default=None,
        help="default: table on a terminal, jsonl otherwise",
    )
    add_stream_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    labels = resolve_labels(args.label_map)  # Kinetics-400 names by default
    model = Model.from_config(model_config(args), labels=labels)
    options = engine_options(args)
    fmt = args.format or ("table" if sys.stdout.isatty() else "jsonl")
    records = []
    with model:
        predictions = model.predict(
            args.videos,
            views=args.views,
            topk=args.topk,
            decoder=args.decoder,
            frame_count=args.frame_count,
            **dataclasses.asdict(options),
        )
        for p in predictions:
            record = p.to_dict(with_scores=fmt == "json")
            records.append(record)
            if fmt == "jsonl":
                print(json.dumps(record), flush=True)
            elif fmt == "table":
                print(format_record(record))
            if p.error:
                print(f"failed: {p.error}", file=sys.stderr)
    if fmt == "json":
        print(json.dumps(records, indent=2))
    failed = sum(r["status"] != "ok" for r in records)
    return ExitStatus.SOME_FAILED if failed else ExitStatus.OK


def format_record(record: PredictionJSON) -> str:
    if record["status"] != "ok":
        return f"{record['video']}: FAILED ({record['error']})"
    lines = [f"{record['video']}  ({record['views']} view{'s' if record['views'] > 1 else ''})"]
    for rank, top in enumerate(record["topk"], start=1):
        name = f"  {top['name']}" if "name" in top else ""
        lines.append(f"  {rank}. {top['class']:>4d}  {top['score']:.4f}{name}")
    return "\n".join(lines)

"""``slowfast-deploy predict``: label videos (top-k classes, names, scores)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from slowfast_deploy.cli._model_args import add_model_args
from slowfast_deploy.cli._stream_args import add_stream_args
from slowfast_deploy.cli._types import positive_int


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
    from slowfast_deploy.cli import ExitStatus
    from slowfast_deploy.cli._model_args import open_model
    from slowfast_deploy.labels import load_labels
    from slowfast_deploy.pipeline import DecodeOptions
    from slowfast_deploy.results import result_record
    from slowfast_deploy.specs import VIEWS
    from slowfast_deploy.streaming import job_from_path, predict_videos

    if args.topk < 1:
        from slowfast_deploy.cli import UsageError

        raise UsageError("--topk must be >= 1")
    labels = load_labels(args.label_map) if args.label_map else None
    backend = open_model(args)
    fmt = args.format or ("table" if sys.stdout.isatty() else "jsonl")
    records = []
    for result in predict_videos(
        [job_from_path(v) for v in args.videos],
        backend,
        VIEWS[args.views],
        batchsize=args.batchsize,
        num_workers=min(args.num_workers, len(args.videos)),
        options=DecodeOptions(args.decoder),
    ):
        record = result_record(result, index=None, labels=labels, topk=args.topk)
        record.pop("key"), record.pop("index"), record.pop("label")
        if fmt != "json":
            record.pop("scores", None)
        records.append(record)
        if fmt == "jsonl":
            print(json.dumps(record), flush=True)
        elif fmt == "table":
            print(format_record(record))
        if result.error:
            print(f"failed: {result.error}", file=sys.stderr)
    if fmt == "json":
        print(json.dumps(records, indent=2))
    failed = sum(r["status"] != "ok" for r in records)
    return ExitStatus.SOME_FAILED if failed else ExitStatus.OK


def format_record(record: dict[str, Any]) -> str:
    if record["status"] != "ok":
        return f"{record['video']}: FAILED ({record['error']})"
    lines = [f"{record['video']}  ({record['views']} view{'s' if record['views'] > 1 else ''})"]
    for rank, top in enumerate(record["topk"], start=1):
        name = f"  {top['name']}" if "name" in top else ""
        lines.append(f"  {rank}. {top['class']:>4d}  {top['score']:.4f}{name}")
    return "\n".join(lines)

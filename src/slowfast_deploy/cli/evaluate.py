"""``slowfast-deploy evaluate``: accuracy from result files (reference step 7) or from videos."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from slowfast_deploy.cli._model_args import add_model_args, model_config
from slowfast_deploy.cli._progress import progress
from slowfast_deploy.cli._status import ExitStatus, UsageError, note
from slowfast_deploy.cli._stream_args import add_stream_args, decode_options, engine_options
from slowfast_deploy.engine.jobs import jobs_from_list
from slowfast_deploy.evaluation.result_dir import evaluate_results
from slowfast_deploy.evaluation.run import EvaluationRun
from slowfast_deploy.labels import resolve_labels


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="top-1/top-5 accuracy from result files (--result-dir) or straight from videos",
        description="Offline: --result-dir DIR --label-file INFO, as the reference postprocess. "
        "Streaming: --video-dir DIR --ann-file LIST --model MODEL [--output results.jsonl]: "
        "decodes in worker processes while the model runs, writes one line per video as it is "
        "done, and resumes from --output when rerun. Failed videos are listed and counted "
        "apart; exit code 3 if any failed.",
    )
    p.add_argument("--result-dir", "--result_dir", type=Path)
    p.add_argument("--label-file", "--label_file", type=Path)
    p.add_argument("--video-dir", "--video_dir", type=Path)
    p.add_argument("--ann-file", "--ann_file", type=Path)
    p.add_argument("--output", type=Path, help="streaming: per-video results (JSON Lines)")
    p.add_argument("--label-map", "--label_map", type=Path, help="class names, one per line")
    p.add_argument("--format", choices=("text", "json"), default="text")
    add_model_args(p, required=False)
    add_stream_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    offline = args.result_dir is not None or args.label_file is not None
    streaming = any(x is not None for x in (args.video_dir, args.ann_file, args.model))
    if (
        offline == streaming
        or (offline and not (args.result_dir and args.label_file))
        or (streaming and not (args.video_dir and args.ann_file and args.model))
    ):
        raise UsageError(
            "give either --result-dir and --label-file, or --video-dir, --ann-file and --model"
        )
    return run_offline(args) if offline else run_streaming(args)


def run_offline(args: argparse.Namespace) -> int:

    acc = evaluate_results(args.result_dir, args.label_file)
    if args.format == "json":
        print(json.dumps(acc.to_dict()))
    else:
        note(args, "Evaluating top_k_accuracy ...\n")
        sys.stdout.write(acc.lines())
    return 0


def run_streaming(args: argparse.Namespace) -> int:

    jobs = jobs_from_list(args.video_dir, args.ann_file)
    labels = resolve_labels(args.label_map)  # Kinetics-400 names by default
    run = EvaluationRun(
        jobs,
        model=model_config(args),
        output=args.output,
        views=args.views,
        decode=decode_options(args),
        engine=engine_options(args),
        labels=labels,
    )
    with run:
        if run.resumed:
            note(args, f"resuming: {run.resumed} of {len(jobs)} videos already in {args.output}")
        failures = 0
        bar = progress(run.records(), total=len(run.todo), desc="evaluate", quiet=args.quiet)
        try:
            for record in bar:
                if not record.ok:
                    failures += 1
                    bar.set_postfix(failed=failures)
                    print(f"failed: {record.error}", file=sys.stderr)
        finally:
            bar.close()
        summary = run.finish()
    if args.format == "json":
        print(json.dumps(summary.to_dict()))
        return ExitStatus.SOME_FAILED if summary.num_failed else ExitStatus.OK
    if summary.accuracy is not None:
        sys.stdout.write(summary.accuracy.lines())
    print(f"videos\t{summary.num_ok} ok, {summary.num_failed} failed")
    for failed in summary.failed:
        print(f"failed\t{failed.video}\t{failed.error}")
    this = summary.this_run
    if this is not None:
        note(
            args,
            f"[INFO] this run ({summary.engine}): {this.videos} videos in {this.wall_s} s "
            f"= {this.videos_per_s} videos/s end-to-end (start-up {this.startup_s} s apart); "
            f"model-only {this.model_only_videos_per_s} videos/s",
        )
    if len(summary.videos_per_node) > 1:
        note(args, f"[INFO] videos per node: {summary.videos_per_node}")
    return ExitStatus.SOME_FAILED if summary.num_failed else ExitStatus.OK

"""``slowfast-deploy evaluate``: accuracy from result files (reference step 7) or from videos."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from slowfast_deploy.cli._model_args import add_model_args
from slowfast_deploy.cli._stream_args import add_stream_args


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
        from slowfast_deploy.cli import UsageError

        raise UsageError(
            "give either --result-dir and --label-file, or --video-dir, --ann-file and --model"
        )
    return run_offline(args) if offline else run_streaming(args)


def run_offline(args: argparse.Namespace) -> int:
    from slowfast_deploy.cli import note
    from slowfast_deploy.offline import evaluate_results

    acc = evaluate_results(args.result_dir, args.label_file)
    if args.format == "json":
        print(json.dumps(acc.to_dict()))
    else:
        note(args, "Evaluating top_k_accuracy ...\n")
        sys.stdout.write(acc.lines())
    return 0


def run_streaming(args: argparse.Namespace) -> int:
    import numpy as np

    from slowfast_deploy.cli import ExitStatus, note
    from slowfast_deploy.cli._model_args import open_model
    from slowfast_deploy.cli._progress import progress
    from slowfast_deploy.formats import read_annotations
    from slowfast_deploy.labels import load_labels
    from slowfast_deploy.metrics import accuracy
    from slowfast_deploy.pipeline import DecodeOptions
    from slowfast_deploy.results import ResultsFile, model_fingerprint, result_record
    from slowfast_deploy.specs import VIEWS
    from slowfast_deploy.streaming import VideoJob, predict_videos

    items = read_annotations(args.ann_file)
    # one key per list line (index and path), so a video listed twice is evaluated twice
    jobs = [
        VideoJob(f"{it.index}:{it.path}", str(args.video_dir / it.path), it.label) for it in items
    ]
    index_of = {job.key: it.index for job, it in zip(jobs, items, strict=True)}
    labels = load_labels(args.label_map) if args.label_map else None
    results = None
    if args.output:
        run_id = {
            "model_sha256": model_fingerprint(args.model),
            "backend": args.backend,
            "precision": args.precision,
            "spec": args.spec,
            "views": args.views,
            "decoder": args.decoder,
        }
        results = ResultsFile.open(args.output, run_id)
    records = dict(results.records) if results else {}
    done = results.done_keys() if results else set()
    todo = [j for j in jobs if j.key not in done]
    if len(todo) < len(jobs):
        note(
            args,
            f"resuming: {len(jobs) - len(todo)} of {len(jobs)} videos already in {args.output}",
        )
    backend = open_model(args)
    views = VIEWS[args.views]
    stream = predict_videos(
        todo,
        backend,
        views,
        batchsize=args.batchsize,
        num_workers=args.num_workers,
        options=DecodeOptions(args.decoder),
    )
    failures = 0
    model_ms = 0.0
    t0 = time.perf_counter()
    bar = progress(stream, total=len(todo), desc="evaluate", quiet=args.quiet)
    try:
        for result in bar:
            record = result_record(result, index=index_of[result.job.key], labels=labels)
            records[record["key"]] = record
            if results:
                results.append(record)
            if result.error:
                failures += 1
                bar.set_postfix(failed=failures)
                print(f"failed: {result.error}", file=sys.stderr)
            model_ms += result.infer_ms
    finally:
        bar.close()
        if results:
            results.close()
    wall_s = time.perf_counter() - t0
    final = [{**records[j.key], "label": j.label} for j in jobs]  # labels from the current list
    if results:
        results.finalize(final)
    ok = [r for r in final if r["status"] == "ok"]
    failed = [r for r in final if r["status"] != "ok"]
    summary: dict[str, Any] = {
        "num_videos": len(jobs),
        "num_ok": len(ok),
        "num_failed": len(failed),
        "failed": [{"video": r["video"], "error": r.get("error")} for r in failed],
        "views": args.views,
        "backend": backend.info.name,
        "precision": backend.info.precision,
        "this_run": {
            "videos": len(todo),
            "wall_s": round(wall_s, 3),
            "videos_per_s": round(len(todo) / wall_s, 4) if wall_s else None,
            "model_s": round(model_ms / 1e3, 3),
            "model_only_videos_per_s": round((len(todo) - failures) / (model_ms / 1e3), 4)
            if model_ms
            else None,
        },
    }
    if ok:
        acc = accuracy(np.array([r["scores"] for r in ok]), np.array([r["label"] for r in ok]))
        summary.update({k: v for k, v in acc.to_dict().items() if k != "num_videos"})
    if args.output:
        summary_path = args.output.with_name(args.output.name + ".summary.json")
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    if args.format == "json":
        print(json.dumps(summary))
    else:
        if ok:
            sys.stdout.write(acc.lines())
        print(f"videos\t{len(ok)} ok, {len(failed)} failed")
        for r in failed:
            print(f"failed\t{r['video']}\t{r.get('error')}")
        run_info = summary["this_run"]
        note(
            args,
            f"[INFO] this run: {run_info['videos']} videos in {run_info['wall_s']} s = "
            f"{run_info['videos_per_s']} videos/s end-to-end; model-only "
            f"{run_info['model_only_videos_per_s']} videos/s",
        )
    return ExitStatus.SOME_FAILED if failed else ExitStatus.OK

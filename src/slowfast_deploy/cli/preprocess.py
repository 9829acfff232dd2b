"""``slowfast-deploy preprocess``: videos -> ``bin/{i}.bin`` + ``kinetics400.info`` (step 1)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from slowfast_deploy.cli._progress import progress
from slowfast_deploy.cli._status import ExitStatus, note
from slowfast_deploy.cli._stream_args import add_engine_args, decode_options, engine_options
from slowfast_deploy.engine.jobs import read_annotations
from slowfast_deploy.reference.offline import default_workers, preprocess_dataset, write_info


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "preprocess",
        help="decode + preprocess videos into the reference workflow's .bin files",
        description="Writes SAVE_DIR/bin/{i}.bin (float32 1x1x3x32x224x224) and "
        "SAVE_DIR/kinetics400.info. Missing or undecodable videos are skipped, listed in "
        "SAVE_DIR/failed.txt and on stderr, and make the exit code 3. Rerunning resumes.",
    )
    p.add_argument("--video-dir", "--video_dir", type=Path, required=True)
    p.add_argument(
        "--ann-file",
        "--ann_file",
        type=Path,
        required=True,
        help="lines 'relative/path.mp4 <label>'",
    )
    p.add_argument("--save-dir", "--save_dir", type=Path, required=True)
    p.add_argument(
        "--dtype",
        choices=("float32", "uint8"),
        default="float32",
        help="uint8: write the RGB crops (4x smaller) for a model exported with --input-dtype "
        "uint8; recorded in SAVE_DIR/bin_format.json (default float32: the reference's files)",
    )
    add_engine_args(p.add_argument_group("decoding"), model=False)
    p.add_argument("--config", help="accepted for compatibility with the reference; ignored")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    items = read_annotations(args.ann_file)
    if args.num_workers is None and args.engine == "local":
        args.num_workers = default_workers()
    outcomes = []
    stream = preprocess_dataset(
        items,
        video_dir=args.video_dir,
        save_dir=args.save_dir,
        decode=decode_options(args),
        engine=engine_options(args),
        dtype=args.dtype,
    )
    failures = 0
    bar = progress(stream, total=len(items), desc="preprocess", quiet=args.quiet)
    try:
        for outcome in bar:
            outcomes.append(outcome)
            if outcome.error:
                failures += 1
                print(f"skipped: {outcome.error}", file=sys.stderr)
                bar.set_postfix(failed=failures)
    finally:
        bar.close()
    write_info(args.save_dir, outcomes)
    done = len(outcomes) - failures
    note(
        args,
        f"wrote {done} .bin files to {args.save_dir / 'bin'} and "
        f"{args.save_dir / 'kinetics400.info'}"
        + (f"; {failures} failed, listed in {args.save_dir / 'failed.txt'}" if failures else ""),
    )
    return ExitStatus.SOME_FAILED if failures else ExitStatus.OK

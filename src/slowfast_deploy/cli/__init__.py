"""``slowfast-deploy`` command line: argparse root, logging, error -> exit code.

Each ``cli/<command>.py`` has ``add_parser(subparsers)`` and ``run(args) -> int`` and calls
library functions; heavy imports happen inside ``run`` so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys

from slowfast_deploy import __version__
from slowfast_deploy.cli import (
    bench,
    compile,
    evaluate,
    export,
    fidelity,
    infer,
    predict,
    preprocess,
    report,
    serve,
    timeline,
    watch,
)
from slowfast_deploy.cli._status import ExitStatus as ExitStatus
from slowfast_deploy.cli._status import UsageError as UsageError
from slowfast_deploy.cli._status import note as note
from slowfast_deploy.cli._status import usage_message
from slowfast_deploy.errors import SlowFastDeployError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slowfast-deploy",
        description="SlowFast R50 8x8 (Kinetics-400): the reference workflow on any CPU or GPU.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log lines")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only, no progress bar")
    parser.add_argument("--traceback", action="store_true", help="show tracebacks for all errors")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (preprocess, export, compile, infer, bench, evaluate, predict, report, timeline):
        module.add_parser(subparsers)
    fidelity.add_parser(subparsers)
    watch.add_parser(subparsers)
    serve.add_parser(subparsers)
    for sub in subparsers.choices.values():  # the global flags also work after the command
        g = sub.add_argument_group("output")
        g.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS)
        g.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS)
        g.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (
        logging.ERROR
        if args.quiet
        else (
            logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING
        )
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    try:
        return int(args.run(args))
    except (SlowFastDeployError, OSError) as err:
        if args.traceback:
            raise
        print(f"error: {err}", file=sys.stderr)
        return ExitStatus.ERROR
    except (UsageError, ValueError) as err:  # library ValueErrors name the bad value
        if args.traceback:
            raise
        print(f"usage error: {usage_message(err)}", file=sys.stderr)
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        if args.traceback:
            raise
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return ExitStatus.INTERRUPTED

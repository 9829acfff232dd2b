"""What every command shares: exit codes, usage errors, informational lines."""

from __future__ import annotations

import argparse
import sys
from enum import IntEnum


def note(args: argparse.Namespace, text: str) -> None:
    """An informational line on stderr, unless ``-q``."""
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr)


class UsageError(Exception):
    """Arguments that argparse accepted but that do not fit together; exit code 2."""


# library parameters -> the flags that set them, so that a ValueError raised by the library's
# own checks (it names the parameter) reads as a usage error naming the flag
PARAM_FLAGS = {
    "decode_timeout_s": "--decode-timeout",
    "num_workers": "--num-workers",
    "model_actors": "--model-actors",
    "batchsize": "--batchsize",
    "views": "--views",
    "topk": "--topk",
    "window": "--window",
    "stride": "--stride",
    "smooth": "--smooth",
    "threshold": "--threshold",
    "min_agreement": "--min-agreement",
    "validation_size": "--validation-size",
    "max_minutes": "--max-minutes",
    "kept_precision": "--kept-precision",
    "max_batch": "--max-batch",
    "max_wait_ms": "--max-wait-ms",
    "max_latency_s": "--max-latency",
    "open_timeout_s": "--open-timeout",
    "stall_timeout_s": "--stall-timeout",
    "stats_every_s": "--stats-every",
    "webhook": "--webhook",
    "webhook_timeout_s": "--webhook-timeout",
    "webhook_retries": "--webhook-retries",
}


def usage_message(err: Exception) -> str:
    """``err``'s message with a leading library parameter name replaced by its flag."""
    text = str(err)
    name, _, rest = text.partition(" ")
    return f"{PARAM_FLAGS[name]} {rest}" if name in PARAM_FLAGS else text


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1  # bad input, missing extra: one line on stderr, nothing after it was done
    USAGE = 2  # argparse
    SOME_FAILED = 3  # the run finished, but some videos failed (listed in its outputs)
    INTERRUPTED = 130

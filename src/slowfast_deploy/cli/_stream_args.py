"""Arguments shared by the commands that stream videos through a model."""

from __future__ import annotations

import argparse

from slowfast_deploy.cli._types import non_negative_int, positive_int
from slowfast_deploy.video.decode import DECODERS


def add_stream_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("streaming")
    g.add_argument(
        "--views",
        type=int,
        choices=(1, 30),
        default=1,
        help="1: the reference protocol (1 clip, center crop 224); 30: 10 clips x "
        "ThreeCrop 256, softmax averaged (model-zoo protocol)",
    )
    g.add_argument("--batchsize", type=positive_int, default=1, help="views per model call")
    g.add_argument(
        "--num-workers",
        "--num_workers",
        type=non_negative_int,
        default=1,
        help="decoding processes running while the model runs (0: decode inline)",
    )
    g.add_argument("--decoder", choices=DECODERS, default="decord")

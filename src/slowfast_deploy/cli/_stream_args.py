"""Arguments shared by the commands that stream videos through decoders (and a model)."""

from __future__ import annotations

import argparse
from typing import Any

from slowfast_deploy.cli._types import non_negative_int, positive_int
from slowfast_deploy.engine.base import DecodeOptions, EngineOptions
from slowfast_deploy.video.decode import DECODERS, FRAME_COUNTS


def add_engine_args(g: Any, *, model: bool = True) -> None:
    """``--engine`` and its knobs (``--num-workers`` and ``--decoder`` included)."""
    g.add_argument(
        "--num-workers",
        "--num_workers",
        type=non_negative_int,
        default=None,
        help="decoders running while the model runs (local: processes, default 1; 0: decode "
        "inline; ray: decode tasks at a time, default 2)",
    )
    g.add_argument(
        "--decoder",
        choices=DECODERS,
        default="auto",
        help="auto (default): decord, mmaction2's decoder, and PyAV only for a video decord "
        "cannot read (recorded per video); decord: decord only, failing where mmaction2 "
        "fails; pyav: FFmpeg through PyAV, bit-exact with decord",
    )
    g.add_argument(
        "--frame-count",
        "--frame_count",
        choices=FRAME_COUNTS,
        default="container",
        help="container: the container's frame count, as mmaction2 (exact results, default); "
        "decoded: only the frames that play (edit lists honoured: the true frames)",
    )
    g.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: worker processes on this machine (default); ray: Ray Data, in-process "
        "or on a cluster (--ray-address), needs the 'ray' extra",
    )
    g.add_argument(
        "--decode-timeout",
        "--decode_timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="a decode that makes no progress for S seconds is stopped and recorded as "
        "failed (default 300; 0: never)",
    )
    g.add_argument(
        "--ray-address",
        "--ray_address",
        default=None,
        help="--engine ray: join this cluster (host:port; default: $RAY_ADDRESS, else start "
        "Ray in-process on this machine)",
    )
    if model:
        g.add_argument(
            "--model-actors",
            "--model_actors",
            type=positive_int,
            default=1,
            help="--engine ray: model replicas, each loading the model once (--threads each)",
        )


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
    add_engine_args(g)


def engine_options(args: argparse.Namespace) -> Any:
    """``EngineOptions`` from the parsed arguments; defaults (workers per engine,
    ``RAY_ADDRESS``) and checks are the library's."""

    return EngineOptions(
        engine=args.engine,
        batchsize=getattr(args, "batchsize", 1),
        num_workers=args.num_workers,
        decode_timeout_s=args.decode_timeout,
        model_actors=getattr(args, "model_actors", 1),
        ray_address=args.ray_address,
    )


def decode_options(args: argparse.Namespace) -> Any:

    return DecodeOptions(args.decoder, getattr(args, "frame_count", "container"))

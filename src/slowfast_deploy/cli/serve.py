"""``slowfast-deploy serve``: the model as an HTTP service (KServe v2, videos, a page)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from slowfast_deploy.cli._model_args import add_model_args, model_config
from slowfast_deploy.cli._status import ExitStatus
from slowfast_deploy.cli._types import non_negative_int, positive_int
from slowfast_deploy.engine.base import DecodeOptions
from slowfast_deploy.labels import resolve_labels
from slowfast_deploy.serve.options import (
    DEFAULT_MAX_QUEUE,
    BatchOptions,
    LimitOptions,
    ServeOptions,
    parse_size,
)
from slowfast_deploy.serve.server import run_server
from slowfast_deploy.video.decode import DECODERS, FRAME_COUNTS

API_KEY_ENV = "SLOWFAST_DEPLOY_API_KEY"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="HTTP service: KServe v2 / Open Inference Protocol, video uploads, a web page",
        description="Serve the model over HTTP: /v2 (KServe v2, tritonclient works), "
        "/v1/predict and /v1/timeline (video uploads), /metrics, and a page at /.",
    )
    add_model_args(p)
    p.add_argument(
        "--label-map", type=Path, help="class names, one per line (default: Kinetics-400's)"
    )
    s = p.add_argument_group("server")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="default: 8000")
    s.add_argument("--name", default=None, help="model name in /v2/models (default: file stem)")
    s.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: one process on uvicorn (default); ray: the same app on Ray Serve",
    )
    s.add_argument("--replicas", type=positive_int, default=1, help="--engine ray: replicas")
    s.add_argument("--ray-address", default=None, help="--engine ray: join this cluster")
    s.add_argument(
        "--drain-timeout", type=float, default=60.0, metavar="S",
        help="on SIGTERM, wait up to S seconds for requests in flight (default 60)",
    )  # fmt: skip
    b = p.add_argument_group("batching and limits")
    b.add_argument("--max-batch", type=positive_int, default=8, help="clips per model call")
    b.add_argument(
        "--max-wait-ms", type=float, default=5.0,
        help="wait at most this long for a batch to fill (default 5)",
    )  # fmt: skip
    b.add_argument(
        "--max-queue", type=positive_int, default=DEFAULT_MAX_QUEUE, metavar="N",
        help="sets the three limits below (default 64); past one: 429",
    )  # fmt: skip
    b.add_argument(
        "--max-requests", type=positive_int, default=None, metavar="N",
        help="heavy requests (tensors, videos) in progress, bodies included (default: --max-queue)",
    )  # fmt: skip
    b.add_argument(
        "--max-queued-clips", type=positive_int, default=None, metavar="N",
        help="clips waiting for the model (default: --max-queue)",
    )  # fmt: skip
    b.add_argument(
        "--max-queued-videos", type=positive_int, default=None, metavar="N",
        help="videos waiting for a decoder (default: --max-queue)",
    )  # fmt: skip
    b.add_argument(
        "--max-streams", type=positive_int, default=16, metavar="N",
        help="live streams watched at once (default 16)",
    )  # fmt: skip
    b.add_argument(
        "--timeout", type=float, default=300.0, metavar="S",
        help="per-request time limit once the body is in; past it: 504 (default 300)",
    )  # fmt: skip
    b.add_argument(
        "--max-upload", default="512MiB", metavar="SIZE",
        help="largest request body, bytes or with a unit (5MB, 1GiB); past it: 413",
    )  # fmt: skip
    d = p.add_argument_group("decoding")
    d.add_argument(
        "--num-workers", type=non_negative_int, default=1,
        help="decoder processes per protocol (1 and 30 views; default 1)",
    )  # fmt: skip
    d.add_argument("--decoder", choices=DECODERS, default="auto")
    d.add_argument("--frame-count", choices=FRAME_COUNTS, default="container")
    d.add_argument("--decode-timeout", type=float, default=300.0, metavar="S")
    d.add_argument(
        "--tmp-dir", type=Path, default=None,
        help="where the private upload directory is made (default: $TMPDIR or /tmp)",
    )  # fmt: skip
    sec = p.add_argument_group("security")
    sec.add_argument(
        "--api-key", default=None,
        help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV}; better than the "
        "command line, which other users can read)",
    )  # fmt: skip
    sec.add_argument(
        "--allow-dir", action="append", default=[], type=Path, metavar="DIR",
        help="accept {\"path\": ...} for files under DIR (repeatable; default: none)",
    )  # fmt: skip
    sec.add_argument(
        "--allow-url", action="append", default=[], metavar="PREFIX",
        help="fetch {\"url\": ...} under this http(s) prefix (repeatable; default: none)",
    )  # fmt: skip
    p.set_defaults(run=run)


def serve_options(args: argparse.Namespace) -> ServeOptions:
    """``ServeOptions`` from the arguments; the library checks the values."""
    return ServeOptions(
        name=args.name or Path(args.model).stem,
        batch=BatchOptions(args.max_batch, args.max_wait_ms),
        limits=LimitOptions.queue(
            args.max_queue,
            max_requests=args.max_requests,
            max_queued_clips=args.max_queued_clips,
            max_queued_videos=args.max_queued_videos,
            max_streams=args.max_streams,
            max_upload_bytes=parse_size(args.max_upload),
            timeout_s=args.timeout,
        ),
        decode=DecodeOptions(args.decoder, args.frame_count),
        num_workers=max(1, args.num_workers),
        decode_timeout_s=args.decode_timeout or None,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        allow_dirs=tuple(str(d.resolve()) for d in args.allow_dir),
        allow_urls=tuple(args.allow_url),
        tmp_dir=str(args.tmp_dir) if args.tmp_dir else None,
        labels=resolve_labels(args.label_map),
    )


def run(args: argparse.Namespace) -> int:
    if not args.quiet:  # the access log: one line per request on stderr
        logging.getLogger("slowfast_deploy.serve").setLevel(logging.INFO)
    options, config = serve_options(args), model_config(args)
    if args.engine == "ray":
        from slowfast_deploy.serve.ray_serve import run_ray_serve

        run_ray_serve(
            config,
            options,
            host=args.host,
            port=args.port,
            replicas=args.replicas,
            ray_address=args.ray_address,
        )
    else:
        run_server(config, options, host=args.host, port=args.port, drain_s=args.drain_timeout)
    return ExitStatus.OK

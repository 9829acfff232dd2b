"""``slowfast-deploy bench``: pure inference on random input (the guide's ``--loop`` mode)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from slowfast_deploy._files import write_text_atomic
from slowfast_deploy.cli._model_args import add_spec_arg
from slowfast_deploy.cli._status import UsageError
from slowfast_deploy.cli._types import non_negative_int, positive_int
from slowfast_deploy.quantize.fidelity import read_fidelity
from slowfast_deploy.runtime.benchmark import (
    bench_models,
    cpu_name,
    format_layers,
    format_roofline,
    format_table,
    layer_profile,
    parse_model_arg,
    reference_lines,
)
from slowfast_deploy.runtime.roofline import read_cpu
from slowfast_deploy.specs import MODEL_SPECS


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench",
        help="model-only throughput on random input; --compare times several models alternately",
        description="MODEL arguments are PATH or PATH@BACKEND or PATH@BACKEND:PRECISION, e.g. "
        "slowfast.onnx@openvino:fp32. With --compare, every model runs on the same input, "
        "call by call in turn, and speed-ups are relative to the first .pth (PyTorch fp32) model.",
    )
    p.add_argument("--model", required=True, help="PATH[@BACKEND[:PRECISION]]")
    p.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="MODEL",
        help="more models measured in the same run, alternating",
    )
    p.add_argument("--batchsize", default="1", help="batch size or comma list, e.g. 1,4,8")
    p.add_argument(
        "--loop", type=positive_int, default=100, help="timed calls per model and batch size"
    )
    p.add_argument("--warmup", type=non_negative_int, default=2, help="untimed calls first")
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--summary", type=Path, default=None, help="write the rows as JSON here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--no-roofline",
        dest="roofline",
        action="store_false",
        help="skip the roofline: MACs per clip, achieved MAC/s and the CPU's nominal and "
        "measured peaks (its probes take a few seconds per runtime and precision)",
    )
    p.add_argument(
        "--per-layer",
        action="store_true",
        help="also list each OpenVINO model's ten slowest layers and the kernel each ran",
    )
    add_spec_arg(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        batchsizes = [int(b) for b in args.batchsize.split(",")]
    except ValueError:
        raise UsageError(
            f"--batchsize must be integers like 1,4,8, not {args.batchsize!r}"
        ) from None
    if any(b < 1 for b in batchsizes):  # --loop is checked by argparse
        raise UsageError(f"--batchsize values must be >= 1, got {args.batchsize!r}")
    models = [args.model, *args.compare]
    rows = bench_models(
        models,
        batchsizes=batchsizes,
        loop=args.loop,
        warmup=args.warmup,
        threads=args.threads,
        device=args.device,
        spec=MODEL_SPECS[args.spec],
        seed=args.seed,
        roofline=args.roofline,
    )
    for row in rows:
        print(
            f"[INFO] model {row.label} ({row.backend} {row.precision}, {row.provider}), "
            f"batchsize {row.batchsize}, loop {args.loop}"
        )
        sys.stdout.write(reference_lines(row.latency, row.batchsize))
    print()
    cpu = read_cpu()
    print(
        f"CPU: {cpu_name()}, {args.threads or 'default'} threads; roofline row "
        f"{cpu.family}/{cpu.isa}, clock {cpu.clock_hz / 1e9:.2f} GHz ({cpu.clock_source})"
    )
    sys.stdout.write(format_table(rows))
    sys.stdout.write(format_roofline(rows))
    if args.per_layer:
        for text in dict.fromkeys(models):
            path = parse_model_arg(text)[0]
            if not path.lower().endswith((".xml", ".onnx")):
                print(f"(per-layer times: {text} is not an OpenVINO model, skipped)")
                continue
            layers = layer_profile(text, batchsize=batchsizes[0], threads=args.threads)
            sys.stdout.write(format_layers(text, layers))
    for text in dict.fromkeys(models):
        fidelity = read_fidelity(parse_model_arg(text)[0])
        if fidelity is not None:
            print(f"fidelity of {text} to fp32: {fidelity.summary()}")
    if len(models) > 1 and not any(row.backend == "torch" for row in rows):
        print("(no .pth model in the run: add the checkpoint to --compare for speed-ups)")
    if args.summary:
        write_text_atomic(
            args.summary,
            json.dumps(
                {
                    "loop": args.loop,
                    "warmup": args.warmup,
                    "threads": args.threads,
                    "cpu": cpu_name(),
                    "cpu_peak": cpu.to_dict(),
                    "rows": [r.to_dict() for r in rows],
                },
                indent=2,
            )
            + "\n",
        )
    return 0

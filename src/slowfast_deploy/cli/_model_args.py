"""Arguments shared by every command that runs a model."""

from __future__ import annotations

import argparse
from typing import Any

from slowfast_deploy.cli._types import positive_int
from slowfast_deploy.runtime import ModelConfig
from slowfast_deploy.specs import MODEL_SPECS


def add_model_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        required=required,
        help=".pth checkpoint (torch), .onnx (onnxruntime) or OpenVINO .xml",
    )
    g.add_argument(
        "--backend",
        choices=("torch", "onnxruntime", "openvino"),
        default=None,
        help="force a runtime (default: by the model file's suffix)",
    )
    g.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default=None,
        help="inference precision (default: the model's; fp32 for .pth/.onnx)",
    )
    g.add_argument("--device", default="cpu", help="cpu (default), cuda, tensorrt (onnxruntime)")
    g.add_argument(
        "--threads", type=positive_int, default=None, help="intra-op threads (default: all)"
    )
    add_spec_arg(g)


def add_spec_arg(p: Any) -> None:

    p.add_argument(
        "--spec",
        choices=sorted(MODEL_SPECS),
        default="slowfast_r50_8x8x1",
        help="architecture of a .pth checkpoint (default: slowfast_r50_8x8x1)",
    )


def model_config(args: argparse.Namespace, *, softmax: bool = True) -> Any:
    """The ``ModelConfig`` the model arguments describe (opened here or by an engine)."""

    return ModelConfig(
        args.model,
        backend=args.backend,
        precision=args.precision,
        device=args.device,
        threads=args.threads,
        softmax=softmax,
        spec=args.spec,
    )


def open_model(args: argparse.Namespace, *, softmax: bool = True) -> Any:
    return model_config(args, softmax=softmax).open()

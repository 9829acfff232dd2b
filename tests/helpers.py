"""Helpers the tests share (plain functions; the fixtures are in conftest.py).

Imported as ``tests.helpers``: every ``conftest.py`` is a module named ``conftest``, so
importing helpers from "conftest" would pick whichever conftest was loaded last.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(os.environ.get("SLOWFAST_DEPLOY_GOLDEN", REPO.parent / "shared" / "golden"))


def write_video(
    path: Path, *, num_frames: int, width: int, height: int, fps: int = 25, seed: int = 0
) -> np.ndarray:
    """Write a lossless (libx264rgb, crf 0) video of random frames; return them ``[T,H,W,3]``.

    Frame ``i`` also carries ``i`` in its top-left red pixel, so a wrong index is visible.
    """
    import av

    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)
    frames[:, 0, 0, 0] = np.arange(num_frames) % 256
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
        stream.options = {"crf": "0", "preset": "ultrafast"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return frames


def tiny_spec():  # type: ignore[no-untyped-def]
    from slowfast_deploy.specs import ModelSpec

    return ModelSpec(name="tiny", slow_base_channels=16, stage_blocks=(1, 1, 1, 1), num_classes=10)


def export_plain_onnx(model, path: Path, shape: tuple[int, ...], *, softmax: bool) -> Path:
    """``torch.onnx.export`` of ``model`` with the reference I/O names and no metadata."""
    import warnings

    import torch

    from slowfast_deploy.model.slowfast import ReferenceContract

    with warnings.catch_warnings():  # the TorchScript exporter announces its deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            ReferenceContract(model, softmax=softmax),
            torch.zeros(shape),
            str(path),
            input_names=["video"],
            output_names=["class"],
            dynamic_axes={"video": {0: "N"}, "class": {0: "N"}},
            dynamo=False,
        )
    return path


def evaluate_args(videos: Path, model: Path, output: Path, *extra: str) -> list[str]:
    """``evaluate`` arguments over ``videos/list.txt`` (for ``main``), quiet."""
    return [
        "-q", "evaluate", "--video-dir", str(videos), "--ann-file", str(videos / "list.txt"),
        "--model", str(model), "--output", str(output), *extra,
    ]  # fmt: skip


def evaluate_cmd(videos: Path, model: Path, output: Path, *extra: str) -> list[str]:
    """The same ``evaluate`` as a subprocess command line."""

    return [sys.executable, "-m", "slowfast_deploy", *evaluate_args(videos, model, output, *extra)]


def wait_for_records(proc, output: Path, count: int, timeout_s: float = 240) -> None:  # type: ignore[no-untyped-def]
    """Wait while ``proc`` runs until ``output`` holds ``count`` records (after its header)."""

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if output.exists() and output.read_text().count("\n") >= count + 1:
            return
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before {count} records were written"

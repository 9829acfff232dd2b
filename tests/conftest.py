"""Shared fixtures: lossless synthetic videos with known frames, tiny models, golden data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Ray here is loopback only: every node and driver binds to 127.0.0.1. Read when ray is
# imported, so it is set before any test imports it (subprocesses inherit it).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from tests.helpers import GOLDEN, tiny_spec, write_video


@pytest.fixture(scope="session")
def synthetic_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 70-frame 96x72 lossless video and its exact frames."""
    path = tmp_path_factory.mktemp("videos") / "synthetic.mp4"
    return path, write_video(path, num_frames=70, width=96, height=72)


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three small videos (landscape, portrait, short) plus an annotation list ``list.txt``."""
    root = tmp_path_factory.mktemp("dataset")
    (root / "a").mkdir()
    write_video(root / "a" / "land.mp4", num_frames=80, width=80, height=60, seed=1)
    write_video(root / "a" / "port.mp4", num_frames=40, width=64, height=80, seed=2)
    write_video(root / "short.mp4", num_frames=20, width=64, height=64, seed=3)
    (root / "list.txt").write_text("a/land.mp4 3\na/port.mp4 1\nshort.mp4 7\n")
    return root


@pytest.fixture(scope="session")
def golden() -> Path:
    """``../shared/golden`` (mmaction2's own outputs); tests using it skip when it is absent."""
    if not (GOLDEN / "manifest.json").is_file():
        pytest.skip(f"golden reference data not found at {GOLDEN}")
    return GOLDEN


@pytest.fixture(scope="session")
def tiny_model():  # type: ignore[no-untyped-def]
    """The real SlowFast classes, one block per stage, narrow, 10 classes, seeded."""
    torch = pytest.importorskip("torch")
    from slowfast_deploy.model.slowfast import slowfast_r50

    torch.manual_seed(0)
    model = slowfast_r50(tiny_spec())
    with torch.no_grad():  # non-trivial BN statistics so a wrong BN wiring shows
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model, tmp_path_factory):
    """The tiny model saved as an mmaction2 0.x checkpoint."""
    import torch

    path = tmp_path_factory.mktemp("tiny") / "tiny.pth"
    torch.save({"meta": {}, "state_dict": tiny_model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint, tmp_path_factory):
    """The tiny model exported with the reference contract (+softmax), H and W dynamic."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from slowfast_deploy.export.onnx import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(tiny_checkpoint, out, softmax=True, spec=tiny_spec(), dynamic_hw=True)
    return out


@pytest.fixture(scope="session")
def tiny_uint8_onnx(tiny_checkpoint, tmp_path_factory):
    """The tiny model exported with uint8 input (normalisation in the graph, +softmax), H and
    W dynamic; the export itself checks it against the float model."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from slowfast_deploy.export.onnx import export_onnx

    out = tmp_path_factory.mktemp("onnx_u8") / "tiny_u8.onnx"
    export_onnx(
        tiny_checkpoint, out, softmax=True, spec=tiny_spec(), dynamic_hw=True, input_dtype="uint8"
    )
    return out


@pytest.fixture(scope="session")
def many_videos(video_dir, tmp_path_factory):
    """12 distinct video files (copies of the 3 fixtures) and their list."""
    import shutil

    root = tmp_path_factory.mktemp("many")
    lines = []
    sources = ["a/land.mp4", "a/port.mp4", "short.mp4"]
    for i in range(12):
        shutil.copy(video_dir / sources[i % 3], root / f"v{i:02d}.mp4")
        lines.append(f"v{i:02d}.mp4 {i % 10}\n")
    (root / "list.txt").write_text("".join(lines))
    return root

"""The README's Python example, run exactly as people write it: a plain script without an
``if __name__ == "__main__":`` guard, and the same code piped to ``python -``.

Decode workers must not re-import the caller's ``__main__`` (multiprocessing's spawn would
run the script again in every worker, which starts workers of its own, and so on).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import write_video

from slowfast_deploy.export.compile import compile_model

ROOT = Path(__file__).resolve().parents[1]


def readme_python_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has no Python example"
    return blocks[0]


@pytest.fixture(scope="module")
def example_dir(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding every file the example names: the model, two videos, a video list."""
    code = readme_python_example()
    root = tmp_path_factory.mktemp("readme")
    models = set(re.findall(r'"([^"]+\.xml)"', code))
    assert models, "the example names no OpenVINO model"
    for name in models:
        compiled = compile_model(tiny_onnx, backend="openvino", output=root / "compiled").path
        shutil.copy(compiled, root / name)
        shutil.copy(compiled.with_suffix(".bin"), (root / name).with_suffix(".bin"))
    for name in set(re.findall(r'"([^"]+\.mp4)"', code)):
        write_video(root / name, num_frames=40, width=64, height=48, seed=len(name))
    for list_name in set(re.findall(r'"([^"]+\.txt)"', code)):
        (video_dir,) = re.findall(r'sd\.evaluate\(\s*"([^"]+)"', code)
        (root / video_dir).mkdir(exist_ok=True)
        write_video(root / video_dir / "clip.mp4", num_frames=40, width=64, height=48, seed=9)
        (root / list_name).write_text("clip.mp4 3\n")
    return root


@pytest.mark.parametrize("how", ["script", "stdin"])
def test_readme_example_runs_without_a_main_guard(example_dir: Path, how: str):
    code = readme_python_example()
    assert "__main__" not in code  # the point: no guard
    script = example_dir / "example.py"
    script.write_text(code)
    command = [sys.executable, str(script)] if how == "script" else [sys.executable, "-"]
    done = subprocess.run(
        command,
        cwd=example_dir,
        input=None if how == "script" else code,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "decoder process died" not in done.stderr
    lines = done.stdout.strip().splitlines()
    videos = re.findall(r'"([^"]+\.mp4)"', code)
    # one line per predicted video (in input order), then the evaluate summary line
    assert [line.split()[0] for line in lines[: len(videos)]] == videos
    assert len(lines) == len(videos) + 1
    top1_acc, num_failed = lines[-1].split()
    assert 0.0 <= float(top1_acc) <= 1.0 and num_failed == "0"

"""One front door per capability, each taking an ``sd.Model``, from a plain script (no
``if __name__ == "__main__":`` guard), equal to its command: ``model.timeline`` and
``timeline``; ``sd.watch(..., model)`` on a file and ``watch FILE`` (timing fields aside);
``sd.evaluate(..., model)``. And the types mypy sees for ``sd.*``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import write_video

from slowfast_deploy.cli import main

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """\
import json
import slowfast_deploy as sd

model = sd.open_model({model!r}, threads=1)
timelines = model.timeline([{video!r}], topk=3, smooth=3)
for timeline in timelines:
    assert timeline.status == "ok", timeline.error
with open("timeline.json", "w") as out:
    out.write(timelines.render("json")[0])
again = sd.timeline([{video!r}], model, topk=3, smooth=3)
assert again.to_dicts()[0]["windows"] == timelines.to_dicts()[0]["windows"]
with sd.watch([{video!r}], model, topk=3, smooth=3) as events, open("watch.jsonl", "w") as out:
    for event in events:
        out.write(json.dumps(event.to_dict()) + "\\n")
summary = sd.evaluate({video_dir!r}, {ann!r}, model)
print(summary.num_failed, summary.num_videos)
"""

# wall-clock readings and what is computed from them
TIMING = {"arrival_wall", "emit_wall", "latency_s", "wall", "period_s", "windows_per_s"}
TIMING |= {"latency_p50_s", "latency_p99_s"}


def without_timing(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in TIMING}


@pytest.fixture(scope="module")
def script_dir(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("doors")
    video = root / "clip.mp4"
    write_video(video, num_frames=112, width=64, height=48, seed=3)
    code = SCRIPT.format(model=str(tiny_onnx), video=str(video), video_dir=str(root), ann="list")
    (root / "list").write_text("clip.mp4 3\n")
    assert "__main__" not in code
    (root / "script.py").write_text(code)
    done = subprocess.run(
        [sys.executable, "script.py"], cwd=root, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["0", "1"]  # evaluate with the same model: nothing failed
    return root


def test_model_timeline_equals_the_timeline_command(
    script_dir: Path, tiny_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = str(script_dir / "clip.mp4")
    argv = ["timeline", video, "--model", str(tiny_onnx), "--topk", "3", "--smooth", "3"]
    assert main([*argv, "--threads", "1", "-q"]) == 0
    (command,) = json.loads(capsys.readouterr().out)
    (library,) = json.loads((script_dir / "timeline.json").read_text())
    assert command.pop("timing") and library.pop("timing")
    assert library == command
    assert len(library["windows"]) == 4


def test_sd_watch_with_a_model_equals_the_watch_command(
    script_dir: Path, tiny_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = str(script_dir / "clip.mp4")
    argv = ["watch", video, "--model", str(tiny_onnx), "--topk", "3", "--smooth", "3"]
    assert main([*argv, "--threads", "1", "-q"]) == 0
    command = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    library = [json.loads(line) for line in (script_dir / "watch.jsonl").read_text().splitlines()]
    assert [without_timing(e) for e in library] == [without_timing(e) for e in command]
    kinds = [e["event"] for e in library]
    assert kinds[0] == "stream_opened" and kinds[-1] == "stats"
    assert kinds.count("window") == 4 and "segment_end" in kinds


def test_mypy_sees_the_real_types_of_the_api(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "uses_api.py"
    snippet.write_text(
        textwrap.dedent(
            """\
            import slowfast_deploy as sd
            from slowfast_deploy.evaluation.summary import RunSummary

            model: sd.Model = sd.open_model("m.onnx")
            prediction: sd.Prediction | None = next(iter(model.predict(["a.mp4"])), None)
            timelines: sd.Timelines = sd.timeline(["a.mp4"], model)
            also: sd.Timelines = model.timeline(["a.mp4"])
            watching: sd.Watch = sd.watch(["a.mp4"], model)
            summary: RunSummary = sd.evaluate("videos/", "list.txt", model)
            wrong: int = sd.open_model("m.onnx")
            late: sd.Watch = sd.watch(["a.mp4"], model, max_batch="four")
            """
        )
    )
    out, err, _ = api.run(
        [str(snippet), "--follow-imports=silent", "--cache-dir", str(tmp_path / "cache")]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    # only the deliberate mistakes: the types are real (Any would let them pass)
    assert len(errors) == 2, out + err
    assert "uses_api.py:10: error: Incompatible types in assignment" in errors[0]
    assert '(expression has type "Model", variable has type "int")' in errors[0]
    assert (
        'uses_api.py:11: error: Argument "max_batch" to "watch" has incompatible type'
        in (errors[1])
    )

"""EvaluationRun: the lock on the results file, the streamed final rewrite, the Python API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from tests.helpers import evaluate_args

from slowfast_deploy.cli import main

HOLD_LOCK = """
import sys, time
from pathlib import Path
from slowfast_deploy.evaluation.results import RunLock
RunLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def test_second_run_on_the_same_output_refuses_and_a_killed_holder_leaves_no_lock(
    video_dir, tiny_onnx, tmp_path, capsys
):
    out = tmp_path / "r.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(evaluate_args(video_dir, tiny_onnx, out)) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert str(out) in err and f"pid {holder.pid}" in err and "another --output" in err
        assert not out.exists()  # nothing was written by the refused run
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # as the OOM killer would
        holder.wait()
    assert main(evaluate_args(video_dir, tiny_onnx, out)) == 0  # no stale lock
    from slowfast_deploy.evaluation.results import RunLock

    lock = RunLock(out)  # released at the end of the run: free for the next one
    lock.acquire()
    lock.release()


def test_a_foreign_output_file_is_refused_and_left_untouched(video_dir, tiny_onnx, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"my notes, no newline at the end")
    assert main(evaluate_args(video_dir, tiny_onnx, notes)) == 1
    assert notes.read_bytes() == b"my notes, no newline at the end"


def test_finalize_streams_records_in_list_order_last_line_wins(tmp_path):
    from slowfast_deploy.evaluation.results import ResultsFile, read_records

    path = tmp_path / "r.jsonl"
    results = ResultsFile.open(path, {"model": "m"})
    for key, status in [("2:c", "failed"), ("0:a", "ok"), ("2:c", "ok"), ("1:b", "ok")]:
        results.append({"key": key, "video": key[2:], "label": 9, "status": status})
    results.finalize([("0:a", 1), ("1:b", 2), ("2:c", 3), ("3:missing", 4)])
    records = read_records(path)
    assert [(r["key"], r["status"], r["label"]) for r in records] == [
        ("0:a", "ok", 1),
        ("1:b", "ok", 2),
        ("2:c", "ok", 3),
    ]
    assert json.loads(path.read_text().splitlines()[0])["run"] == {"model": "m"}
    reopened = ResultsFile.open(path, {"model": "m"})
    assert reopened.done_keys() == {"0:a", "1:b", "2:c"}
    assert not hasattr(reopened, "records")  # statuses only, never every record in memory


def test_partial_last_line_is_cut_on_resume(tmp_path):
    from slowfast_deploy.evaluation.results import ResultsFile

    path = tmp_path / "r.jsonl"
    results = ResultsFile.open(path, {"model": "m"})
    results.append({"key": "0:a", "status": "ok"})
    results.close()
    with open(path, "a") as f:
        f.write('{"key": "1:b", "sta')  # killed mid-write
    reopened = ResultsFile.open(path, {"model": "m"})
    assert reopened.done_keys() == {"0:a"}
    assert path.read_text().endswith('"status":"ok"}\n')


def test_python_api_predict_and_evaluate(video_dir, tiny_onnx, tmp_path):
    import slowfast_deploy as sd

    names = [f"class {i}" for i in range(10)]
    videos = [video_dir / "short.mp4", video_dir / "missing.mp4", video_dir / "a" / "land.mp4"]
    with sd.open_model(tiny_onnx, labels=names) as model:
        predictions = list(model.predict(videos, topk=3, num_workers=2))
    assert [p.video for p in predictions] == [str(v) for v in videos]  # input order
    short, missing, land = predictions
    assert missing.error and not missing.ok and missing.scores is None
    for p in (short, land):
        assert p.ok and len(p.topk) == 3 and p.views == 1
        c, name, score = p.top1
        assert name == f"class {c}" and score == pytest.approx(float(p.scores.max()))
        assert abs(float(p.scores.sum()) - 1) < 1e-5
    summary = sd.evaluate(video_dir, video_dir / "list.txt", tiny_onnx, output=tmp_path / "r.jsonl")
    assert summary.num_ok == 3 and summary.engine == "local"
    from slowfast_deploy.evaluation.results import read_records

    by_video = {r["video"]: r for r in read_records(tmp_path / "r.jsonl")}
    np.testing.assert_allclose(
        by_video[str(video_dir / "short.mp4")]["scores"], short.scores, atol=1e-6
    )


def test_decode_timeout_flag_reaches_the_pool(video_dir, tiny_onnx, tmp_path, capsys):
    t0 = time.monotonic()
    args = evaluate_args(video_dir, tiny_onnx, tmp_path / "r.jsonl")
    assert main([*args, "--decode-timeout", "-1"]) == 2
    assert "--decode-timeout" in capsys.readouterr().err
    assert main([*args, "--decode-timeout", "30", "--format", "json"]) == 0
    assert time.monotonic() - t0 < 120


@pytest.mark.parametrize(
    ("used", "flag", "file_flag", "reusable"),
    [
        ("decord", "decord", "decord", True),
        ("decord", "auto", "decord", True),  # a file made before auto resumes under auto
        ("pyav", "auto", "auto", True),  # auto's own per-video fallback
        ("pyav", "auto", "pyav", False),  # --decoder pyav frames are not what auto makes
        ("decord", "pyav", "decord", False),
        ("pyav", "decord", "auto", False),
    ],
)
def test_resume_compares_the_decoder_used_per_video(used, flag, file_flag, reusable):
    from slowfast_deploy.engine.decode import decoder_reusable

    assert decoder_reusable(used, flag, file_flag) is reusable


def test_a_decord_results_file_resumes_under_auto(tmp_path):
    from slowfast_deploy.evaluation.results import ResultsFile

    path = tmp_path / "r.jsonl"
    old = ResultsFile.open(path, {"model_sha256": "x", "views": 1, "decoder": "decord"})
    old.append({"key": "0:a", "status": "ok"})  # written before records named their decoder
    old.close()
    now = ResultsFile.open(path, {"model_sha256": "x", "views": 1, "decoder": "auto"})
    assert now.done_keys() == {"0:a"}
    pyav = ResultsFile.open(path, {"model_sha256": "x", "views": 1, "decoder": "pyav"})
    assert pyav.done_keys() == set()
    with pytest.raises(Exception, match="another run"):
        ResultsFile.open(path, {"model_sha256": "y", "views": 1, "decoder": "auto"})


def test_preprocess_resume_survives_a_half_written_sources_line(video_dir, tmp_path):
    from slowfast_deploy.reference.offline import SOURCES_NAME, _read_sources

    args = [
        "-q",
        "preprocess",
        "--video-dir",
        str(video_dir),
        "--ann-file",
        str(video_dir / "list.txt"),
        "--save-dir",
        str(tmp_path),
        "--num-workers",
        "1",
    ]
    assert main(args) == 0
    sources = tmp_path / SOURCES_NAME
    lines = sources.read_text().splitlines(keepends=True)
    sources.write_text(lines[0] + lines[1][:10])  # killed while writing the second line
    (tmp_path / "bin" / "2.bin").unlink()
    assert main(args) == 0
    assert sorted(_read_sources(sources)) == [0, 1, 2]  # later lines are not lost
    assert main(args) == 0
    assert sorted(_read_sources(sources)) == [0, 1, 2]

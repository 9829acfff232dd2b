"""Streaming evaluation: equals the .bin route, resumes after kill -9, lists failures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess

import numpy as np
import pytest
from tests.helpers import evaluate_args, evaluate_cmd, wait_for_records

from slowfast_deploy.cli import ExitStatus, main


def records(path):
    from slowfast_deploy.evaluation.results import read_records

    return [{k: v for k, v in r.items() if k != "timing_ms"} for r in read_records(path)]


def test_streaming_equals_bin_route(video_dir, tiny_onnx, tmp_path):
    assert (
        main(
            [
                "-q",
                "preprocess",
                "--video-dir",
                str(video_dir),
                "--ann-file",
                str(video_dir / "list.txt"),
                "--save-dir",
                str(tmp_path / "prep"),
                "--num-workers",
                "1",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "-q",
                "infer",
                "--model",
                str(tiny_onnx),
                "--input",
                str(tmp_path / "prep/bin"),
                "--output",
                str(tmp_path),
                "--output-dirname",
                "res",
                "--outfmt",
                "NPY",
            ]
        )
        == 0
    )
    out = tmp_path / "stream.jsonl"
    assert (
        main(evaluate_args(video_dir, tiny_onnx, out, "--num-workers", "2", "--batchsize", "2"))
        == 0
    )
    got = records(out)
    assert [r["key"] for r in got] == ["0:a/land.mp4", "1:a/port.mp4", "2:short.mp4"]
    for i, r in enumerate(got):
        expected = np.load(tmp_path / "res" / f"{i}_0.npy")[0]
        np.testing.assert_allclose(r["scores"], expected, atol=1e-6)
        assert r["topk"][0]["class"] == int(np.argmax(expected))
        assert r["label"] == [3, 1, 7][i]
    summary = json.loads((tmp_path / "stream.jsonl.summary.json").read_text())
    assert summary["num_ok"] == 3 and summary["num_failed"] == 0


def test_stdout_lines_and_json(video_dir, tiny_onnx, tmp_path, capsys):
    assert (
        main(
            [
                "evaluate",
                "--video-dir",
                str(video_dir),
                "--ann-file",
                str(video_dir / "list.txt"),
                "--model",
                str(tiny_onnx),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("top1_acc\t0.") and lines[1].startswith("top5_acc\t")
    assert lines[2].startswith("mean_class_accuracy\t")
    assert lines[3] == "videos\t3 ok, 0 failed"


def test_failures_are_listed_counted_and_do_not_stop(video_dir, tiny_onnx, tmp_path, capsys):
    videos = tmp_path / "v"
    videos.mkdir()
    shutil.copy(video_dir / "short.mp4", videos / "good.mp4")
    (videos / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x13" * 4000)
    (videos / "list.txt").write_text("corrupt.mp4 1\ngood.mp4 7\nmissing.mp4 2\n")
    out = tmp_path / "r.jsonl"
    code = main(evaluate_args(videos, tiny_onnx, out, "--format", "json"))
    assert code == ExitStatus.SOME_FAILED
    summary = json.loads(capsys.readouterr().out)
    assert (summary["num_ok"], summary["num_failed"], summary["num_videos"]) == (1, 2, 3)
    assert [f["video"].rsplit("/", 1)[1] for f in summary["failed"]] == [
        "corrupt.mp4",
        "missing.mp4",
    ]
    assert "no such video file" in summary["failed"][1]["error"]
    got = {r["key"]: r for r in records(out)}
    assert got["1:good.mp4"]["status"] == "ok"
    assert got["0:corrupt.mp4"]["status"] == "failed"
    assert "corrupt.mp4" in got["0:corrupt.mp4"]["error"]
    expected_top1 = float(got["1:good.mp4"]["topk"][0]["class"] == 7)
    assert summary["top1_acc"] == expected_top1  # over the one decodable video only


def test_resume_cuts_half_written_line_and_matches_full_run(
    many_videos, tiny_onnx, tmp_path, capsys
):
    full = tmp_path / "full.jsonl"
    assert main(evaluate_args(many_videos, tiny_onnx, full)) == 0
    partial = tmp_path / "partial.jsonl"
    lines = full.read_text().splitlines(keepends=True)
    partial.write_text("".join(lines[:6]) + lines[6][: len(lines[6]) // 2])  # killed mid-line
    capsys.readouterr()
    assert main(evaluate_args(many_videos, tiny_onnx, partial, "--format", "json")) == 0
    assert records(partial) == records(full)
    summary = json.loads(capsys.readouterr().out)
    assert summary["this_run"]["videos"] == 7  # 5 complete lines reused, 7 videos computed


def test_kill_9_then_rerun_gives_the_uninterrupted_results(many_videos, tiny_onnx, tmp_path):
    full = tmp_path / "full.jsonl"
    assert main(evaluate_args(many_videos, tiny_onnx, full, "--num-workers", "0")) == 0
    out = tmp_path / "killed.jsonl"
    cmd = evaluate_cmd(many_videos, tiny_onnx, out, "--num-workers", "0")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_records(proc, out, 1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted = out.read_text().count("\n") - 1  # complete records at the kill, no header
    assert interrupted >= 1
    assert interrupted < 12
    assert main(evaluate_args(many_videos, tiny_onnx, out, "--num-workers", "0")) == 0
    assert records(out) == records(full)
    assert len(records(out)) == 12


def test_predict_formats(video_dir, tiny_onnx, tmp_path, capsys):
    names = tmp_path / "labels.txt"
    names.write_text("".join(f"class {i}\n" for i in range(10)))
    video = str(video_dir / "short.mp4")
    predict = ["predict", video, "--model", str(tiny_onnx)]
    assert main([*predict, "--label-map", str(names), "--topk", "3", "--format", "jsonl"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["video"] == video and record["status"] == "ok"
    assert len(record["topk"]) == 3
    assert record["topk"][0]["name"] == f"class {record['topk'][0]['class']}"
    scores = [t["score"] for t in record["topk"]]
    assert scores == sorted(scores, reverse=True)

    assert main([*predict, "--format", "json"]) == 0
    (full,) = json.loads(capsys.readouterr().out)
    assert len(full["scores"]) == 10 and sum(full["scores"]) == pytest.approx(1, abs=1e-5)
    assert full["topk"][0]["score"] == pytest.approx(max(full["scores"]))

    assert main([*predict, "--label-map", str(names), "--format", "table", "--topk", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == f"{video}  (1 view)"
    assert table[1].startswith("  1. ") and "class " in table[1]
    assert len(table) == 3


def test_predict_30_views_averages_softmax_of_each_view(video_dir, tiny_onnx, capsys):
    from slowfast_deploy.runtime import open_backend
    from slowfast_deploy.specs import THIRTY_VIEW
    from slowfast_deploy.video.decode import open_video
    from slowfast_deploy.video.preprocess import preprocess_clips
    from slowfast_deploy.video.sampling import sample_clip_indices

    video = video_dir / "a" / "land.mp4"
    assert (
        main(
            [
                "predict",
                str(video),
                "--model",
                str(tiny_onnx),
                "--views",
                "30",
                "--batchsize",
                "7",
                "--format",
                "json",
            ]
        )
        == 0
    )
    (record,) = json.loads(capsys.readouterr().out)
    assert record["views"] == 30
    with open_video(video) as reader:
        frames = reader.read(sample_clip_indices(reader.info.num_frames, THIRTY_VIEW.clip).ravel())
    views = preprocess_clips(frames, 10, THIRTY_VIEW.preprocess)  # [30, 3, 32, 256, 256]
    probs = open_backend(tiny_onnx).run(views[:, None])
    np.testing.assert_allclose(record["scores"], probs.mean(0), atol=1e-6)


def test_a_video_listed_twice_counts_twice_with_its_own_label(
    video_dir, tiny_onnx, tmp_path, capsys
):
    (tmp_path / "list.txt").write_text("short.mp4 9\nshort.mp4 2\n")
    out = tmp_path / "r.jsonl"
    args = [
        "evaluate",
        "--video-dir",
        str(video_dir),
        "--ann-file",
        str(tmp_path / "list.txt"),
        "--model",
        str(tiny_onnx),
        "--output",
        str(out),
        "--format",
        "json",
    ]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    got = records(out)
    assert [(r["key"], r["label"]) for r in got] == [("0:short.mp4", 9), ("1:short.mp4", 2)]
    top1 = got[0]["topk"][0]["class"]
    assert summary["top1_acc"] == ((top1 == 9) + (top1 == 2)) / 2


def test_resume_refuses_results_of_another_run_or_a_foreign_file(
    video_dir, tiny_onnx, tmp_path, capsys
):
    out = tmp_path / "r.jsonl"
    base = [
        "evaluate",
        "--video-dir",
        str(video_dir),
        "--ann-file",
        str(video_dir / "list.txt"),
        "--model",
        str(tiny_onnx),
        "--output",
        str(out),
    ]
    assert main(base) == 0
    before = out.read_bytes()
    assert main([*base, "--views", "30"]) == ExitStatus.ERROR
    assert "holds results of another run" in capsys.readouterr().err
    assert out.read_bytes() == before  # untouched
    foreign = tmp_path / "notes.jsonl"
    foreign.write_text('{"a": 1}\n{"b": 2}\n')
    assert main([*base[:-1], str(foreign)]) == ExitStatus.ERROR
    assert "notes.jsonl: has no run header" in capsys.readouterr().err
    assert foreign.read_text() == '{"a": 1}\n{"b": 2}\n'


def test_changed_labels_are_taken_from_the_current_list(video_dir, tiny_onnx, tmp_path, capsys):
    ann = tmp_path / "list.txt"
    ann.write_text("short.mp4 1\n")
    out = tmp_path / "r.jsonl"
    args = [
        "evaluate",
        "--video-dir",
        str(video_dir),
        "--ann-file",
        str(ann),
        "--model",
        str(tiny_onnx),
        "--output",
        str(out),
        "--format",
        "json",
    ]
    assert main(args) == 0
    top1 = records(out)[0]["topk"][0]["class"]
    capsys.readouterr()
    ann.write_text(f"short.mp4 {top1}\n")
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["this_run"]["videos"] == 0  # scores reused
    assert summary["top1_acc"] == 1.0
    assert records(out)[0]["label"] == top1

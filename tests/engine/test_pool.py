"""The local engine's decode pool: crashed and hung decoders become per-video failures."""

from __future__ import annotations

import os
import signal
import time
from multiprocessing.connection import wait
from pathlib import Path

import psutil
import pytest
from tests.helpers import evaluate_cmd

from slowfast_deploy.engine.decode import DecodedVideo, DecodeOptions, VideoJob, decode_job
from slowfast_deploy.engine.pool import DecodePool
from slowfast_deploy.specs import SINGLE_VIEW


def crashing_decode(job, views, options, *, on_frame=None):  # a test double (module level)
    """Kills its own process on videos named ``crash*``; decodes the others for real."""
    if Path(job.path).name.startswith("crash"):
        os.kill(os.getpid(), signal.SIGKILL)
    return decode_job(job, views, options, on_frame=on_frame)


def hanging_decode(job, views, options, *, on_frame=None):
    """Hangs without a heartbeat on videos named ``hang*``."""
    if Path(job.path).name.startswith("hang"):
        time.sleep(3600)
    return decode_job(job, views, options, on_frame=on_frame)


def slow_decode(job, views, options, *, on_frame=None):
    """Takes 2 s, beating every 0.1 s: slow is not hung."""
    for _ in range(20):
        time.sleep(0.1)
        if on_frame:
            on_frame()
    return decode_job(job, views, options, on_frame=on_frame)


def big_then_crash_decode(job, views, options, *, on_frame=None):
    """``big*``: a 100 MB result (still being sent when the next video starts); ``crash*``:
    kills its process."""
    import numpy as np

    if Path(job.path).name.startswith("crash"):
        os.kill(os.getpid(), signal.SIGKILL)
    return DecodedVideo(job, np.zeros((100, 1024, 1024), np.uint8), None)


def jobs_for(video_dir: Path, names: list[str]) -> list[VideoJob]:
    source = video_dir / "a" / "land.mp4"
    return [VideoJob(name, str(source.with_name(name))) for name in names]


@pytest.fixture
def videos(video_dir, tmp_path):
    import shutil

    for name in ("v0.mp4", "crash.mp4", "v1.mp4", "hang.mp4", "v2.mp4"):
        shutil.copy(video_dir / "a" / "land.mp4", tmp_path / name)
    return tmp_path


def run_pool(videos, names, **kwargs):
    jobs = [VideoJob(n, str(videos / n)) for n in names]
    with DecodePool(SINGLE_VIEW, DecodeOptions(), **kwargs) as pool:
        out = {d.job.key: d for d in pool.imap(jobs)}
        return out, dict(pool.stats)


def test_a_video_that_kills_its_decoder_twice_fails_alone(videos):
    out, stats = run_pool(
        videos,
        ["v0.mp4", "crash.mp4", "v1.mp4", "v2.mp4"],
        num_workers=2,
        decode_fn=crashing_decode,
    )
    assert len(out) == 4
    for name in ("v0.mp4", "v1.mp4", "v2.mp4"):
        assert out[name].crops is not None and out[name].error is None
    crashed = out["crash.mp4"]
    assert crashed.crops is None
    assert crashed.reason == "decoder_died"
    assert "decoder process died (signal 9, SIGKILL) twice" in crashed.error
    assert str(videos / "crash.mp4") in crashed.error
    assert stats["crashes"] == 2 and stats["retried"] == 1 and stats["worker_restarts"] == 2


def test_a_hung_decode_is_killed_after_the_stall_limit(videos):
    t0 = time.monotonic()
    out, stats = run_pool(
        videos,
        ["v0.mp4", "hang.mp4", "v1.mp4"],
        num_workers=1,
        timeout_s=2.0,
        decode_fn=hanging_decode,
    )
    assert time.monotonic() - t0 < 60
    hung = out["hang.mp4"]
    assert hung.crops is None and hung.reason == "decode_timeout"
    assert "made no progress for 2 s" in hung.error and "--decode-timeout" in hung.error
    assert out["v0.mp4"].crops is not None and out["v1.mp4"].crops is not None
    assert stats["timeouts"] == 1


def test_slow_but_progressing_decodes_are_not_cut(videos):
    out, stats = run_pool(
        videos, ["v0.mp4", "v1.mp4"], num_workers=1, timeout_s=1.0, decode_fn=slow_decode
    )
    assert all(d.crops is not None for d in out.values()) and stats["timeouts"] == 0


def test_same_frames_as_inline_decoding(videos):
    out, _ = run_pool(videos, ["v0.mp4", "v1.mp4", "v2.mp4"], num_workers=2)
    for name, got in out.items():
        expected = decode_job(VideoJob(name, str(videos / name)), SINGLE_VIEW, DecodeOptions())
        assert (got.crops == expected.crops).all()


def test_evaluate_survives_a_decoder_killed_mid_run(many_videos, tiny_onnx, tmp_path):
    """A real ``kill -9`` of the CLI's decode worker: the run goes on, nothing is lost."""
    import subprocess

    out = tmp_path / "r.jsonl"
    cmd = evaluate_cmd(many_videos, tiny_onnx, out, "--num-workers", "1", "--format", "json")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        decoders = [
            c
            for c in psutil.Process(proc.pid).children(recursive=True)
            if "_child_main" in " ".join(c.cmdline())
        ]
        if decoders and out.exists() and out.read_text().count("\n") >= 3:
            killed = decoders[0].pid
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=300)
    assert killed is not None, "the run ended before a decoder could be killed"
    assert proc.returncode == 0, stderr
    import json

    summary = json.loads(stdout)
    assert summary["num_ok"] == 12 and summary["num_failed"] == 0
    assert summary["this_run"]["engine_stats"]["worker_restarts"] >= 1


def test_the_video_being_decoded_is_blamed_not_one_whose_result_is_in_flight(videos):
    jobs = [VideoJob(n, str(videos / n)) for n in ("big.mp4", "crash.mp4")]
    with DecodePool(
        SINGLE_VIEW, DecodeOptions(), num_workers=1, decode_fn=big_then_crash_decode
    ) as pool:
        out = {}
        for decoded in pool.imap(jobs):
            out[decoded.job.key] = decoded
            if "crash.mp4" not in out:  # the worker ran ahead: it dies on crash.mp4 while
                (worker,) = pool.processes  # the consumer holds big.mp4
                assert wait([worker.sentinel], timeout=60), "the worker did not die"
    assert out["big.mp4"].error is None and out["big.mp4"].crops is not None
    assert out["crash.mp4"].reason == "decoder_died"

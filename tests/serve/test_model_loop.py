"""The server's one model loop: a served watch is batched once, in the server's queue, and
gives the events a watch gives; its windows and requests' clips share the model."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.live.senders import needs_ffmpeg, write_h264
from tests.live.test_streams import PLAN, SlowBackend

from slowfast_deploy.engine.batching import Clips
from slowfast_deploy.live import Source, Watch, WatchOptions
from slowfast_deploy.runtime import ModelConfig
from slowfast_deploy.serve.model_loop import ModelLoop
from slowfast_deploy.timeline.windows import WindowPlan

pytest.importorskip("av")

TIMINGS = {"arrival_wall", "emit_wall", "latency_s", "wall", "period_s", "windows_per_s"}


def events_of(watch: Watch) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in event.to_dict().items() if k not in TIMINGS}
        for event in watch
        if event.to_dict()["event"] != "stats"
    ]


def test_a_served_watch_gives_the_events_of_a_watch(tiny_onnx: Path, video_dir: Path) -> None:
    backend = ModelConfig(str(tiny_onnx), threads=1).open()
    source = Source(str(video_dir / "a" / "land.mp4"), "cam", "file")
    options = WatchOptions(plan=WindowPlan(32, 16), max_batch=2, scores=True)
    try:
        alone = events_of(Watch([source], backend, options, labels=None))
        loop = ModelLoop(backend, max_batch=2, max_wait_ms=50, max_queue=8)
        try:
            served = Watch([source], backend, options, labels=None, queue=loop.queue)
            request = loop.submit(Clips.of(np.zeros((1, 1, 3, 32, 64, 64), np.float32)))
            got = events_of(served)
            assert request[0].result(60).shape == (1, 10)  # a request between the windows
        finally:
            loop.close()
    finally:
        backend.close()
    kinds = [e["event"] for e in alone]
    assert kinds.count("window") == (80 - 32) // 16 + 1 and kinds[-1] == "stream_ended"
    assert len(got) == len(alone)
    for a, b in zip(alone, got, strict=True):
        assert a.keys() == b.keys()
        if "scores" in a:
            np.testing.assert_allclose(a.pop("scores"), b.pop("scores"), atol=1e-6)
        assert a == b
    assert loop.queue.pending() == 0 and served.queue is loop.queue


@needs_ffmpeg
def test_served_streams_at_twice_the_capacity_share_the_model_as_watch_does(
    tmp_path: Path,
) -> None:
    """``test_streams``' overload test, the streams served: the same drops and turns."""
    video = write_h264(tmp_path / "small.mp4", seconds=7, size="160x120")
    plan = WindowPlan(32, 8, preprocess=PLAN.preprocess)  # 3.75 windows/s per stream
    slow = SlowBackend(0.25)  # 4 windows/s: half of the 7.5 asked for
    loop = ModelLoop(slow, max_batch=2, max_wait_ms=50, max_queue=8, max_latency_s=1.0)
    options = WatchOptions(plan=plan, max_batch=2, realtime=True)
    watches = [
        Watch([Source(str(video), name, "file")], slow, options, labels=None, queue=loop.queue)
        for name in ("a", "b")
    ]
    got: dict[str, list[dict[str, Any]]] = {}
    try:
        threads = [
            threading.Thread(target=lambda w=w: got.setdefault(
                w.sources[0].name, [e.to_dict() for e in w]
            ))
            for w in watches
        ]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        loop.close()
    made = (7 * 30 - 32) // 8 + 1  # windows each stream's frames make
    scored = {}
    for name, events in got.items():
        windows = [e for e in events if e["event"] == "window"]
        (final,) = [e for e in events if e["event"] == "stats" and e["final"]]
        assert final["dropped"] > 0
        assert len(windows) + final["dropped"] == made  # every window scored or counted
        assert final["latency_p99_s"] <= 2.0
        scored[name] = len(windows)
    assert abs(scored["a"] - scored["b"]) <= 2, scored  # the streams take turns: fair shares
    assert max(slow.calls) <= 2

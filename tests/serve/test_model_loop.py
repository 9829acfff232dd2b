"""The server's one model loop: a served watch is batched once, in the server's queue, and
gives the events a watch gives; its windows and requests' clips share the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

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

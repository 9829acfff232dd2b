"""The one clock and the one frame loop of ``video.frames`` (files and live streams alike)."""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from slowfast_deploy.video.decode import iter_frames, open_video
from slowfast_deploy.video.frames import FrameClock, TimedFrame, decode_timed

NAN = float("nan")
DECORD_NONE = -3.689348732278538e17  # what decord's get_frame_timestamp gives for no pts


@pytest.mark.parametrize(
    ("fps", "origin", "pts", "expected"),
    [
        # a file: times from the container's start time, kept while they make sense
        (25.0, 0.0, [0.0, 0.04, 0.08, 0.12], [0.0, 0.04, 0.08, 0.12]),
        (25.0, 1.0, [1.0, 1.04, 1.08], [0.0, 0.04, 0.08]),  # start time 1 s
        (25.0, 0.0, [0.04, 0.08, 0.12], [0.04, 0.08, 0.12]),  # a first frame after the start
        (25.0, 0.0, [0.0, 0.1, 0.5, 0.55], [0.0, 0.1, 0.5, 0.55]),  # variable rate: kept
        # missing: frame / fps from there on, for good (later good times included)
        (25.0, 0.0, [None, 0.04, 0.08], [0.0, 0.04, 0.08]),
        (25.0, 0.0, [0.0, 0.04, None, 0.5], [0.0, 0.04, 0.08, 0.12]),
        (25.0, 0.0, [0.0, NAN, 0.08], [0.0, 0.04, 0.08]),
        (25.0, 0.0, [DECORD_NONE, DECORD_NONE], [0.0, 0.04]),  # decord's "no timestamp"
        # backwards or repeated: frame / fps from there on (AVI with packed B-frames)
        (25.0, 0.0, [0.04, 0.08, 0.16, 0.12, 0.2, 0.28], [0.04, 0.08, 0.16, 0.12, 0.16, 0.2]),
        (25.0, 0.0, [0.0, 0.04, 0.04, 0.12], [0.0, 0.04, 0.08, 0.12]),
        (25.0, 1.0, [1.0, 0.5, 1.08], [0.0, 0.04, 0.08]),  # before the start time
        # a live stream: the first frame's time is the origin (stream time from 0)
        (25.0, None, [10.0, 10.04, 10.08], [0.0, 0.04, 0.08]),
        (25.0, None, [None, 0.04, 0.08], [0.0, 0.04, 0.08]),  # RTSP: no time on frame 0
        (25.0, None, [10.0, 10.04, None, 10.12], [0.0, 0.04, 0.08, 0.12]),
        (25.0, None, [5.0, 5.04, 5.04, 5.12], [0.0, 0.04, 0.08, 0.12]),
        (25.0, None, [0.04, 0.08, 0.16, 0.12, 0.2], [0.0, 0.04, 0.12, 0.12, 0.16]),
        (25.0, None, [-3.0, -2.96], [0.0, 0.04]),  # a stream's pts may be negative
        # no frame rate: 30 fps is assumed for counting
        (0.0, None, [None, None, None], [0.0, 1 / 30, 2 / 30]),
    ],
)
def test_clock_rule(
    fps: float, origin: float | None, pts: list[float | None], expected: list[float]
) -> None:
    clock = FrameClock(fps, origin_s=origin)
    got = [clock.time_s(i, p) for i, p in enumerate(pts)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_clock_counts_from_the_index_not_from_the_previous_time() -> None:
    """Counting is ``index / fps`` exactly (no sum of steps), so it agrees with the frame
    numbering of windows however long the video."""
    clock = FrameClock(30.0, origin_s=0.0)
    got = [clock.time_s(i, None) for i in range(10_000)]
    assert got == [i / 30.0 for i in range(10_000)]


def test_clock_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = FrameClock(25.0, origin_s=0.0, name="cam1")
    for i, pts in enumerate([0.0, None, 0.0, None]):
        clock.time_s(i, pts)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "cam1: presentation timestamps missing or out of order at frame 1; times from "
        "there on are frame / 25.000 fps"
    ]


@dataclass
class _Frame:
    time: float | None
    index: int


class _Container:
    def __init__(self, times: list[float | None]) -> None:
        self.times = times

    def decode(self, stream: object) -> list[_Frame]:
        return [_Frame(t, i) for i, t in enumerate(self.times)]


def _drain(frames: Generator[TimedFrame, None, int]) -> tuple[list[TimedFrame], int]:
    got = []
    while True:
        try:
            got.append(next(frames))
        except StopIteration as end:
            return got, end.value


def test_decode_timed_yields_first_to_stop_and_converts_only_wanted_frames() -> None:
    container = _Container([0.0, 0.04, 0.08, 0.12, 0.16, 0.2])
    seen: list[tuple[int, float]] = []
    converted: list[int] = []

    def convert(frame: _Frame, index: int) -> np.ndarray:
        assert frame.index == index
        converted.append(index)
        return np.full((1, 1, 3), index, np.uint8)

    frames = decode_timed(
        container,
        None,
        FrameClock(25.0, origin_s=0.0),
        wanted=lambda i: i % 2 == 0,
        convert=convert,
        first=1,
        stop=5,
        on_frame=lambda i, t: seen.append((i, t)),
    )
    got, decoded = _drain(frames)
    assert [f.index for f in got] == [1, 2, 3, 4]
    assert [f.time_s for f in got] == [0.04, 0.08, 0.12, 0.16]
    assert seen == [(f.index, f.time_s) for f in got]  # before each frame's conversion
    assert converted == [2, 4]
    assert [f.rgb is not None for f in got] == [False, True, False, True]
    assert decoded == 5


def test_decode_timed_says_how_many_frames_a_short_stream_had() -> None:
    frames = decode_timed(
        _Container([0.0, 0.04]),
        None,
        FrameClock(25.0),
        wanted=lambda i: False,
        convert=lambda f, i: np.zeros((1, 1, 3), np.uint8),
        stop=10,
    )
    got, decoded = _drain(frames)
    assert [f.index for f in got] == [0, 1]
    assert decoded == 2


def test_golden_avi_times_on_the_file_path_and_on_a_live_stream(golden: Path) -> None:
    """test.avi (mpeg4 with packed B-frames): FFmpeg's pts run 1, 2, 4, 3, ... (x 1/25 s).
    Both paths count frames from frame 3 on; a file's times are from its start time (0), a
    stream's from its first frame."""
    av = pytest.importorskip("av")
    path = golden / "videos" / "test.avi"
    with open_video(path, decoder="pyav") as reader:
        n = reader.info.num_frames
        file_times = [f.time_s for f in iter_frames(reader, np.zeros(n, bool))]
    assert file_times[:3] == [0.04, 0.08, 0.16]
    assert file_times[3:] == [k / 25 for k in range(3, n)]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        live = decode_timed(
            container,
            stream,
            FrameClock(25.0),
            wanted=lambda i: False,
            convert=lambda f, i: np.zeros((1, 1, 3), np.uint8),
        )
        live_times = [f.time_s for f in live]
    assert live_times[:3] == pytest.approx([0.0, 0.04, 0.12], abs=1e-12)
    assert live_times[3:] == [k / 25 for k in range(3, n)]
    assert all(math.isfinite(t) for t in live_times)

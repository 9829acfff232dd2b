"""The pure parts of live streams: windows of an endless stream, incremental segments, the
batcher's drop policy, latency percentiles, source parsing, subtitle file names."""

from __future__ import annotations

import time

import numpy as np
import pytest

from slowfast_deploy.engine.batching import BatchQueue
from slowfast_deploy.live.events import (
    DeliveryReport,
    Event,
    LatencyHistogram,
    SegmentEndEvent,
    SegmentStart,
    SegmentTracker,
    StreamEvent,
)
from slowfast_deploy.live.pending import Notice, PendingWindow
from slowfast_deploy.live.sinks import JsonLinesSink, SubtitleSink, close_sinks, srt_file_name
from slowfast_deploy.live.sources import parse_source, read_sources_file
from slowfast_deploy.live.stream import EndlessWindows
from slowfast_deploy.timeline.segments import Segment, find_segments, smooth_scores
from slowfast_deploy.timeline.windows import (
    Window,
    WindowClip,
    WindowPlan,
    WindowRecord,
    plan_windows,
    wanted_frames,
)


@pytest.mark.parametrize(("window", "stride"), [(64, 16), (32, 16), (40, 7), (64, 64), (33, 100)])
def test_endless_windows_are_the_windows_of_a_long_video(window: int, stride: int) -> None:
    plan = WindowPlan(window, stride)
    endless = EndlessWindows(plan)
    planned = plan_windows(1000, plan)
    for w in planned:
        got = endless[w.index]
        assert (got.start_frame, got.end_frame) == (w.start_frame, w.end_frame)
        np.testing.assert_array_equal(got.frame_indices, w.frame_indices)
    # frames before the next window's start: the endless stream's later windows sample none
    mask = wanted_frames(planned)[: planned[-1].start_frame + stride]
    assert [endless.wanted(k) for k in range(len(mask))] == mask.tolist()


def _records(scores: np.ndarray) -> list[WindowRecord]:
    return [
        WindowRecord(i, 16 * i, 16 * i + 64, 16 * i / 30, (16 * i + 64) / 30, row)
        for i, row in enumerate(scores)
    ]


@pytest.mark.parametrize("smooth", [1, 3, 5])
@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_segment_tracker_finds_timeline_segments(smooth: int, threshold: float) -> None:
    rng = np.random.default_rng(smooth)
    classes = np.repeat(rng.integers(0, 3, 12), rng.integers(1, 5, 12))[:40]
    scores = np.full((len(classes), 3), 0.05, dtype=np.float32)
    scores[np.arange(len(classes)), classes] = rng.uniform(0.3, 0.9, len(classes))
    scores /= scores.sum(axis=1, keepdims=True)
    records = _records(scores)
    expected = find_segments(records, smooth_scores(scores, smooth), threshold=threshold)
    tracker = SegmentTracker(smooth=smooth, threshold=threshold)
    found: list[SegmentStart | Segment] = []
    for k, record in enumerate(records):
        new = tracker.add(record)
        for item in new:  # decided smooth // 2 windows late, never later
            window = item.first_window if isinstance(item, SegmentStart) else item.last_window + 1
            assert window >= k - smooth // 2
        found += new
    found += tracker.finish()
    ends = [s for s in found if isinstance(s, Segment)]
    starts = [s for s in found if isinstance(s, SegmentStart)]
    assert len(ends) == len(expected) == len(starts)
    for got, want, start in zip(ends, expected, starts, strict=True):
        assert (got.class_index, got.first_window, got.last_window) == (
            want.class_index,
            want.first_window,
            want.last_window,
        )
        assert (got.start_frame, got.end_frame) == (want.start_frame, want.end_frame)
        assert got.start_s == pytest.approx(want.start_s)
        assert got.end_s == pytest.approx(want.end_s)
        assert got.mean_score == pytest.approx(want.mean_score, rel=1e-5)
        assert (start.class_index, start.first_window) == (want.class_index, want.first_window)


def _pending(stream: int, index: int, arrival: float) -> PendingWindow:
    window = Window(index, index, index + 32, np.arange(32))
    clip = WindowClip(window, 0.0, 1.0, np.zeros((1,), np.float32))
    return PendingWindow(stream, 0, clip, arrival, arrival)


class Streams:
    """The stream policy of ``engine.batching.BatchQueue`` as a watch uses it: stream ``i``
    is key ``i``."""

    def __init__(
        self,
        num_streams: int,
        *,
        max_batch: int,
        max_wait_s: float,
        max_latency_s: float,
        depth: int = 3,
        lossless: frozenset[int] = frozenset(),
    ) -> None:
        self.queue: BatchQueue[PendingWindow, Notice] = BatchQueue(
            max_batch=max_batch, max_wait_s=max_wait_s, max_latency_s=max_latency_s, depth=depth
        )
        for i in range(num_streams):
            self.queue.add_stream(i, lossless=i in lossless)
        self.num_streams = num_streams
        self.take, self.observe, self.close = self.queue.take, self.queue.observe, self.queue.close

    def put(self, item: PendingWindow | Notice) -> None:
        if isinstance(item, PendingWindow):
            self.queue.put(item.stream, item, item.arrival_mono)
        else:
            self.queue.put_notice(item.stream, item)

    @property
    def dropped(self) -> list[int]:
        return [self.queue.dropped(i) for i in range(self.num_streams)]


def test_batcher_takes_oldest_first_and_keeps_notices_in_place() -> None:
    batcher = Streams(2, max_batch=2, max_wait_s=0.0, max_latency_s=100)
    batcher.observe(0.001, 1)  # a fast model
    now = time.monotonic()
    batcher.put(_pending(0, 0, now - 3))
    batcher.put(Notice(0, {"event": "stream_lost"}))
    batcher.put(_pending(0, 1, now - 1))
    batcher.put(_pending(1, 0, now - 2))
    take = batcher.take(0.0)
    assert [(p.stream, p.clip.window.index) for p in take.batch] == [(0, 0), (1, 0)]
    assert [n.event["event"] for n in take.after] == ["stream_lost"]  # after stream 0's window
    take = batcher.take(0.0)
    assert [(p.stream, p.clip.window.index) for p in take.batch] == [(0, 1)]
    assert batcher.dropped == [0, 0]


def test_batcher_drops_stale_windows_oldest_first_but_never_a_streams_newest() -> None:
    batcher = Streams(2, max_batch=8, max_wait_s=0.0, max_latency_s=1.0, depth=10)
    batcher.observe(0.001, 1)  # a fast model
    now = time.monotonic()
    for k in range(4):  # stream 0: three stale windows, then a fresh one
        batcher.put(_pending(0, k, now - 5 + k if k < 3 else now))
    batcher.put(_pending(1, 0, now - 9))  # stream 1: one stale window, its newest
    taken = batcher.take(0.0).batch + batcher.take(0.0).batch  # past budget: one per call
    assert sorted((p.stream, p.clip.window.index) for p in taken) == [(0, 3), (1, 0)]
    assert batcher.dropped == [3, 0]


def test_batcher_full_queue_drops_its_oldest_window_and_lossless_waits() -> None:
    batcher = Streams(
        2, max_batch=1, max_wait_s=10, max_latency_s=100, depth=2, lossless=frozenset({1})
    )
    now = time.monotonic()
    for k in range(3):
        batcher.put(_pending(0, k, now))
    assert batcher.dropped == [1, 0]
    batcher.put(_pending(1, 0, now))
    batcher.put(_pending(1, 1, now))
    t0 = time.monotonic()
    batcher.close()  # a lossless put waits for room, until the batcher closes
    batcher.put(_pending(1, 2, now))
    assert time.monotonic() - t0 < 1.0
    assert batcher.dropped == [1, 0]


def test_batcher_waits_at_most_max_wait_for_a_full_batch() -> None:
    batcher = Streams(1, max_batch=4, max_wait_s=0.2, max_latency_s=100)
    batcher.observe(0.001, 1)  # a fast model
    batcher.put(_pending(0, 0, time.monotonic()))
    t0 = time.monotonic()
    take = batcher.take(5.0)
    assert len(take.batch) == 1
    assert 0.15 <= time.monotonic() - t0 < 1.0


def test_latency_histogram_percentiles_within_one_percent() -> None:
    hist = LatencyHistogram()
    values = np.random.default_rng(0).uniform(0.01, 3.0, 5000)
    for v in values:
        hist.add(float(v))
    for q in (50, 99):
        assert hist.percentile(q) == pytest.approx(np.percentile(values, q), rel=0.02)
    assert LatencyHistogram().percentile(50) is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("rtsp://127.0.0.1:8554/cam", "network"),
        ("udp://127.0.0.1:1234", "network"),
        ("srt://127.0.0.1:9000", "network"),
        ("/dev/video0", "device"),
        ("clips/a.mp4", "file"),
        ("file:///tmp/a.mp4", "file"),
    ],
)
def test_parse_source(text: str, kind: str) -> None:
    source = parse_source(text)
    assert (source.kind, source.name, source.url) == (kind, text, text)


def test_parse_source_refuses_unknown_schemes() -> None:
    with pytest.raises(ValueError, match="unknown scheme 'gopher'"):
        parse_source("gopher://x")


def test_sources_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    listing = tmp_path / "cams.txt"
    listing.write_text("# cameras\nrtsp://127.0.0.1/a door\n\n/dev/video0\nb.mp4   back yard\n")
    got = [(s.url, s.name) for s in read_sources_file(listing)]
    assert got == [
        ("rtsp://127.0.0.1/a", "door"),
        ("/dev/video0", "/dev/video0"),
        ("b.mp4", "back yard"),
    ]


def test_srt_file_names_are_safe_and_unique() -> None:
    taken: set[str] = set()
    assert srt_file_name("rtsp://127.0.0.1:8554/cam", taken) == "rtsp_127.0.0.1_8554_cam.srt"
    assert srt_file_name("rtsp://127.0.0.1:8554/cam", taken) == "rtsp_127.0.0.1_8554_cam-2.srt"
    assert srt_file_name("../..", taken) == "stream.srt"


def test_batcher_batches_only_what_fits_in_the_latency_budget() -> None:
    batcher = Streams(4, max_batch=4, max_wait_s=0.0, max_latency_s=2.2)
    batcher.observe(1.0, 2)  # 0.5 s per window
    now = time.monotonic()
    for stream in range(4):
        batcher.put(_pending(stream, 0, now))
    assert len(batcher.take(0.0).batch) == 4  # 4 x 0.5 s fits in 2.2 s
    for stream in range(4):
        batcher.put(_pending(stream, 1, now - 0.9))  # 1.3 s left: 2 windows fit
    assert len(batcher.take(0.0).batch) == 2
    assert len(batcher.take(0.0).batch) >= 1


def test_batcher_serves_the_streams_in_turn() -> None:
    batcher = Streams(2, max_batch=1, max_wait_s=0.0, max_latency_s=100, depth=3)
    now = time.monotonic()
    for k in range(3):  # stream 1's windows always arrive a millisecond earlier
        batcher.put(_pending(0, k, now - 3 + k))
        batcher.put(_pending(1, k, now - 3 + k - 0.001))
    served = [batcher.take(0.0).batch[0].stream for _ in range(6)]
    assert served == [1, 0, 1, 0, 1, 0]


def test_batcher_takes_one_window_while_the_models_speed_is_unknown() -> None:
    batcher = Streams(2, max_batch=4, max_wait_s=0.0, max_latency_s=100)
    now = time.monotonic()
    batcher.put(_pending(0, 0, now))
    batcher.put(_pending(1, 0, now))
    assert len(batcher.take(0.0).batch) == 1
    batcher.observe(0.01, 1)
    batcher.put(_pending(0, 1, now))
    assert len(batcher.take(0.0).batch) == 2


def test_subtitles_keep_one_timeline_per_stream_across_reconnects(tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = SubtitleSink(tmp_path / "srt", ["rtsp://127.0.0.1:8554/cam", "door"])

    def segment(connection: int, start_s: float, end_s: float) -> SegmentEndEvent:
        return SegmentEndEvent("door", connection, 3, "dancing", start_s, end_s, 0, 0, (0, 0),
                               0.8125, 0.0)  # fmt: skip

    files.write(StreamEvent("stream_opened", "door", 100.0, connection=0))
    files.write(segment(0, 0.0, 2.5))
    files.write(StreamEvent("stream_restored", "door", 130.0, connection=1, reason="ended"))
    files.write(segment(1, 1.0, 2.0))
    files.close()
    assert (tmp_path / "srt" / "door.srt").read_text() == (
        "1\n00:00:00,000 --> 00:00:02,500\ndancing 0.81\n\n"
        "2\n00:00:31,000 --> 00:00:32,000\ndancing 0.81\n"
    )
    assert (tmp_path / "srt" / "rtsp_127.0.0.1_8554_cam.srt").read_text() == ""


class Recorder:
    """A sink that keeps what it is given and says when it was closed."""

    def __init__(self, name: str, closed: list[str], report: DeliveryReport | None = None):
        self.name, self.closed, self.report = name, closed, report
        self.events: list[Event] = []

    def write(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> DeliveryReport | None:
        self.closed.append(self.name)
        if self.name == "broken":
            raise OSError("disk full")
        return self.report


def test_sinks_close_in_reverse_and_reports_reach_the_sinks_before() -> None:
    closed: list[str] = []
    report = DeliveryReport("webhook", "http://127.0.0.1:9/x", 3, 1, 0)
    first, broken = Recorder("first", closed), Recorder("broken", closed)
    hook = Recorder("hook", closed, report)
    with pytest.raises(OSError, match="disk full"):  # raised once every sink is closed
        close_sinks([first, broken, hook])
    assert closed == ["hook", "broken", "first"]
    assert first.events == broken.events == [report] and not hook.events
    assert close_sinks([Recorder("a", []), Recorder("b", [], report)]) == [report]


def test_json_lines_sink_appends_each_event_as_the_cli_prints_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "earlier"}\n')
    sink = JsonLinesSink(path)
    event = StreamEvent("stream_failed", "cam é", 1.5, reason="refused", message="cam: refused")
    sink.write(event)
    sink.close()
    assert path.read_text(encoding="utf-8") == (
        '{"event": "earlier"}\n'
        '{"event": "stream_failed", "stream": "cam é", "reason": "refused", '
        '"message": "cam: refused", "wall": 1.5}\n'
    )

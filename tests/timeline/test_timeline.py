"""Timelines of long videos: windows sampled as the test pipeline samples a video of their
length, one decode in order, segments, and the outputs (JSON, CSV, SRT, plot, annotated video)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from slowfast_deploy.runtime.base import BackendInfo
from slowfast_deploy.specs import SINGLE_VIEW, ClipSpec, PreprocessSpec
from slowfast_deploy.timeline.run import TimelineRun
from slowfast_deploy.timeline.segments import find_segments, smooth_scores
from slowfast_deploy.timeline.windows import (
    TimelineStats,
    WindowPlan,
    WindowRecord,
    assemble_windows,
    plan_windows,
    wanted_frames,
)
from slowfast_deploy.video.decode import TimedFrame, iter_frames, open_video
from slowfast_deploy.video.preprocess import normalize_to_ncthw, preprocess_clips
from slowfast_deploy.video.sampling import sample_clip_indices

CHANGE_FRAME = 150  # the step video turns from dark to bright here


def write_step_video(path: Path, *, num_frames: int, change: int, fps: int = 30) -> None:
    """A lossless 64x48 video: dark noise before frame ``change``, bright noise from it on."""
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "rgb24"
        stream.options = {"crf": "0", "preset": "ultrafast"}
        for i in range(num_frames):
            base = 40 if i < change else 200
            frame = (base + rng.integers(-20, 20, (48, 64, 3))).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


class BrightnessBackend:
    """A test double of ``Backend``: class 1's probability is the share of bright frames in
    the clip (normalised pixel mean above 0), class 0 the rest. Counts its calls."""

    def __init__(self) -> None:
        self.info = BackendInfo(name="fake", model_path="brightness", precision="fp32")
        self.input_shape = (None, 1, 3, 32, 224, 224)
        self.output_kind = "probs"
        self.batches: list[int] = []

    def run(self, video: np.ndarray) -> np.ndarray:
        self.batches.append(video.shape[0])
        bright = (video.mean(axis=(1, 2, 4, 5)) > 0).mean(axis=1)  # [N], share of T frames
        return np.stack([1 - bright, bright], axis=1).astype(np.float32)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def step_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("step") / "step.mp4"
    write_step_video(path, num_frames=300, change=CHANGE_FRAME)
    return path


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    from tests.helpers import write_video

    path = tmp_path_factory.mktemp("long") / "long.mp4"
    return path, write_video(path, num_frames=150, width=96, height=72, fps=30, seed=5)


# --- planning (pure) ----------------------------------------------------------------------


def test_windows_tile_the_video_and_sample_as_the_test_pipeline() -> None:
    windows = plan_windows(200, WindowPlan(64, 16))
    assert [w.start_frame for w in windows] == [0, 16, 32, 48, 64, 80, 96, 112, 128]
    assert all(w.end_frame == w.start_frame + 64 for w in windows)
    for w in windows:  # SampleFrames(32, 2) on a 64-frame video: 0, 2, ..., 62, shifted
        np.testing.assert_array_equal(w.frame_indices, w.start_frame + np.arange(0, 64, 2))


@pytest.mark.parametrize(
    ("num_frames", "window", "first", "stop", "expected"),
    [
        (40, 64, 0, None, [(0, 40)]),  # shorter than a window: one window, padded by wrapping
        (64, 64, 0, None, [(0, 64)]),
        (100, 48, 0, None, [(0, 48), (16, 64), (32, 80), (48, 96)]),
        (300, 64, 100, 200, [(100, 164), (116, 180), (132, 196)]),
        (300, 96, 250, 290, [(250, 290)]),
    ],
)
def test_window_ranges(num_frames, window, first, stop, expected) -> None:
    windows = plan_windows(num_frames, WindowPlan(window, 16), first=first, stop=stop)
    assert [(w.start_frame, w.end_frame) for w in windows] == expected
    for w in windows:  # each window: the test pipeline on a video of the window's length
        length = w.end_frame - w.start_frame
        expected_indices = sample_clip_indices(length, ClipSpec())[0] + w.start_frame
        np.testing.assert_array_equal(w.frame_indices, expected_indices)


def test_windows_of_32_to_62_frames_wrap_like_a_short_video() -> None:
    (w,) = plan_windows(48, WindowPlan(48, 16))
    assert w.frame_indices[:3].tolist() == [0, 2, 4]
    assert w.frame_indices[-3:].tolist() == [10, 12, 14]  # 48, 50, 52 mod 48


@pytest.mark.parametrize(
    ("window", "stride", "message"),
    [(31, 16, "at least the model's clip length"), (64, 0, "stride must be >= 1")],
)
def test_bad_plans(window, stride, message) -> None:
    with pytest.raises(ValueError, match=message):
        WindowPlan(window, stride)


def test_smoothing_is_a_centred_average_truncated_at_the_ends() -> None:
    scores = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], dtype=np.float32)
    smoothed = smooth_scores(scores, 3)
    np.testing.assert_allclose(smoothed[:, 0], [0.5, 2 / 3, 2 / 3, 1.0], rtol=1e-6)
    np.testing.assert_allclose(smoothed.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(smooth_scores(scores, 1), scores)
    with pytest.raises(ValueError, match="odd"):
        smooth_scores(scores, 2)


def _records(top: list[int], scores: list[float]) -> tuple[list[WindowRecord], np.ndarray]:
    rows = np.zeros((len(top), 3), dtype=np.float32)
    records = []
    for k, (c, s) in enumerate(zip(top, scores, strict=True)):
        rows[k, c] = s
        rows[k, (c + 1) % 3] = 1 - s
        start = 16 * k
        records.append(WindowRecord(k, start, start + 64, start / 32, (start + 64) / 32, rows[k]))
    return records, rows


def test_segments_merge_windows_and_split_midway_between_centres() -> None:
    records, rows = _records([0, 0, 0, 2, 2, 1, 1], [0.9, 0.8, 0.9, 0.7, 0.6, 0.55, 0.9])
    segments = find_segments(records, rows, threshold=0.0)
    assert [(s.class_index, s.first_window, s.last_window) for s in segments] == [
        (0, 0, 2),
        (2, 3, 4),
        (1, 5, 6),
    ]
    # centres at 32 + 16k frames: the 0|2 boundary is midway between windows 2 (64) and 3 (80)
    assert [(s.start_frame, s.end_frame) for s in segments] == [(0, 72), (72, 104), (104, 160)]
    assert segments[0].start_s == 0.0
    assert segments[0].end_s == pytest.approx(72 / 32)
    assert segments[-1].end_s == records[-1].end_s
    assert segments[0].mean_score == pytest.approx((0.9 + 0.8 + 0.9) / 3)
    # a threshold drops the uncertain windows and splits what they separated
    kept = find_segments(records, rows, threshold=0.65)
    assert [(s.class_index, s.first_window, s.last_window) for s in kept] == [
        (0, 0, 2),
        (2, 3, 3),
        (1, 6, 6),
    ]


# --- one pass over the frames -------------------------------------------------------------


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_frames_are_decoded_once_in_order_with_the_readers_pixels(long_video, decoder) -> None:
    path, _ = long_video
    windows = plan_windows(150, WindowPlan(64, 16))
    wanted = wanted_frames(windows)
    with open_video(path, decoder=decoder) as reader:
        frames = list(iter_frames(reader, wanted, first=16, chunk_size=7))
    with open_video(path, decoder=decoder) as reader:
        reference = reader.read(np.flatnonzero(wanted))
    assert [f.index for f in frames] == list(range(16, len(wanted)))
    got = {f.index: f.rgb for f in frames if f.rgb is not None}
    assert sorted(got) == [i for i in np.flatnonzero(wanted).tolist() if i >= 16]
    for row, index in enumerate(np.flatnonzero(wanted).tolist()):
        if index >= 16:
            np.testing.assert_array_equal(got[index], reference[row])
    times = [f.time_s for f in frames]
    assert times[0] == pytest.approx(16 / 30, abs=1e-3)
    assert np.all(np.diff(times) > 0)


def test_every_window_gets_exactly_the_model_input_of_its_frames(long_video) -> None:
    """Any window, not only the first: the resized, cropped, normalised frames the test
    pipeline samples, bit for bit (frames are normalised once, windows stacked from them)."""
    path, frames = long_video
    plan = WindowPlan(64, 16)
    windows = plan_windows(len(frames), plan)
    with open_video(path, decoder="pyav") as reader:
        clips = list(
            assemble_windows(
                iter_frames(reader, wanted_frames(windows)),
                windows,
                fps=reader.info.fps,
            )
        )
    assert [c.window.index for c in clips] == [w.index for w in windows]
    for clip in clips:
        indices = clip.window.start_frame + sample_clip_indices(64, plan.clip)[0]
        expected = preprocess_clips(frames[indices], 1, SINGLE_VIEW.preprocess)[0]
        np.testing.assert_array_equal(clip.input, expected)
        assert clip.start_s == pytest.approx(clip.window.start_frame / 30, abs=1e-3)
        assert clip.end_s == pytest.approx(clip.window.end_frame / 30, abs=1e-3)


def test_memory_holds_only_the_frames_future_windows_need() -> None:
    """10,000 frames through the assembler: never more than one window's frames held."""
    height, width = 16, 20
    spec = PreprocessSpec(short_side=16, crop_size=16)
    windows = plan_windows(10_000, WindowPlan(64, 16))
    wanted = wanted_frames(windows)
    frame = np.zeros((height, width, 3), np.uint8)
    stream = (TimedFrame(i, i / 30, frame if wanted[i] else None) for i in range(len(wanted)))
    stats = TimelineStats()
    count = sum(1 for _ in assemble_windows(stream, windows, fps=30, preprocess=spec, stats=stats))
    assert count == len(windows) == 622
    assert stats.peak_cached_frames == 32  # the even frames of one 64-frame window


# --- scores -------------------------------------------------------------------------------


def test_content_change_gives_a_segment_boundary_within_one_stride(step_video) -> None:
    backend = BrightnessBackend()
    with TimelineRun(step_video, backend, WindowPlan(64, 16), batchsize=4) as run:
        records = list(run)
    assert len(records) == len(run.windows) == 15
    assert backend.batches == [4, 4, 4, 3]  # windows batched to the model
    scores = np.stack([r.scores for r in records])
    segments = find_segments(records, smooth_scores(scores, 3), threshold=0.5)
    assert [s.class_index for s in segments] == [0, 1]
    assert abs(segments[0].end_frame - CHANGE_FRAME) <= 16
    assert segments[1].start_frame == segments[0].end_frame
    assert abs(segments[0].end_s - CHANGE_FRAME / 30) <= 16 / 30


def _predict_scores(backend, path, decoder="decord") -> np.ndarray:
    from slowfast_deploy.engine.decode import load_views
    from slowfast_deploy.engine.scoring import score_views

    return score_views(backend, load_views(path, decoder=decoder)[None])[0]


@pytest.mark.parametrize(
    ("num_frames", "window", "decoder"),
    [(64, 64, "decord"), (64, 64, "pyav"), (40, 64, "decord"), (48, 48, "pyav")],
)
def test_a_video_one_window_long_gives_predicts_scores(
    tiny_onnx, tmp_path, num_frames, window, decoder
) -> None:
    from tests.helpers import write_video

    from slowfast_deploy.runtime import open_backend

    path = tmp_path / "clip.mp4"
    write_video(path, num_frames=num_frames, width=96, height=72, seed=num_frames)
    backend = open_backend(tiny_onnx)
    with TimelineRun(path, backend, WindowPlan(window, 16), decoder=decoder) as run:
        (record,) = list(run)
    np.testing.assert_array_equal(record.scores, _predict_scores(backend, path, decoder))


def test_one_window_through_both_commands(tiny_onnx, tmp_path, capsys) -> None:
    from tests.helpers import write_video

    from slowfast_deploy.cli import main

    path = tmp_path / "clip.mp4"
    write_video(path, num_frames=64, width=96, height=72, seed=7)
    argv = ["predict", str(path), "--model", str(tiny_onnx), "--format", "json", "--topk", "10"]
    assert main(argv) == 0
    (predicted,) = json.loads(capsys.readouterr().out)
    argv = ["timeline", str(path), "--model", str(tiny_onnx), "--topk", "10", "-q"]
    assert main(argv) == 0
    (timeline,) = json.loads(capsys.readouterr().out)
    (window,) = timeline["windows"]
    assert [t["class"] for t in window["topk"]] == [t["class"] for t in predicted["topk"]]
    for top in window["topk"]:
        assert top["score"] == pytest.approx(predicted["scores"][top["class"]], abs=1e-6)


@pytest.mark.golden
@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_golden_videos_one_window_each_gives_mmaction2s_model_input(golden, decoder) -> None:
    """Every golden video as one window: mmaction2's model input, bit for bit."""
    manifest = json.loads((golden / "manifest.json").read_text())
    for entry in manifest:
        name = entry["video"]
        path = golden / "videos" / name
        ref = np.load(golden / "reference" / f"{name}.npz")
        with open_video(path, decoder=decoder) as reader:
            n = reader.info.num_frames
            windows = plan_windows(n, WindowPlan(max(n, 32), 16))
            clips = list(
                assemble_windows(
                    iter_frames(reader, wanted_frames(windows)), windows, fps=reader.info.fps
                )
            )
        (clip,) = clips
        np.testing.assert_array_equal(clip.window.frame_indices, ref["frame_inds"])
        expected = normalize_to_ncthw(ref["cropped"][None], SINGLE_VIEW.preprocess)[0]
        np.testing.assert_array_equal(clip.input, expected, err_msg=name)


@pytest.mark.golden
@pytest.mark.slow
def test_golden_window_scores_match_mmaction2(golden) -> None:
    """A golden video as one window of the real checkpoint: mmaction2's scores within 1e-4."""
    pytest.importorskip("torch")
    from slowfast_deploy.runtime import open_backend

    name = "syn_short_48f_340x256_30fps.mp4"
    ref = np.load(golden / "reference" / f"{name}.npz")
    backend = open_backend(golden / "slowfast_r50_8x8x1_random_seed0.pth")
    with TimelineRun(golden / "videos" / name, backend, WindowPlan(64, 16)) as run:
        (record,) = list(run)
    np.testing.assert_allclose(record.scores, ref["scores"], atol=1e-4)
    assert record.scores.argmax() == ref["scores"].argmax()


# --- the command --------------------------------------------------------------------------


SRT_BLOCK = re.compile(
    r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n(.+)\n"
)


def parse_srt(text: str) -> list[tuple[int, float, float, str]]:
    """A strict SubRip reader: numbered blocks, ``HH:MM:SS,mmm --> ...``, text, blank line."""
    blocks = text.strip("\n").split("\n\n")
    parsed = []
    for block in blocks:
        match = SRT_BLOCK.fullmatch(block + "\n")
        assert match, f"not an SRT block: {block!r}"
        g = [int(x) if x.isdigit() else x for x in match.groups()]
        start = g[1] * 3600 + g[2] * 60 + g[3] + g[4] / 1000
        end = g[5] * 3600 + g[6] * 60 + g[7] + g[8] / 1000
        parsed.append((g[0], start, end, g[9]))
    return parsed


@pytest.fixture
def fake_model(monkeypatch, tmp_path):
    """``--model`` opens the brightness test double."""
    backend = BrightnessBackend()
    monkeypatch.setattr("slowfast_deploy.cli.timeline.open_model", lambda args: backend)
    model = tmp_path / "fake.onnx"
    model.write_bytes(b"")
    return model


def test_srt_csv_and_json_outputs(step_video, fake_model, tmp_path, capsys) -> None:
    from slowfast_deploy.cli import main

    names = tmp_path / "names.txt"
    names.write_text("calme nuit\nlumière vive\n", encoding="utf-8")
    common = [str(step_video), "--model", str(fake_model), "--label-map", str(names), "-q"]
    assert main(["timeline", *common, "--format", "srt", "--smooth", "3"]) == 0
    subtitles = parse_srt(capsys.readouterr().out)
    assert [s[0] for s in subtitles] == [1, 2]
    assert [s[3].rsplit(" ", 1)[0] for s in subtitles] == ["calme nuit", "lumière vive"]
    assert subtitles[0][1] == 0.0
    assert abs(subtitles[0][2] - CHANGE_FRAME / 30) <= 16 / 30
    assert subtitles[1][1] == subtitles[0][2]

    out = tmp_path / "t.csv"
    assert main(["timeline", *common, "--format", "csv", "--topk", "2", "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 15
    assert rows[0]["name_1"] == "calme nuit"
    assert rows[-1]["name_1"] == "lumière vive"
    assert float(rows[0]["score_1"]) + float(rows[0]["score_2"]) == pytest.approx(1.0)

    assert main(["timeline", *common, "--start", "2", "--end", "8"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["windows"][0]["start_frame"] == 60
    assert record["windows"][-1]["end_frame"] <= 240
    assert record["segments"][0]["name"] == "calme nuit"


def test_plot_and_annotated_video(step_video, fake_model, tmp_path) -> None:
    import av

    from slowfast_deploy.cli import main

    names = tmp_path / "names.txt"
    names.write_text("Ωμέγα ночь\ncafé ñandú\n", encoding="utf-8")
    plot, video = tmp_path / "t.png", tmp_path / "a.mp4"
    argv = ["timeline", str(step_video), "--model", str(fake_model), "--label-map", str(names)]
    argv += ["--plot", str(plot), "--annotate", str(video), "--out", str(tmp_path / "t.json")]
    assert main([*argv, "-q"]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.stat().st_size > 10_000
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert not container.streams.audio
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(frames) == 300
    assert frames[0].shape == (48, 64, 3)
    # the label box is drawn on the labelled frames (the top-left corner turns dark + text)
    assert frames[10][:12, :40].std() > frames[10][30:42, 20:60].std()


def test_class_names_are_drawn_with_a_font_that_has_their_glyphs() -> None:
    import matplotlib
    from matplotlib.ft2font import FT2Font

    from slowfast_deploy.timeline.render import draw_label

    font = FT2Font(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"))
    assert all(font.get_char_index(ord(ch)) for ch in "Ωμέγαночьcaféñandú")
    frame = np.full((240, 320, 3), 128, np.uint8)
    draw_label(frame, "Ωμέγα ночь 0.93")
    assert (frame != 128).any()
    assert (frame[240 // 2 :] == 128).all()  # only the box at the top


def test_interrupt_keeps_the_windows_done(step_video, monkeypatch, tmp_path, capsys) -> None:
    from slowfast_deploy.cli import ExitStatus, main

    class Interrupting(BrightnessBackend):
        def run(self, video: np.ndarray) -> np.ndarray:
            if len(self.batches) == 5:
                raise KeyboardInterrupt
            return super().run(video)

    monkeypatch.setattr("slowfast_deploy.cli.timeline.open_model", lambda a: Interrupting())
    model = tmp_path / "fake.onnx"
    model.write_bytes(b"")
    out = tmp_path / "t.json"
    argv = ["timeline", str(step_video), "--model", str(model), "--out", str(out), "-q"]
    assert main(argv) == ExitStatus.INTERRUPTED
    (record,) = json.loads(out.read_text())
    assert record["status"] == "interrupted"
    assert record["windows_done"] == len(record["windows"]) == 5
    assert record["windows_planned"] == 15
    assert "kept the 5 windows" in capsys.readouterr().err


def test_several_videos_in_one_call(step_video, long_video, fake_model, tmp_path) -> None:
    from slowfast_deploy.cli import main

    srt_dir = tmp_path / "srt"
    videos = [str(step_video), str(long_video[0])]
    argv = ["timeline", *videos, "--model", str(fake_model), "--format", "srt", "-q"]
    assert main([*argv, "--out", str(srt_dir)]) == 0
    assert sorted(p.name for p in srt_dir.iterdir()) == ["long.srt", "step.srt"]
    assert parse_srt((srt_dir / "step.srt").read_text())
    out = tmp_path / "all.json"
    argv = ["timeline", *videos, str(tmp_path / "missing.mp4"), "--model", str(fake_model)]
    assert main([*argv, "--out", str(out), "-q"]) == 3  # one failed, the others done
    records = json.loads(out.read_text())
    assert [r["status"] for r in records] == ["ok", "ok", "failed"]
    assert "no such video file" in records[2]["error"]


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--stride", "0"], 2, "--stride must be >= 1"),
        (["--window", "31"], 2, "at least the model's clip length (32 frames)"),
        (["--smooth", "4"], 2, "--smooth must be an odd number"),
        (["--threshold", "1.5"], 2, "--threshold must be a score in 0..1"),
        (["--annotate", "/nonexistent-dir/a.mp4"], 1, "/nonexistent-dir/a.mp4: cannot write"),
        (["--plot", "{tmp}"], 1, "cannot write --plot there (is a directory)"),
    ],
)
def test_bad_arguments_fail_before_any_decoding(
    step_video, fake_model, monkeypatch, tmp_path, capsys, extra, code, message
) -> None:
    from slowfast_deploy.cli import main

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoding started")

    monkeypatch.setattr("slowfast_deploy.timeline.run.open_video", no_decoding)
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    assert main(["timeline", str(step_video), "--model", str(fake_model), *extra]) == code
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


def test_background_decoding_gives_the_same_records_and_forwards_errors(step_video) -> None:
    from slowfast_deploy.timeline.run import _in_background

    runs = []
    for prefetch in (0, 3):
        with TimelineRun(
            step_video, BrightnessBackend(), WindowPlan(64, 32), prefetch=prefetch
        ) as run:
            runs.append([(r.index, r.start_s, r.scores.tolist()) for r in run])
    assert runs[0] == runs[1]

    def failing():
        yield 1
        raise ValueError("frame 7 is corrupt")

    items = _in_background(failing(), 2)
    assert next(items) == 1
    with pytest.raises(ValueError, match="frame 7 is corrupt"):
        next(items)


def test_closing_early_stops_the_decoding_thread(step_video) -> None:
    import threading

    with TimelineRun(step_video, BrightnessBackend(), WindowPlan(64, 16), prefetch=1) as run:
        records = iter(run)
        next(records)
        assert any(t.name == "timeline-decode" for t in threading.enumerate())
    assert not any(t.name == "timeline-decode" for t in threading.enumerate())


def test_the_loop_over_videos_keeps_every_timeline_whatever_stops_it(step_video, tmp_path) -> None:
    from slowfast_deploy.timeline.videos import TimelineOptions, Timelines

    class Interrupting(BrightnessBackend):
        def run(self, video: np.ndarray) -> np.ndarray:
            if len(self.batches) == 20:  # the second video's fifth window
                raise KeyboardInterrupt
            return super().run(video)

    videos = [step_video, tmp_path / "missing.mp4", step_video]
    seen: list[tuple[str, int]] = []

    def windows(timeline, records):  # type: ignore[no-untyped-def]
        seen.append((timeline.video, timeline.num_windows))
        return records

    timelines = Timelines(videos, Interrupting(), TimelineOptions(), windows=windows)
    loop = iter(timelines)
    assert [next(loop).status, next(loop).status] == ["ok", "failed"]
    with pytest.raises(KeyboardInterrupt):
        next(loop)
    assert [t.status for t in timelines.timelines] == ["ok", "failed", "interrupted"]
    assert seen == [(str(step_video), 15), (str(step_video), 15)]
    assert timelines.num_windows == 15 + 5
    records = json.loads(timelines.render("json")[0])
    assert [r["windows_done"] for r in records] == [15, 0, 5]
    assert records == json.loads(json.dumps(timelines.to_dicts()))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"start_s": -1.0}, "start_s must be >= 0 seconds"),
        ({"start_s": 5.0, "end_s": 2.0}, "end_s (2.0 s) must be after start_s (5.0 s)"),
        ({"batchsize": 0}, "batchsize must be >= 1"),
        ({"topk": 0}, "topk must be >= 1"),
    ],
)
def test_bad_timeline_options(options, message) -> None:
    from slowfast_deploy.timeline.videos import TimelineOptions

    with pytest.raises(ValueError, match=re.escape(message)):
        TimelineOptions(**options)

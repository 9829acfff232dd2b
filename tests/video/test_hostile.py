"""Hostile files: each one decodes to decord's frames or fails with one plain line and a reason.

The corpus (``hostile_corpus.py``) is generated per session; kinds that need Debian's
``ffmpeg`` (edit list, cover art) skip without it (``test.sh`` installs it).
"""

from __future__ import annotations

import logging
import os
import re
import shutil

import numpy as np
import pytest

from slowfast_deploy.engine.decode import DecodeOptions, VideoJob, decode_job
from slowfast_deploy.errors import VideoDecodeError
from slowfast_deploy.specs import SINGLE_VIEW
from slowfast_deploy.video.decode import open_video
from slowfast_deploy.video.reasons import REASONS, check_path

pytest.importorskip("decord")


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The hostile corpus, built once per session (a few seconds)."""
    pytest.importorskip("av")
    from hostile_corpus import build_corpus

    return build_corpus(tmp_path_factory.mktemp("hostile"))


OK = "frames"
# kind -> outcome per decoder: OK (frames equal to decord's, or PyAV's where only PyAV decodes)
# or the reason code
OUTCOMES = {
    "plain": (OK, OK, OK),
    "rot90": ("unsupported_size", OK, OK),  # decord's get_batch mis-sizes 90-degree frames
    "rot180": (OK, OK, OK),
    "rot270": ("unsupported_size", OK, OK),
    "mirrored": (OK, OK, OK),  # FFmpeg 4.1 reads a mirrored matrix as a 180-degree turn
    "yuv420p10le": (OK, OK, OK),
    "yuv420p10le_bt709": (OK, OK, OK),
    "yuv420p10le_full_range": (OK, OK, OK),
    "yuv420p10le_bt2020": (OK, OK, OK),  # HDR phone video
    "yuv422p10le": (OK, OK, OK),
    "rot90_10bit": (OK, OK, OK),
    "rot90_odd_size": (OK, OK, OK),
    "yuv444p": (OK, OK, OK),
    "yuvj420p": (OK, OK, OK),
    "gray": (OK, OK, OK),
    "vfr_no_rate": (OK, OK, OK),
    "tiny_2x2": ("unsupported_size", OK, OK),
    "resolution_change": (OK, "size_change", OK),
    "second_video_stream": (OK, OK, OK),
    "audio_only": ("no_video_stream",) * 3,
    "truncated": ("truncated",) * 3,
    "truncated_no_index": ("truncated",) * 3,
    "corrupt": ("corrupt",) * 3,
    "not_a_video": ("not_a_video",) * 3,
    "empty": ("not_a_video",) * 3,
    "still_image": ("not_a_video",) * 3,
    "edit_list": (OK, "edit_list", OK),  # PyAV: with --frame-count decoded only
    "cover_art": ("no_video_stream",) * 3,
    "mkv_no_duration": ("unsupported_by_decord", OK, OK),
    "fifo": ("not_regular_file",) * 3,
    "directory": ("not_regular_file",) * 3,
    "missing": ("not_found",) * 3,
}
DECODERS = ("decord", "pyav", "auto")
NOT_PLAIN = re.compile(r"\.cc\b|\.cpp\b|\[\d\d:\d\d:\d\d\]|0x[0-9a-f]{4,}|Check failed|Errno")


def decode(path, decoder, frame_count="container"):
    return decode_job(
        VideoJob(str(path), str(path)), SINGLE_VIEW, DecodeOptions(decoder, frame_count)
    )


@pytest.fixture(scope="module")
def outcomes(hostile):
    return {(kind, d): decode(path, d) for kind, path in hostile.items() for d in DECODERS}


@pytest.mark.parametrize("kind", sorted(OUTCOMES))
def test_outcome_per_decoder(kind, hostile, outcomes):
    if kind not in hostile:
        pytest.skip("needs ffmpeg (test.sh installs it: tools/setup_system.sh)")
    expected = dict(zip(DECODERS, OUTCOMES[kind], strict=True))
    for decoder, outcome in expected.items():
        result = outcomes[kind, decoder]
        if outcome == OK:
            assert result.error is None, (decoder, result.error)
            assert result.info["decoder"] == (
                decoder if decoder != "auto" else ("decord" if expected["decord"] == OK else "pyav")
            )
        else:
            assert result.crops is None
            assert result.info == {"reason": outcome}, (decoder, result.error)
            assert outcome in REASONS
            assert_plain(result.error, hostile[kind])
    if expected["decord"] == OK == expected["pyav"]:
        np.testing.assert_array_equal(
            outcomes[kind, "pyav"].crops, outcomes[kind, "decord"].crops, err_msg=kind
        )


def assert_plain(message, path):
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert not NOT_PLAIN.search(message), message


def test_no_decoder_output_on_stderr(hostile, capfd):
    for kind in ("corrupt", "truncated", "edit_list", "audio_only", "rot90"):
        if kind in hostile:
            for decoder in DECODERS:
                decode(hostile[kind], decoder)
    assert capfd.readouterr().err == ""


def test_decoder_output_is_logged_at_info(hostile, caplog):
    with caplog.at_level(logging.INFO):
        decode(hostile["corrupt"], "decord")
    # decord's own words are kept for -v (its decoder thread may also log after the call)
    assert any("threaded_decoder.cc" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("kind", ["rot90", "rot270"])
def test_pyav_rotation_equals_decords_own_frames(kind, hostile):
    """decord rotates 90/270 correctly but its batch copy fails; its single frames (row stride
    repaired) are the reference the PyAV rotation must equal bit for bit."""
    import decord

    vr = decord.VideoReader(str(hostile[kind]), num_threads=1)
    indices = np.array([0, 7, 21, 39])
    reference = []
    for i in indices.tolist():
        frame = vr[int(i)].asnumpy()
        height, width = frame.shape[:2]
        rows = np.ascontiguousarray(frame).reshape(height, -1)
        reference.append(rows[:, : width * 3].reshape(height, width, 3))
    with open_video(hostile[kind], decoder="pyav") as reader:
        assert (reader.info.width, reader.info.height) == (48, 80)
        got = reader.read(indices)
    np.testing.assert_array_equal(got, np.stack(reference))


@pytest.fixture
def edit_list(hostile):
    if "edit_list" not in hostile:
        pytest.skip("needs ffmpeg (test.sh installs it: tools/setup_system.sh)")
    return hostile["edit_list"]


def test_edit_list_container_count_is_decords(edit_list):
    """mmaction2's count includes the 38 hidden packets; PyAV refuses to guess decord's
    numbering around them and names the two ways out."""
    with open_video(edit_list, decoder="decord") as reader:
        assert (reader.info.num_frames, reader.info.hidden_frames) == (88, 38)
    with open_video(edit_list, decoder="pyav") as reader:
        assert (reader.info.num_frames, reader.info.hidden_frames) == (88, 38)
        with pytest.raises(VideoDecodeError, match="--frame-count decoded") as err:
            reader.read(np.array([0, 60]))
    assert err.value.reason == "edit_list"
    result = decode(edit_list, "auto")
    assert result.info == {"decoder": "decord", "hidden_frames": 38}


def test_edit_list_decoded_count_gives_the_frames_that_play(edit_list):
    import av

    with av.open(str(edit_list)) as container:
        played = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    indices = np.array([0, 17, 49, 3, 30])
    for decoder in ("decord", "pyav"):
        with open_video(edit_list, decoder=decoder, frame_count="decoded") as reader:
            assert (reader.info.num_frames, reader.info.hidden_frames) == (len(played), 38)
            np.testing.assert_array_equal(reader.read(indices), played[indices], err_msg=decoder)
    result = decode(edit_list, "auto", "decoded")
    assert result.info == {"decoder": "decord", "hidden_frames": 38}


def test_on_frame_is_called_per_decoded_frame(hostile):
    for decoder in ("decord", "pyav"):
        calls = []
        result = decode_job(
            VideoJob("p", str(hostile["plain"])),
            SINGLE_VIEW,
            DecodeOptions(decoder),
            on_frame=lambda calls=calls: calls.append(1),
        )
        assert result.error is None
        assert len(calls) >= len(set(result.frame_indices))  # a repeat is decoded once


def test_fifo_is_never_opened(hostile):
    with pytest.raises(VideoDecodeError, match="FIFO") as err:
        check_path(hostile["fifo"])  # opening a FIFO would block here forever
    assert err.value.reason == "not_regular_file"


def test_unreadable_file(hostile, tmp_path):
    """As root (CI), the check runs in a child process that drops to user ``nobody``."""
    import subprocess
    import sys

    path = tmp_path / "locked.mp4"
    shutil.copy(hostile["plain"], path)
    path.chmod(0)
    code = (
        "import sys; from slowfast_deploy.engine.decode import *; "
        "r = decode_job(VideoJob('x', sys.argv[1]), __import__('slowfast_deploy.specs')"
        ".specs.SINGLE_VIEW, DecodeOptions('auto')); print(r.info['reason']); print(r.error)"
    )
    drop = (lambda: os.setuid(65534)) if os.geteuid() == 0 else None
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            preexec_fn=drop,
            check=False,
            timeout=60,
        )
    except PermissionError:
        pytest.skip("user nobody cannot run this Python")
    if done.returncode and "Error" in done.stderr:
        pytest.skip("user nobody cannot import from this virtual environment")
    reason, message = done.stdout.splitlines()
    assert reason == "permission_denied"
    assert_plain(message, path)
    assert done.stderr == ""


def test_diagnosis_beats_the_heartbeat(hostile):
    calls = []
    result = decode_job(
        VideoJob("t", str(hostile["truncated"])),
        SINGLE_VIEW,
        DecodeOptions("auto"),
        on_frame=lambda: calls.append(1),
    )
    assert result.info == {"reason": "truncated"}
    assert len(calls) > 50  # one per packet while the file is looked into


def test_whole_corpus_through_preprocess_prints_only_skipped_lines(hostile, tmp_path, capfd):
    """Worker processes, every hostile file in one list: one ``skipped:`` line per failure."""
    from slowfast_deploy.cli import main

    root = tmp_path / "videos"
    root.mkdir()
    lines = []
    for path in hostile.values():
        if path.is_file():
            (root / path.name).symlink_to(path)
        lines.append(f"{os.path.relpath(path, root)} 0\n")
    ann = tmp_path / "list.txt"
    ann.write_text("".join(lines))
    args = ["-q", "preprocess", "--video-dir", str(root), "--ann-file", str(ann)]
    code = main(
        [*args, "--save-dir", str(tmp_path / "out"), "--decoder", "auto", "--num-workers", "1"]
    )
    err = capfd.readouterr().err.splitlines()
    failing = [k for k in hostile if OUTCOMES[k][2] != OK]
    assert code == 3
    assert len(err) == len(failing), err
    assert all(line.startswith("skipped: ") for line in err), err
    for line in err:
        assert not NOT_PLAIN.search(line), line


def test_reason_survives_a_process_boundary():
    import pickle

    err = pickle.loads(pickle.dumps(VideoDecodeError("x.mp4: truncated", reason="truncated")))
    assert (str(err), err.reason) == ("x.mp4: truncated", "truncated")


def test_annotation_list_as_users_save_it(tmp_path):
    from slowfast_deploy.engine.jobs import read_annotations

    text = "\ufeffwith space.mp4 3\r\n\r\nsub dir/vidéo ünïcode.mp4 1\r\n  \n日本語/名前.mkv\t7\n"
    path = tmp_path / "list.txt"
    path.write_bytes(text.encode("utf-8"))
    got = [(a.path, a.label, a.line) for a in read_annotations(path)]
    assert got == [
        ("with space.mp4", 3, 1),
        ("sub dir/vidéo ünïcode.mp4", 1, 3),
        ("日本語/名前.mkv", 7, 5),
    ]


def test_annotation_list_not_utf8(tmp_path):
    from slowfast_deploy.engine.jobs import read_annotations
    from slowfast_deploy.errors import DataFormatError

    path = tmp_path / "latin1.txt"
    path.write_bytes("vidéo.mp4 1\n".encode("latin-1"))
    with pytest.raises(
        DataFormatError, match=r"latin1\.txt: not UTF-8 text .* save the list as UTF-8"
    ):
        read_annotations(path)


def test_listed_fifo_and_directory_get_their_reason_through_preprocess(hostile, tmp_path, capsys):
    """A list naming a FIFO and a directory: both skipped with their reason, no hang."""
    from slowfast_deploy.cli import main

    root = hostile["plain"].parent
    ann = tmp_path / "list.txt"
    ann.write_bytes(b"\xef\xbb\xbfplain.mp4 1\r\nfifo.mp4 2\r\nfolder.mp4 3\r\n")
    code = main(
        [
            "-q",
            "preprocess",
            "--video-dir",
            str(root),
            "--ann-file",
            str(ann),
            "--save-dir",
            str(tmp_path / "out"),
            "--decoder",
            "auto",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert "fifo.mp4: is a FIFO (named pipe), not a video file" in err
    assert "folder.mp4: is a directory, not a video file" in err
    assert "plain.mp4" not in err


@pytest.mark.parametrize(
    "kind", ["yuv420p10le", "yuv420p10le_bt709", "yuv420p10le_bt2020", "yuv422p10le", "rot90_10bit"]
)
def test_plain_pyav_differs_on_10bit(kind, hostile):
    """The difference ``_swscale41.yuv420p10_to_rgb24`` removes (PyAV's newer FFmpeg)."""
    import av

    if kind not in hostile:
        pytest.skip("needs ffmpeg (test.sh installs it: tools/setup_system.sh)")
    with av.open(str(hostile[kind])) as container:
        plain = next(container.decode(video=0)).to_ndarray(format="rgb24")
    with open_video(hostile[kind], decoder="decord") as reader:
        reference = reader.read(np.array([0]))[0]
    if reference.shape != plain.shape:
        plain = np.rot90(plain, -1)
    assert np.abs(plain.astype(int) - reference).max() > 20


def test_frame_count_flag_reaches_preprocess(edit_list, tmp_path):
    """``--frame-count decoded`` samples from the frames that play; the default, mmaction2's."""
    from slowfast_deploy.cli import main
    from slowfast_deploy.engine.decode import load_views
    from slowfast_deploy.reference.formats import read_bin

    ann = tmp_path / "list.txt"
    ann.write_text(f"{edit_list.name} 0\n")
    bins = {}
    for frame_count in ("container", "decoded"):
        out = tmp_path / frame_count
        args = ["-q", "preprocess", "--video-dir", str(edit_list.parent), "--ann-file", str(ann)]
        assert main([*args, "--save-dir", str(out), "--frame-count", frame_count]) == 0
        bins[frame_count] = read_bin(out / "bin" / "0.bin")[0]
        expected = load_views(edit_list, frame_count=frame_count)
        np.testing.assert_array_equal(bins[frame_count], expected, err_msg=frame_count)
    assert not np.array_equal(bins["container"], bins["decoded"])


@pytest.mark.parametrize("views", [1, 30])
def test_decord_reads_in_small_calls_as_mmaction2_reads_in_one(edit_list, views):
    """Memory-bounded reads equal one ``get_batch`` of all indices (mmaction2's call), even
    on an edit-list cut, where decord's frames depend on the order it reaches them."""
    import decord

    from slowfast_deploy.specs import VIEWS
    from slowfast_deploy.video.sampling import sample_clip_indices

    indices = sample_clip_indices(88, VIEWS[views].clip).reshape(-1)
    reference = decord.VideoReader(str(edit_list), num_threads=1).get_batch(indices.tolist())
    with open_video(edit_list, decoder="decord") as reader:
        np.testing.assert_array_equal(reader.read(indices), reference.asnumpy())

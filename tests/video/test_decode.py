import numpy as np
import pytest

from slowfast_deploy.errors import VideoDecodeError
from slowfast_deploy.video.decode import DECODERS, open_video


@pytest.mark.parametrize("decoder", DECODERS)
def test_exact_frames_any_order_with_repeats(synthetic_video, decoder):
    path, frames = synthetic_video
    indices = np.array([3, 0, 69, 3, 41])
    with open_video(path, decoder=decoder) as reader:
        assert (reader.info.num_frames, reader.info.width, reader.info.height) == (70, 96, 72)
        assert reader.info.fps == pytest.approx(25.0)
        got = reader.read(indices)
    np.testing.assert_array_equal(got, frames[indices])


@pytest.mark.parametrize("decoder", DECODERS)
def test_missing_file(tmp_path, decoder):
    with pytest.raises(VideoDecodeError, match=r"nope\.mp4: no such video file"):
        open_video(tmp_path / "nope.mp4", decoder=decoder)


@pytest.mark.parametrize("decoder", DECODERS)
def test_corrupt_file(tmp_path, decoder):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(VideoDecodeError, match=r"bad\.mp4"), open_video(bad, decoder=decoder) as r:
        r.read(np.array([0]))


@pytest.mark.parametrize("decoder", DECODERS)
def test_index_out_of_range(synthetic_video, decoder):
    with (
        open_video(synthetic_video[0], decoder=decoder) as reader,
        pytest.raises(VideoDecodeError, match=r"outside 0\.\.69"),
    ):
        reader.read(np.array([70]))


def test_unknown_decoder(synthetic_video):
    with pytest.raises(ValueError, match="decoder must be one of"):
        open_video(synthetic_video[0], decoder="ffmpeg")  # type: ignore[arg-type]


def test_pyav_matches_decord_on_odd_sized_yuv420p(tmp_path):
    """decord's FFmpeg 4.1 converts odd-sized frames its own way; PyAV reproduces it exactly."""
    import av

    path = tmp_path / "odd.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 99, 75, "yuv420p"
        for _ in range(6):
            image = rng.integers(0, 256, (75, 99, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    indices = np.arange(6)
    with open_video(path, decoder="decord") as reader:
        reference = reader.read(indices)
    with open_video(path, decoder="pyav") as reader:
        got = reader.read(indices)
    plain = []
    with av.open(str(path)) as container:
        plain = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert np.abs(plain.astype(int) - reference).max() > 10  # the difference being fixed
    np.testing.assert_array_equal(got, reference)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((321, 241, "yuv420p", 2, 0), True),
        ((320, 241, "yuv420p", 2, 0), False),  # even width: not this path
        ((321, 240, "yuv420p", 2, 0), False),
        ((321, 241, "yuv444p", 2, 0), False),
        ((321, 241, "yuv420p", 1, 0), False),  # BT.709
        ((321, 241, "yuv420p", 2, 2), False),  # full range
        ((5, 5, "yuv420p", 2, 0), False),
    ],
)
def test_swscale41_applies_only_where_it_is_exact(args, expected):
    from slowfast_deploy.video import _swscale41

    assert _swscale41.applies(*args) is expected

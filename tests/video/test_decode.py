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

import numpy as np
import pytest

from slowfast_deploy.specs import ClipSpec
from slowfast_deploy.video.sampling import sample_clip_indices

ONE = ClipSpec()
TEN = ClipSpec(num_clips=10)


@pytest.mark.parametrize(
    ("num_frames", "expected"),
    [
        (300, list(range(118, 182, 2))),  # offset (300 - 63) // 2 = 118
        (64, list(range(0, 64, 2))),  # offset 0
        (65, list(range(1, 65, 2))),  # offset 1
        (48, list(range(0, 48, 2)) + list(range(0, 16, 2))),  # wraps
        (32, list(range(0, 32, 2)) * 2),
        (20, list(range(0, 20, 2)) * 3 + [0, 2]),
        (1, [0] * 32),
    ],
)
def test_single_clip_table(num_frames, expected):
    assert sample_clip_indices(num_frames, ONE).tolist() == [expected]


def test_ten_clips_use_mmaction2_1x_rounded_offsets():
    # offsets round(i * (280 - 63) / 9) = 0, 24, 48, 72, 96, 121, 145, 169, 193, 217
    got = sample_clip_indices(280, TEN)
    assert got.shape == (10, 32)
    assert got[:, 0].tolist() == [0, 24, 48, 72, 96, 121, 145, 169, 193, 217]
    assert (np.diff(got, axis=1) == 2).all()


def test_ten_clips_short_video_all_start_at_zero():
    got = sample_clip_indices(40, TEN)
    assert (got == (np.arange(32) * 2 % 40)).all()


def test_rejects_empty_video():
    with pytest.raises(ValueError, match="num_frames"):
        sample_clip_indices(0, ONE)

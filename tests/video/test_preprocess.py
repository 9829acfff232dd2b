import cv2
import numpy as np
import pytest

from slowfast_deploy.specs import SINGLE_VIEW, THIRTY_VIEW
from slowfast_deploy.video.preprocess import (
    crop_offsets,
    normalize_to_ncthw,
    preprocess_clips,
    resized_size,
)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((321, 241), (341, 256)),
        ((640, 480), (341, 256)),
        ((1280, 720), (455, 256)),
        ((160, 120), (341, 256)),
        ((340, 256), (340, 256)),
        ((256, 340), (256, 340)),
        ((320, 240), (341, 256)),
    ],
)
def test_resized_size_mmcv_rounding(size, expected):
    assert resized_size(*size, 256) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((341, 256, 224, 1), [(58, 16)]),
        ((340, 256, 256, 3), [(0, 0), (84, 0), (42, 0)]),
        ((256, 341, 256, 3), [(0, 0), (0, 84), (0, 42)]),
        ((256, 256, 256, 3), [(0, 0), (0, 0), (0, 0)]),
    ],
)
def test_crop_offsets(args, expected):
    assert crop_offsets(*args) == expected


def test_crop_smaller_than_frame_is_rejected():
    with pytest.raises(ValueError, match="smaller than crop"):
        crop_offsets(200, 100, 224, 1)


def test_single_view_pipeline_matches_hand_computation():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (32, 60, 80, 3), dtype=np.uint8)
    got = preprocess_clips(frames, 1, SINGLE_VIEW.preprocess)
    assert got.shape == (1, 3, 32, 224, 224)
    assert got.dtype == np.float32
    resized = cv2.resize(frames[5], (341, 256), interpolation=cv2.INTER_LINEAR)
    crop = resized[16:240, 58:282].astype(np.float32)
    mean = np.array([123.675, 116.28, 103.53], np.float32)
    std = np.array([58.395, 57.12, 57.375], np.float32)
    np.testing.assert_array_equal(got[0, :, 5], ((crop - mean) / std).transpose(2, 0, 1))


def test_thirty_views_are_crop_major():
    frames = np.zeros((320, 256, 300, 3), dtype=np.uint8)
    frames[:, :, :, 0] = (np.arange(320) // 32 * 20).astype(np.uint8)[:, None, None]  # clip id
    frames[:, :, 30:, 1] = 255  # x >= 30 green: only the right crop (x0 = 44) starts there
    views = preprocess_clips(frames, 10, THIRTY_VIEW.preprocess)
    assert views.shape == (30, 3, 32, 256, 256)
    raw = views * np.float32(58.395) + np.float32(123.675)  # red channel back to 0-255
    first_frame_of_view = np.round(raw[:, 0, 0, 0, 0]).astype(int)
    assert first_frame_of_view.tolist() == [20 * c for c in range(10)] * 3
    green_right = views[:, 1, 0, 0, 0] > 0
    assert green_right.tolist() == [False] * 10 + [True] * 10 + [False] * 10  # left, right, center


def test_normalize_layout():
    crops = np.full((2, 4, 8, 8, 3), 200, dtype=np.uint8)
    out = normalize_to_ncthw(crops, SINGLE_VIEW.preprocess)
    assert out.shape == (2, 3, 4, 8, 8)
    assert out[0, 2, 0, 0, 0] == pytest.approx((200 - 103.53) / 57.375, rel=1e-6)

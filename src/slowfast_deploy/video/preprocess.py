"""Test-time preprocessing in numpy + OpenCV, bit-exact with mmaction2/mmcv.

Sources (mmaction2 ``Resize``/``CenterCrop``/``ThreeCrop``/``FormatShape``, mmcv ``rescale_size``
and ``imresize``), re-implemented:

- resize: scale = min(inf / long, short_side / short); new = int(size * scale + 0.5) per side,
  ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)`` (mmcv ``imresize`` 'bilinear');
- center crop: left = (w - crop) // 2, top = (h - crop) // 2;
- three crop: the crop spans the short side; offsets (0, 2*step, step) along the long side,
  in mmaction2's order left/top, right/bottom, center;
- normalize: float32 ``(x - mean) / std`` in 0-255 units, RGB;
- layout: views stacked as ``[V, 3, T, H, W]`` (NCTHW per view).
"""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.specs import PreprocessSpec


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """``(new_width, new_height)`` with mmcv's rounding; e.g. 320x240 -> 341x256."""
    scale = min(float("inf") / max(width, height), short_side / min(width, height))
    return int(width * float(scale) + 0.5), int(height * float(scale) + 0.5)


def resize_short_side(frames_thwc: NDArray[np.uint8], short_side: int) -> NDArray[np.uint8]:
    """Resize every frame so its short side is ``short_side`` (cv2 bilinear, mmcv rounding)."""
    height, width = frames_thwc.shape[1:3]
    if resized_size(width, height, short_side) == (width, height):
        return frames_thwc  # cv2.resize to the same size copies the input unchanged
    return np.stack([resize_frame(f, short_side) for f in frames_thwc])


def resize_frame(frame_hwc: NDArray[np.uint8], short_side: int) -> NDArray[np.uint8]:
    """One frame of ``resize_short_side``: mmaction2 resizes frame by frame, so resizing each
    frame as it is decoded gives the same bytes while holding no full-size clip."""
    height, width = frame_hwc.shape[:2]
    size = resized_size(width, height, short_side)
    if size == (width, height):
        return frame_hwc
    return cast(NDArray[np.uint8], cv2.resize(frame_hwc, size, interpolation=cv2.INTER_LINEAR))


def crop_offsets(width: int, height: int, crop_size: int, num_crops: int) -> list[tuple[int, int]]:
    """``(left, top)`` of each crop: CenterCrop for 1, mmaction2 ThreeCrop order for 3."""
    if width < crop_size or height < crop_size:
        raise ValueError(f"frame {width}x{height} is smaller than crop {crop_size}")
    if num_crops == 1:
        return [((width - crop_size) // 2, (height - crop_size) // 2)]
    if num_crops != 3:
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
    if crop_size == height:
        step = (width - crop_size) // 2
        return [(0, 0), (2 * step, 0), (step, 0)]
    if crop_size == width:
        step = (height - crop_size) // 2
        return [(0, 0), (0, 2 * step), (0, step)]
    raise ValueError(
        f"ThreeCrop({crop_size}) needs a side equal to the crop; frame {width}x{height}"
    )


def crop_views(frames_thwc: NDArray[np.uint8], spec: PreprocessSpec) -> NDArray[np.uint8]:
    """Resize + crop: ``[T, H, W, 3]`` -> ``[num_crops, T, crop, crop, 3]`` uint8."""
    resized = resize_short_side(frames_thwc, spec.short_side)
    height, width = resized.shape[1:3]
    size = spec.crop_size
    return np.stack(
        [
            resized[:, top : top + size, left : left + size]
            for left, top in crop_offsets(width, height, size, spec.num_crops)
        ]
    )


def normalize_to_ncthw(crops_vthwc: NDArray[np.uint8], spec: PreprocessSpec) -> NDArray[np.float32]:
    """``[V, T, H, W, 3]`` uint8 -> ``[V, 3, T, H, W]`` float32, ``(x - mean) / std``.

    The layout change is done on uint8 (4x less memory traffic), then the float32 subtract
    and divide run in place: the same operations as mmaction2's, so bit-identical values.
    """
    channels_first = np.ascontiguousarray(crops_vthwc.transpose(0, 4, 1, 2, 3))
    out = channels_first.astype(np.float32)
    out -= np.asarray(spec.mean_rgb_255, dtype=np.float32)[None, :, None, None, None]
    out /= np.asarray(spec.std_rgb_255, dtype=np.float32)[None, :, None, None, None]
    return out


def crop_clips(
    frames_thwc: NDArray[np.uint8], num_clips: int, spec: PreprocessSpec
) -> NDArray[np.uint8]:
    """Decoded frames of all clips (clip-major) -> uint8 views ``[V, T, S, S, 3]``.

    Views are ordered crop-major, clip-minor, as mmaction2 ``FormatShape('NCTHW')`` orders them.
    """
    crops = crop_views(frames_thwc, spec)  # [crops, clips*T, S, S, 3]
    num_crops, total = crops.shape[:2]
    if total % num_clips:
        raise ValueError(f"{total} frames do not split into {num_clips} clips")
    return crops.reshape(num_crops * num_clips, total // num_clips, *crops.shape[2:])


def preprocess_clips(
    frames_thwc: NDArray[np.uint8], num_clips: int, spec: PreprocessSpec
) -> NDArray[np.float32]:
    """Decoded frames of all clips (clip-major) -> model views ``[V, 3, T, H, W]`` float32."""
    return normalize_to_ncthw(crop_clips(frames_thwc, num_clips, spec), spec)

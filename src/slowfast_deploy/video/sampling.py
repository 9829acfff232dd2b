"""mmaction2 ``SampleFrames`` in test mode, as a pure function.

Source: mmaction2 1.x ``mmaction/datasets/transforms/loading.py`` (``SampleFrames._get_test_clips``
and ``SampleFrames.transform``), Apache-2.0, re-implemented here:

    ori_clip_len = (clip_len - 1) * frame_interval + 1
    max_offset   = max(num_frames - ori_clip_len, 0)
    offsets      = [max_offset // 2]                                  if num_clips == 1
                 = round(arange(num_clips) * max_offset / (num_clips - 1))  otherwise
    indices      = (offset + arange(clip_len) * frame_interval) mod num_frames   # 'loop'

For one clip this equals mmaction2 0.x's formula; numpy's round-half-to-even is kept.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.specs import ClipSpec


def sample_clip_indices(num_frames: int, clip: ClipSpec) -> NDArray[np.int64]:
    """Frame indices of every test clip, shape ``[num_clips, clip_len]``, clip-major.

    >>> sample_clip_indices(48, ClipSpec())[0, -3:].tolist()
    [10, 12, 14]
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    ori_clip_len = (clip.clip_len - 1) * clip.frame_interval + 1
    max_offset = max(num_frames - ori_clip_len, 0)
    if clip.num_clips == 1:
        offsets = np.array([max_offset // 2], dtype=np.float64)
    else:
        offsets = np.round(np.arange(clip.num_clips) * (max_offset / (clip.num_clips - 1)))
    steps = np.arange(clip.clip_len) * clip.frame_interval
    indices = offsets.astype(np.int64)[:, None] + steps[None, :]
    wrapped: NDArray[np.int64] = np.mod(indices, num_frames).astype(np.int64)
    return wrapped

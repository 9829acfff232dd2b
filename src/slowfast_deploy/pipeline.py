"""Video -> model views -> scores: the one preprocessing path shared by every command."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.runtime.base import Backend, run_batched, to_probs
from slowfast_deploy.specs import SINGLE_VIEW, ViewSpec
from slowfast_deploy.video.decode import Decoder, VideoInfo, open_video
from slowfast_deploy.video.preprocess import preprocess_clips
from slowfast_deploy.video.sampling import sample_clip_indices


@dataclass(frozen=True, slots=True)
class VideoViews:
    """One video's model input: ``views`` is ``[V, 3, T, H, W]`` float32."""

    path: str
    views: NDArray[np.float32]
    frame_indices: NDArray[np.int64]  # [num_clips, clip_len]
    info: VideoInfo
    decode_ms: float
    preprocess_ms: float


def load_views(
    path: str | os.PathLike[str], views: ViewSpec = SINGLE_VIEW, *, decoder: Decoder = "decord"
) -> VideoViews:
    """Decode, sample and preprocess one video exactly as mmaction2's test pipeline does."""
    t0 = time.perf_counter()
    with open_video(path, decoder=decoder) as reader:
        indices = sample_clip_indices(reader.info.num_frames, views.clip)
        frames = reader.read(indices.reshape(-1))
        info = reader.info
    t1 = time.perf_counter()
    data = preprocess_clips(frames, views.clip.num_clips, views.preprocess)
    t2 = time.perf_counter()
    return VideoViews(str(path), data, indices, info, (t1 - t0) * 1e3, (t2 - t1) * 1e3)


def score_views(backend: Backend, batch: NDArray[np.float32]) -> NDArray[np.float32]:
    """``[N, V, 3, T, H, W]`` -> ``[N, classes]``: softmax per view, averaged over views.

    This is mmaction2's ``average_clips='prob'``; with one view it is the plain softmax.
    """
    n, v = batch.shape[:2]
    one_view_each = batch.reshape(n * v, 1, *batch.shape[2:])  # the model's [N, 1, ...] contract
    probs = to_probs(run_batched(backend, one_view_each), backend.output_kind)
    return probs.reshape(n, v, -1).mean(axis=1, dtype=np.float32)

"""Video -> views -> scores: the one preprocessing path shared by every command.

``decode_job`` (decode, sample, resize, crop -> uint8 views) runs in worker processes for
streaming and preprocessing; ``load_views`` is the same plus normalisation, for one video.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.errors import SlowFastDeployError, VideoDecodeError
from slowfast_deploy.runtime.base import Backend, run_batched, to_probs
from slowfast_deploy.specs import SINGLE_VIEW, ViewSpec
from slowfast_deploy.video.decode import Decoder, open_video
from slowfast_deploy.video.preprocess import crop_clips, normalize_to_ncthw
from slowfast_deploy.video.sampling import sample_clip_indices


@dataclass(frozen=True, slots=True)
class VideoJob:
    key: str  # identifies the video in results (e.g. list index and path)
    path: str
    label: int | None = None


FrameCount = Literal["container", "decoded"]


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """How videos are decoded; recorded in run headers, the same for every video of a run."""

    decoder: Decoder = "decord"
    # "container": mmaction2's count (decord's len), the exact reference; "decoded": the
    # frames that actually play (edit lists honoured)
    frame_count: FrameCount = "container"


@dataclass(frozen=True, slots=True)
class DecodedVideo:
    job: VideoJob
    crops: NDArray[np.uint8] | None  # [V, T, S, S, 3]; None when failed
    error: str | None
    frame_indices: list[int] = field(default_factory=list)
    decode_ms: float = 0.0
    preprocess_ms: float = 0.0
    # per-video facts for the results record (JSON-able): e.g. the decoder actually used,
    # a machine-readable failure reason code
    info: dict[str, Any] = field(default_factory=dict)


def decode_job(
    job: VideoJob,
    views: ViewSpec,
    options: DecodeOptions,
    *,
    on_frame: Callable[[], None] | None = None,
) -> DecodedVideo:
    """Decode + sample + resize/crop one video; a failure is returned, never raised.

    ``on_frame`` is called as decoding makes progress (a heartbeat for stall detection).
    """
    decoder = options.decoder
    try:
        t0 = time.perf_counter()
        if on_frame is not None:
            on_frame()
        with open_video(job.path, decoder=decoder) as reader:
            indices = sample_clip_indices(reader.info.num_frames, views.clip)
            frames = reader.read(indices.reshape(-1))
        if on_frame is not None:
            on_frame()
        t1 = time.perf_counter()
        crops = crop_clips(frames, views.clip.num_clips, views.preprocess)
        t2 = time.perf_counter()
    except (SlowFastDeployError, ValueError) as err:
        return DecodedVideo(job, None, str(err))
    except Exception as err:  # a decoder crash inside one video must not stop a run
        return DecodedVideo(job, None, f"{job.path}: {type(err).__name__}: {err}")
    return DecodedVideo(
        job, crops, None, indices.reshape(-1).tolist(), (t1 - t0) * 1e3, (t2 - t1) * 1e3
    )


def load_views(
    path: str | os.PathLike[str],
    views: ViewSpec = SINGLE_VIEW,
    *,
    decoder: Decoder = "decord",
    frame_count: FrameCount = "container",
) -> NDArray[np.float32]:
    """One video's model input ``[V, 3, T, H, W]`` float32, as mmaction2's test pipeline
    makes it; raises ``VideoDecodeError`` if the video cannot be decoded."""
    options = DecodeOptions(decoder, frame_count)
    decoded = decode_job(VideoJob(str(path), str(path)), views, options)
    if decoded.crops is None:
        raise VideoDecodeError(decoded.error or f"{path}: cannot be decoded")
    return normalize_to_ncthw(decoded.crops, views.preprocess)


def score_views(backend: Backend, batch: NDArray[np.float32]) -> NDArray[np.float32]:
    """``[N, V, 3, T, H, W]`` -> ``[N, classes]``: softmax per view, averaged over views.

    This is mmaction2's ``average_clips='prob'``; with one view it is the plain softmax.
    """
    n, v = batch.shape[:2]
    one_view_each = batch.reshape(n * v, 1, *batch.shape[2:])  # the model's [N, 1, ...] contract
    probs = to_probs(run_batched(backend, one_view_each), backend.output_kind)
    return probs.reshape(n, v, -1).mean(axis=1, dtype=np.float32)

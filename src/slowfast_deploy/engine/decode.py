"""Video -> uint8 views: the one decoding and preprocessing path shared by every command.

``decode_job`` (decode, sample, resize, crop -> uint8 views) runs in worker processes for
streaming and preprocessing; ``load_views`` is the same plus normalisation, for one video.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.engine.base import DecodedVideo, DecodeOptions, VideoFacts, VideoJob
from slowfast_deploy.errors import Reason, SlowFastDeployError, VideoDecodeError
from slowfast_deploy.specs import SINGLE_VIEW, ViewSpec
from slowfast_deploy.video.decode import Decoder, FrameCount, read_frames
from slowfast_deploy.video.preprocess import crop_clips, normalize_to_ncthw, resize_frame
from slowfast_deploy.video.sampling import sample_clip_indices


def decode_job(
    job: VideoJob,
    views: ViewSpec,
    options: DecodeOptions,
    *,
    on_frame: Callable[[], None] | None = None,
) -> DecodedVideo:
    """Decode + sample + resize/crop one video; a failure is returned, never raised.

    Each frame is resized as it is decoded (mmaction2 resizes frame by frame: same bytes), so
    a 4K video with 30 views never holds its 320 frames at full size. ``on_frame`` is called
    once per decoded frame (a heartbeat for stall detection). ``info`` holds the decoder that
    made the frames, hidden frames and rotation if any; a failure has its ``reason``.
    """
    short_side = views.preprocess.short_side
    try:
        t0 = time.perf_counter()
        if on_frame is not None:
            on_frame()
        frames, indices, info = read_frames(
            job.path,
            lambda num_frames: sample_clip_indices(num_frames, views.clip).reshape(-1),
            decoder=options.decoder,
            frame_count=options.frame_count,
            transform=lambda frame: resize_frame(frame, short_side),
            on_frame=on_frame,
        )
        t1 = time.perf_counter()
        crops = crop_clips(frames, views.clip.num_clips, views.preprocess)
        t2 = time.perf_counter()
    except VideoDecodeError as err:
        return DecodedVideo(job, None, str(err), reason=err.reason)
    except (SlowFastDeployError, ValueError) as err:
        return DecodedVideo(job, None, f"{job.path}: {err}", reason=Reason.INVALID)
    except Exception as err:  # a decoder crash inside one video must not stop a run
        message = f"{job.path}: the decoder crashed ({type(err).__name__}: {err})"
        return DecodedVideo(job, None, message, reason=Reason.DECODER_CRASH)
    return DecodedVideo(
        job,
        crops,
        None,
        indices.tolist(),
        (t1 - t0) * 1e3,
        (t2 - t1) * 1e3,
        info=VideoFacts(**info),
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


def decode_inline(
    jobs: Iterable[VideoJob], views: ViewSpec, options: DecodeOptions
) -> Iterator[DecodedVideo]:
    """``decode_job`` over ``jobs`` in this process (``num_workers=0``)."""
    for job in jobs:
        yield decode_job(job, views, options)


def decoder_reusable(used: str, flag: str, file_flag: str) -> bool:
    """Would ``--decoder flag`` make the frames that decoder ``used`` made? ``auto`` takes
    decord's frames, and PyAV's only from an earlier ``auto`` run (its per-video fallback).

    >>> decoder_reusable("decord", "auto", "decord"), decoder_reusable("pyav", "auto", "pyav")
    (True, False)
    """
    if flag == "auto":
        return used == "decord" or (used == "pyav" and file_flag == "auto")
    return used == flag

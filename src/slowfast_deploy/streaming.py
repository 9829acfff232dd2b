"""Videos straight to scores: decode in worker processes while the model runs.

Decoders (``engine.pool``, or Ray tasks) return uint8 crops (4x smaller than float input);
``score_stream`` normalises, batches views across videos (``batchsize`` views per model call),
averages each video's view probabilities and yields one ``VideoResult`` per video, in arrival
order.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.errors import ModelFormatError
from slowfast_deploy.pipeline import DecodedVideo, DecodeOptions, VideoJob, decode_job
from slowfast_deploy.runtime.base import Backend, check_input_shape, run_batched, to_probs
from slowfast_deploy.specs import ViewSpec
from slowfast_deploy.video.preprocess import normalize_to_ncthw


@dataclass(frozen=True, slots=True)
class VideoResult:
    job: VideoJob
    scores: NDArray[np.float32] | None  # [classes], softmax averaged over views
    error: str | None
    num_views: int = 0
    decode_ms: float = 0.0
    preprocess_ms: float = 0.0
    infer_ms: float = 0.0  # this video's share of model time
    # per-video facts for the record: decoder used, failure reason code, retries, node, ...
    info: dict[str, Any] = field(default_factory=dict)


def decode_inline(
    jobs: Iterable[VideoJob], views: ViewSpec, options: DecodeOptions
) -> Iterator[DecodedVideo]:
    """``decode_job`` over ``jobs`` in this process (``--num-workers 0``)."""
    for job in jobs:
        yield decode_job(job, views, options)


def score_stream(
    decoded: Iterable[DecodedVideo], backend: Backend, views: ViewSpec, *, batchsize: int
) -> Iterator[VideoResult]:
    """Batch views across videos, ``batchsize`` per model call; yield videos as they finish."""
    if batchsize < 1:
        raise ValueError(f"batchsize must be >= 1, got {batchsize}")
    queue: deque[tuple[int, NDArray[np.uint8]]] = deque()  # (video slot, one view's crops)
    open_videos: dict[int, dict] = {}  # slot -> accumulating state
    order: deque[int] = deque()  # slots in arrival order, to yield in list order

    def run_queue(limit: int) -> None:
        take = [queue.popleft() for _ in range(min(limit, len(queue)))]
        crops = np.stack([c for _, c in take])  # [B, T, S, S, 3]
        video = normalize_to_ncthw(crops, views.preprocess)[:, None]  # [B, 1, 3, T, S, S]
        t0 = time.perf_counter()
        probs = to_probs(run_batched(backend, video), backend.output_kind)
        share = (time.perf_counter() - t0) * 1e3 / len(take)
        for (s, _), p in zip(take, probs, strict=True):
            state = open_videos[s]
            state["sum"] = p.astype(np.float64) if state["sum"] is None else state["sum"] + p
            state["done"] += 1
            state["infer_ms"] += share

    def finished() -> Iterator[VideoResult]:
        while order:
            state = open_videos[order[0]]
            if state["item"].crops is not None and state["done"] < state["views"]:
                return
            del open_videos[order.popleft()]
            item: DecodedVideo = state["item"]
            if item.crops is None:
                yield VideoResult(item.job, None, item.error, info=item.info)
            else:
                scores = (state["sum"] / state["views"]).astype(np.float32)
                yield VideoResult(
                    item.job,
                    scores,
                    None,
                    state["views"],
                    item.decode_ms,
                    item.preprocess_ms,
                    state["infer_ms"],
                    item.info,
                )

    for slot, item in enumerate(decoded):
        views_here = 0 if item.crops is None else item.crops.shape[0]
        open_videos[slot] = {
            "item": item,
            "sum": None,
            "done": 0,
            "views": views_here,
            "infer_ms": 0.0,
        }
        order.append(slot)
        if item.crops is not None:
            queue.extend((slot, view) for view in item.crops)
        while len(queue) >= batchsize:
            run_queue(batchsize)
        yield from finished()
    while queue:
        run_queue(batchsize)
    yield from finished()


def check_model_views(backend: Backend, views: ViewSpec) -> None:
    """Stop before any decoding if the model cannot take this protocol's crops."""
    size, clip_len = views.preprocess.crop_size, views.clip.clip_len
    declared = backend.input_shape
    if len(declared) == 6 and any(d not in (None, size) for d in declared[4:]):
        raise ModelFormatError(
            f"{backend.info.model_path}: takes {declared[4]}x{declared[5]} crops but "
            f"{views.num_views} view(s) make {size}x{size} crops; for --views 30 export with "
            "--dynamic-hw"
        )
    check_input_shape(declared, (1, 1, 3, clip_len, size, size), model_path=backend.info.model_path)


def prefetch_for(batchsize: int, views: ViewSpec, num_workers: int) -> int:
    """Decoded videos to hold ahead: one full batch, plus one in flight per worker."""
    return max(2, num_workers * 2, -(-batchsize // views.num_views) + num_workers)

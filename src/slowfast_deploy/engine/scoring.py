"""Views -> scores: one model call for many views, one view average, one top-k.

Decoders (``pool``, or Ray tasks) return uint8 crops (4x smaller than float input);
``score_stream`` normalises (``runtime.base.model_input``: a uint8-input model gets the
bytes), batches views across videos (``batchsize`` views per model call),
averages each video's view probabilities and yields one ``VideoResult`` per video, in arrival
order. ``score_views`` does the same for inputs already normalised (timeline windows, live
streams). Both average with ``ViewMean`` and every ranking of classes goes through ``top_k``,
so ``predict``, ``evaluate``, the results file, ``timeline``, ``watch`` and ``report`` agree.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypedDict

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.engine.base import DecodedVideo, VideoResult
from slowfast_deploy.errors import ModelFormatError
from slowfast_deploy.runtime.base import (
    Backend,
    ModelInput,
    check_input_shape,
    input_dtype_of,
    model_input,
    run_batched,
    to_probs,
)
from slowfast_deploy.specs import ViewSpec


def top_k(scores: NDArray[np.floating], k: int) -> NDArray[np.int64]:
    """The ``k`` best classes of one score row, best first; ties: the lower class index first.

    The one ranking of the package (a stable sort of ``-scores``), so tied scores rank the
    same in every output.

    >>> top_k(np.array([0.1, 0.4, 0.1, 0.4]), 3).tolist()
    [1, 3, 0]
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return np.argsort(-np.asarray(scores), kind="stable")[:k].astype(np.int64)


_TopClassRequired = TypedDict("_TopClassRequired", {"class": int, "score": float})


class TopClassDict(_TopClassRequired, total=False):
    """``TopClass.to_dict()``: ``{"class", "score"}`` and ``"name"`` when the class has one."""

    name: str


class TopClass(NamedTuple):
    """One of the best classes of a video or window: ``(class_index, name or None, score)``.

    A tuple (``c, name, score = p.top1``); ``to_dict()`` is its JSON in ``predict``,
    ``evaluate``'s results lines and ``serve``. (``class_index``, not ``index``: a field
    named ``index`` would hide ``tuple.index``.)
    """

    class_index: int
    name: str | None
    score: float

    def to_dict(self) -> TopClassDict:
        entry: TopClassDict = {"class": self.class_index, "score": self.score}
        if self.name is not None:
            entry["name"] = self.name
        return entry


def top_classes(
    scores: NDArray[np.floating], k: int, *, names: Sequence[str] | None = None
) -> tuple[TopClass, ...]:
    """The ``k`` best classes of one score row (``top_k``), named by ``names`` if given.

    >>> top_classes(np.array([0.1, 0.5, 0.4]), 2, names=["a", "b", "c"])
    (TopClass(class_index=1, name='b', score=0.5), TopClass(class_index=2, name='c', score=0.4))
    """
    return tuple(
        TopClass(int(c), names[c] if names is not None else None, float(scores[c]))
        for c in top_k(scores, k)
    )


class ViewMean:
    """mmaction2's ``average_clips='prob'``: the mean of a video's per-view softmax scores.

    Views may arrive in different model calls; they are summed in float64 in arrival order and
    the mean is returned as float32 (with one view: that view's scores, exactly).
    """

    __slots__ = ("_sum", "count")

    def __init__(self) -> None:
        self._sum: NDArray[np.float64] | None = None
        self.count = 0

    def add(self, probs: NDArray[np.float32]) -> None:
        """One view's probabilities ``[classes]``."""
        row = probs.astype(np.float64)
        self._sum = row if self._sum is None else self._sum + row
        self.count += 1

    def mean(self) -> NDArray[np.float32]:
        if self._sum is None:
            raise ValueError("no views were added")
        return (self._sum / self.count).astype(np.float32)


def score_views(backend: Backend, batch: ModelInput) -> NDArray[np.float32]:
    """``[N, V, 3, T, H, W]`` -> ``[N, classes]``: softmax per view, averaged over views.

    This is mmaction2's ``average_clips='prob'`` (``ViewMean``); with one view it is the
    plain softmax.
    """
    n, v = batch.shape[:2]
    one_view_each = batch.reshape(n * v, 1, *batch.shape[2:])  # the model's [N, 1, ...] contract
    probs = to_probs(run_batched(backend, one_view_each), backend.output_kind).reshape(n, v, -1)
    out = np.empty((n, probs.shape[-1]), dtype=np.float32)
    for i in range(n):
        mean = ViewMean()
        for view in probs[i]:
            mean.add(view)
        out[i] = mean.mean()
    return out


@dataclass(slots=True)
class _OpenVideo:
    item: DecodedVideo
    views: int
    mean: ViewMean
    infer_ms: float = 0.0


def score_stream(
    decoded: Iterable[DecodedVideo], backend: Backend, views: ViewSpec, *, batchsize: int
) -> Iterator[VideoResult]:
    """Batch views across videos, ``batchsize`` per model call; yield videos as they finish."""
    if batchsize < 1:
        raise ValueError(f"batchsize must be >= 1, got {batchsize}")
    queue: deque[tuple[int, NDArray[np.uint8]]] = deque()  # (video slot, one view's crops)
    open_videos: dict[int, _OpenVideo] = {}
    order: deque[int] = deque()  # slots in arrival order, to yield in list order

    def run_queue(limit: int) -> None:
        take = [queue.popleft() for _ in range(min(limit, len(queue)))]
        crops = np.stack([c for _, c in take])  # [B, T, S, S, 3]
        # [B, 1, 3, T, S, S]: normalised float32, or the bytes for a uint8-input model
        video = model_input(crops, views.preprocess, input_dtype_of(backend))[:, None]
        t0 = time.perf_counter()
        probs = to_probs(run_batched(backend, video), backend.output_kind)
        share = (time.perf_counter() - t0) * 1e3 / len(take)
        for (s, _), p in zip(take, probs, strict=True):
            state = open_videos[s]
            state.mean.add(p)
            state.infer_ms += share

    def finished() -> Iterator[VideoResult]:
        while order:
            state = open_videos[order[0]]
            if state.item.crops is not None and state.mean.count < state.views:
                return
            del open_videos[order.popleft()]
            item = state.item
            if item.crops is None:
                yield VideoResult(item.job, None, item.error, info=item.info, reason=item.reason)
            else:
                yield VideoResult(
                    item.job,
                    state.mean.mean(),
                    None,
                    state.views,
                    item.decode_ms,
                    item.preprocess_ms,
                    state.infer_ms,
                    item.info,
                )

    for slot, item in enumerate(decoded):
        views_here = 0 if item.crops is None else item.crops.shape[0]
        open_videos[slot] = _OpenVideo(item, views_here, ViewMean())
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
            "--dynamic-hw (or compile --backend torch --dynamic-hw)"
        )
    check_input_shape(declared, (1, 1, 3, clip_len, size, size), model_path=backend.info.model_path)


def prefetch_for(batchsize: int, views: ViewSpec, num_workers: int) -> int:
    """Decoded videos to hold ahead: one full batch, plus one in flight per worker."""
    return max(2, num_workers * 2, -(-batchsize // views.num_views) + num_workers)

"""From window records to labelled segments: smoothing and merging (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.timeline.windows import WindowRecord


@dataclass(frozen=True, slots=True)
class Segment:
    """Consecutive windows with the same smoothed top-1 class, scored at least the threshold.

    Boundaries lie midway between the centres of the windows on either side; the first and
    last segment of a timeline end at the edges of the windows.
    """

    class_index: int
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int  # exclusive
    first_window: int
    last_window: int
    mean_score: float  # mean smoothed score of the class over the segment's windows


def smooth_scores(scores: NDArray[np.float32], k: int) -> NDArray[np.float32]:
    """Centred moving average over ``k`` windows (odd); at the ends, over the windows there are.

    ``scores`` is ``[windows, classes]``; rows of the result still sum to 1.
    """
    if k < 1 or k % 2 == 0:
        raise ValueError(f"smoothing must be an odd number of windows >= 1, got {k}")
    n = scores.shape[0]
    if k == 1 or n == 0:
        return scores.astype(np.float32, copy=True)
    half = k // 2
    csum = np.concatenate(
        [np.zeros((1, scores.shape[1])), np.cumsum(scores, axis=0, dtype=np.float64)]
    )
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    means: NDArray[np.float32] = ((csum[hi] - csum[lo]) / (hi - lo)[:, None]).astype(np.float32)
    return means


def window_boundaries(
    records: Sequence[WindowRecord],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Midpoints between consecutive window centres: ``(frames, seconds)``, each ``[n - 1]``."""
    centres_f = np.array([r.center_frame for r in records], dtype=np.float64)
    centres_s = np.array([r.center_s for r in records], dtype=np.float64)
    return (centres_f[:-1] + centres_f[1:]) / 2, (centres_s[:-1] + centres_s[1:]) / 2


def find_segments(
    records: Sequence[WindowRecord], smoothed: NDArray[np.float32], *, threshold: float = 0.0
) -> list[Segment]:
    """Merge consecutive windows whose smoothed top-1 is the same class and >= ``threshold``."""
    if len(records) != smoothed.shape[0]:
        raise ValueError(f"{len(records)} records but {smoothed.shape[0]} rows of scores")
    if not records:
        return []
    top = smoothed.argmax(axis=1)
    top_score = smoothed[np.arange(len(records)), top]
    mid_f, mid_s = window_boundaries(records)
    segments: list[Segment] = []
    k = 0
    while k < len(records):
        if top_score[k] < threshold:
            k += 1
            continue
        last = k
        while (
            last + 1 < len(records) and top[last + 1] == top[k] and top_score[last + 1] >= threshold
        ):
            last += 1
        segments.append(
            Segment(
                class_index=int(top[k]),
                start_s=records[0].start_s if k == 0 else float(mid_s[k - 1]),
                end_s=records[-1].end_s if last == len(records) - 1 else float(mid_s[last]),
                start_frame=records[0].start_frame if k == 0 else math.ceil(mid_f[k - 1]),
                end_frame=(
                    records[-1].end_frame if last == len(records) - 1 else math.ceil(mid_f[last])
                ),
                first_window=records[k].index,
                last_window=records[last].index,
                mean_score=float(top_score[k : last + 1].mean()),
            )
        )
        k = last + 1
    return segments

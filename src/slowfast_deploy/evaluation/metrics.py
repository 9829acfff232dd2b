"""Pure accuracy metrics on score arrays (mmaction2 ``top_k_accuracy`` semantics).

One accuracy for the package: ``AccuracyCounter`` takes videos one at a time (a streaming
pass over a results file); ``accuracy`` is the same over an array. Classes are ranked by
``engine.scoring.top_k`` (ties: the lower class first), as in every other output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.engine.scoring import top_k


def top_k_hits(
    scores: NDArray[np.floating], labels: NDArray[np.integer], k: int
) -> NDArray[np.bool_]:
    """Per video: is the label among the ``k`` highest scores."""
    return np.array(
        [int(label) in top_k(row, k) for row, label in zip(scores, labels, strict=True)],
        dtype=bool,
    )


def top_k_accuracy(scores: NDArray[np.floating], labels: NDArray[np.integer], k: int) -> float:
    return float(top_k_hits(scores, labels, k).mean())


def confusion_matrix(
    predicted: NDArray[np.integer], labels: NDArray[np.integer], num_classes: int
) -> NDArray[np.int64]:
    """``[num_classes, num_classes]`` counts; row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predicted)), 1)
    return matrix


@dataclass(frozen=True, slots=True)
class Accuracy:
    num_videos: int
    top1_acc: float
    top5_acc: float
    mean_class_acc: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def lines(self) -> str:
        """The reference workflow's console lines (``top1_acc\\t0.7007``), plus mean class."""
        return (
            f"top1_acc\t{self.top1_acc:.4f}\n"
            f"top5_acc\t{self.top5_acc:.4f}\n"
            f"mean_class_accuracy\t{self.mean_class_acc:.4f}\n"
        )


class AccuracyCounter:
    """Top-1, top-5 (top-k for fewer than 5 classes) and mean class accuracy, one video at a
    time. Mean class accuracy averages the classes present in the labels (mmaction2 also
    averages in classes that are only predicted, as zeros; we do not)."""

    def __init__(self) -> None:
        self.num_videos = 0
        self._top1 = 0
        self._top5 = 0
        self._per_class: dict[int, list[int]] = {}  # class -> [hits, videos]

    def add(self, scores: NDArray[np.floating], label: int) -> None:
        """One video's scores ``[classes]`` and its true class."""
        ranked = top_k(scores, min(5, len(scores))).tolist()
        hit1 = ranked[0] == label
        self.num_videos += 1
        self._top1 += hit1
        self._top5 += label in ranked
        counts = self._per_class.setdefault(int(label), [0, 0])
        counts[0] += hit1
        counts[1] += 1

    def result(self) -> Accuracy:
        if not self.num_videos:
            raise ValueError("no videos were counted")
        return Accuracy(
            num_videos=self.num_videos,
            top1_acc=self._top1 / self.num_videos,
            top5_acc=self._top5 / self.num_videos,
            mean_class_acc=float(np.mean([h / n for _, (h, n) in sorted(self._per_class.items())])),
        )


def accuracy(scores: NDArray[np.floating], labels: NDArray[np.integer]) -> Accuracy:
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[0] != len(labels) or not len(labels):
        raise ValueError(f"scores {scores.shape} do not match {len(labels)} labels")
    counter = AccuracyCounter()
    for row, label in zip(scores, labels, strict=True):
        counter.add(row, int(label))
    return counter.result()


def mean_class_accuracy(scores: NDArray[np.floating], labels: NDArray[np.integer]) -> float:
    """Mean over the classes present in ``labels`` of each class's top-1 accuracy."""
    return accuracy(scores, labels).mean_class_acc

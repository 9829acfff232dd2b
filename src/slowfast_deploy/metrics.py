"""Pure accuracy metrics on score arrays (mmaction2 ``top_k_accuracy`` semantics)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray


def top_k_hits(
    scores: NDArray[np.floating], labels: NDArray[np.integer], k: int
) -> NDArray[np.bool_]:
    """Per video: is the label among the ``k`` highest scores (``argsort``, as mmaction2)."""
    top = np.argsort(scores, axis=1)[:, -k:]
    return (top == np.asarray(labels)[:, None]).any(axis=1)


def top_k_accuracy(scores: NDArray[np.floating], labels: NDArray[np.integer], k: int) -> float:
    return float(top_k_hits(scores, labels, k).mean())


def mean_class_accuracy(scores: NDArray[np.floating], labels: NDArray[np.integer]) -> float:
    """Mean over the classes present in ``labels`` of each class's top-1 accuracy.

    (mmaction2 also averages in classes that are only predicted, as zeros; we do not.)
    """
    labels = np.asarray(labels)
    hits = np.argmax(scores, axis=1) == labels
    classes = np.unique(labels)
    return float(np.mean([hits[labels == c].mean() for c in classes]))


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


def accuracy(scores: NDArray[np.floating], labels: NDArray[np.integer]) -> Accuracy:
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[0] != len(labels) or not len(labels):
        raise ValueError(f"scores {scores.shape} do not match {len(labels)} labels")
    k5 = min(5, scores.shape[1])
    return Accuracy(
        num_videos=len(labels),
        top1_acc=top_k_accuracy(scores, labels, 1),
        top5_acc=top_k_accuracy(scores, labels, k5),
        mean_class_acc=mean_class_accuracy(scores, labels),
    )

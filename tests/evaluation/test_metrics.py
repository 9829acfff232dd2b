import numpy as np
import pytest

from slowfast_deploy.evaluation.metrics import (
    accuracy,
    confusion_matrix,
    mean_class_accuracy,
    top_k_accuracy,
)

SCORES = np.array(
    [
        [0.1, 0.6, 0.3],  # label 1: top-1 hit
        [0.5, 0.2, 0.3],  # label 2: top-2 hit
        [0.2, 0.7, 0.1],  # label 0: top-2 hit
        [0.1, 0.1, 0.8],  # label 2: top-1 hit
    ]
)
LABELS = np.array([1, 2, 0, 2])


@pytest.mark.parametrize(("k", "expected"), [(1, 0.5), (2, 1.0), (3, 1.0)])
def test_top_k(k, expected):
    assert top_k_accuracy(SCORES, LABELS, k) == expected


def test_mean_class_accuracy_over_true_classes():
    # class 0: 0/1, class 1: 1/1, class 2: 1/2
    assert mean_class_accuracy(SCORES, LABELS) == pytest.approx((0 + 1 + 0.5) / 3)


def test_confusion_matrix_rows_are_true_classes():
    m = confusion_matrix(SCORES.argmax(1), LABELS, 3)
    assert m.tolist() == [[0, 1, 0], [0, 1, 0], [1, 0, 1]]


def test_accuracy_lines_match_reference_format():
    acc = accuracy(SCORES, LABELS)
    assert acc.lines().splitlines()[:2] == ["top1_acc\t0.5000", "top5_acc\t1.0000"]


def test_accuracy_rejects_mismatch():
    with pytest.raises(ValueError, match="do not match"):
        accuracy(SCORES, LABELS[:2])

"""Accuracy of the reference workflow's result files (its step 7, ``evaluate --result-dir``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.errors import DataFormatError
from slowfast_deploy.evaluation.metrics import Accuracy, accuracy
from slowfast_deploy.reference.formats import find_result, read_info, read_result, result_name


def evaluate_results(result_dir: Path, label_file: Path) -> Accuracy:
    """Accuracy of the result files in ``result_dir`` against a ``kinetics400.info`` file.

    Every index in the label file must have a result; a missing one is an error, never a
    silently smaller denominator.
    """
    if not result_dir.is_dir():
        raise DataFormatError(f"{result_dir}: no such result directory")
    pairs = read_info(label_file)
    if not pairs:
        raise DataFormatError(f"{label_file}: lists no videos")
    scores: list[NDArray[np.float32]] = []
    for line_no, (index, _label) in enumerate(pairs, start=1):
        path = find_result(result_dir, str(index))
        if path is None:
            expected = result_name(str(index), "txt|npy|bin")
            raise DataFormatError(
                f"{result_dir}: no result {expected} for {label_file}:{line_no}; "
                "rerun `slowfast-deploy infer` over all .bin files"
            )
        row = read_result(path, num_classes=len(scores[0]) if scores else None)
        scores.append(row)
    labels = np.array([label for _, label in pairs])
    return accuracy(np.stack(scores), labels)

"""One ranking of classes: tied scores come out in the same order from every output.

The tie rule (``engine.scoring.top_k``): higher score first; equal scores, lower class first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import slowfast_deploy as sd
from slowfast_deploy.engine.base import VideoJob, VideoResult
from slowfast_deploy.engine.scoring import top_k
from slowfast_deploy.evaluation.metrics import AccuracyCounter
from slowfast_deploy.evaluation.report import summarize_results
from slowfast_deploy.evaluation.results import result_record
from slowfast_deploy.runtime.base import BackendInfo
from slowfast_deploy.timeline.output import timeline_record
from slowfast_deploy.timeline.run import VideoTimeline
from slowfast_deploy.timeline.windows import WindowPlan

# 10 classes; 2, 5 and 7 tie for the best score, 0 and 9 for the next
TIED = np.array([0.12, 0.02, 0.2, 0.01, 0.01, 0.2, 0.01, 0.2, 0.01, 0.12], dtype=np.float32)
EXPECTED = [2, 5, 7, 0, 9]


class TiedBackend:
    """A test double of ``Backend`` that gives every clip the scores ``TIED``."""

    def __init__(self) -> None:
        self.info = BackendInfo(name="fake", model_path="tied", precision="fp32")
        self.input_shape = (None, 1, 3, 32, 224, 224)
        self.output_kind = "probs"
        self.input_dtype = "float32"

    def run(self, video: np.ndarray) -> np.ndarray:
        return np.repeat(TIED[None], video.shape[0], axis=0)

    def close(self) -> None:
        pass


def test_top_k_rule():
    assert top_k(TIED, 5).tolist() == EXPECTED
    assert top_k(TIED[::-1].copy(), 3).tolist() == [2, 4, 7]  # reversed: still lower first


def test_predict_ranks_ties_by_class(video_dir: Path):
    model = sd.open_model("tied.onnx", labels=[f"c{i}" for i in range(10)])
    model._backend = TiedBackend()  # the model "already open" in this process
    (prediction,) = model.predict([video_dir / "short.mp4"], topk=5, num_workers=0)
    assert prediction.ok, prediction.error
    assert [c for c, _, _ in prediction.topk] == EXPECTED
    assert [name for _, name, _ in prediction.topk] == [f"c{i}" for i in EXPECTED]


def test_results_file_ranks_ties_by_class():
    result = VideoResult(VideoJob("0:a.mp4", "a.mp4", 2), TIED, None, num_views=1)
    record = result_record(result, index=0, topk=5)
    assert [t["class"] for t in record["topk"]] == EXPECTED
    # the report reads the records back: its predicted class is the same top-1
    summary = summarize_results("r", [record])
    assert summary.predicted.tolist() == [EXPECTED[0]]


def test_timeline_ranks_ties_by_class(video_dir: Path):
    timeline = VideoTimeline(str(video_dir / "short.mp4"), WindowPlan(window=32, stride=16))
    assert timeline.open(TiedBackend())
    records = list(timeline.run())
    entry = timeline_record(timeline, topk=5, smooth=1, threshold=0.0)
    assert len(records) == len(entry["windows"]) >= 1
    for window in entry["windows"]:
        assert [t["class"] for t in window["topk"]] == EXPECTED
    assert {s["class"] for s in entry["segments"]} == {EXPECTED[0]}


@pytest.mark.parametrize(("label", "top1", "top5"), [(2, 1.0, 1.0), (5, 0.0, 1.0), (1, 0.0, 0.0)])
def test_accuracy_ranks_ties_by_class(label, top1, top5):
    counter = AccuracyCounter()
    counter.add(TIED, label)
    result = counter.result()
    assert (result.top1_acc, result.top5_acc) == (top1, top5)

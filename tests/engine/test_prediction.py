"""One per-video result: predict's JSON and the results line, key for key."""

from __future__ import annotations

import json

import numpy as np

from slowfast_deploy.engine.base import VideoFacts, VideoJob, VideoResult
from slowfast_deploy.engine.prediction import Prediction
from slowfast_deploy.engine.scoring import TopClass, top_classes
from slowfast_deploy.errors import Reason

SCORES = np.array([0.1, 0.5, 0.4], dtype=np.float32)
JOB = VideoJob("0:a.mp4", "a.mp4", 2)


def test_top_class_is_a_tuple_with_its_json():
    top = top_classes(SCORES, 2, names=["x", "y", "z"])
    assert top[0] == (1, "y", float(SCORES[1]))
    c, name, score = top[1]
    assert (c, name, score) == (2, "z", float(SCORES[2]))
    assert top[0].to_dict() == {"class": 1, "score": float(SCORES[1]), "name": "y"}
    assert list(TopClass(3, None, 0.5).to_dict()) == ["class", "score"]


def test_a_success_in_both_forms():
    facts: VideoFacts = {"decoder": "pyav", "node": "n1"}
    result = VideoResult(JOB, SCORES, None, 1, 1.0, 2.0, 3.0, facts)
    p = Prediction.from_result(result, index=0, topk=2)
    assert p.ok and p.top1 == (1, None, float(SCORES[1])) and p.reason is None
    assert list(p.to_dict()) == ["video", "status", "topk", "views", "decoder"]
    assert list(p.to_dict(with_scores=True))[3] == "scores"
    record = p.to_record()
    assert list(record) == [
        "key", "index", "video", "label", "status", "topk", "scores", "views", "timing_ms",
        "decoder", "node",
    ]  # fmt: skip
    assert record["timing_ms"] == {"decode": 1.0, "preprocess": 2.0, "infer": 3.0}


def test_a_failure_carries_its_reason_where_the_json_had_it():
    result = VideoResult(
        JOB, None, "a.mp4: died", info={"retries": 1, "node": "n1"}, reason=Reason.DECODER_DIED
    )
    p = Prediction.from_result(result, index=0)
    assert not p.ok and p.reason is Reason.DECODER_DIED
    line = json.dumps(p.to_record(), separators=(",", ":"))
    assert line == (
        '{"key":"0:a.mp4","index":0,"video":"a.mp4","label":2,"status":"failed",'
        '"error":"a.mp4: died","reason":"decoder_died","retries":1,"node":"n1"}'
    )
    assert list(p.to_dict()) == ["video", "status", "error", "reason", "retries", "node"]

"""The golden checkpoint as a uint8-input AOTInductor ``.pt2``: mmaction2's scores within the
fp32 tolerance on every golden video (``compile`` and ``predict`` through the CLI)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slowfast_deploy.cli import main
from slowfast_deploy.runtime.base import PARITY_ATOL

pytest.importorskip("torch")


@pytest.mark.golden
@pytest.mark.slow
def test_uint8_pt2_predicts_mmaction2s_scores(golden, tmp_path, capsys):
    checkpoint = golden / "slowfast_r50_8x8x1_random_seed0.pth"
    model = tmp_path / "golden_u8.pt2"
    argv = ["compile", str(checkpoint), "--backend", "torch", "--softmax", "--input-dtype",
            "uint8", "--output", str(model), "--threads", "2"]  # fmt: skip
    assert main(argv) == 0
    assert "vs eager fp32" in capsys.readouterr().err
    manifest = json.loads((golden / "manifest.json").read_text())
    videos = [str(golden / "videos" / e["video"]) for e in manifest]
    argv = ["predict", *videos, "--model", str(model), "--format", "json", "--decoder", "decord"]
    assert main(argv) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == len(manifest)
    for entry, record in zip(manifest, records, strict=True):
        reference = np.load(golden / "reference" / f"{entry['video']}.npz")["scores"]
        scores = np.asarray(record["scores"], dtype=np.float32)
        np.testing.assert_allclose(scores, reference, atol=PARITY_ATOL[("torch", "fp32")], rtol=0)
        assert int(scores.argmax()) == entry["top1"]

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from slowfast_deploy.model.slowfast import ReferenceContract, slowfast_r50  # noqa: E402
from slowfast_deploy.specs import SLOWFAST_R50_4X16  # noqa: E402

HERE = Path(__file__).resolve().parent
MANIFEST = HERE.parent / "golden" / "mmaction2_slowfast_r50_8x8_keys.json"
TINY_LOGITS = HERE.parent / "golden" / "tiny_logits.json"


def test_state_dict_matches_mmaction2_key_shape_manifest():
    expected = json.loads(MANIFEST.read_text())
    got = {k: list(v.shape) for k, v in slowfast_r50().state_dict().items()}
    assert got == expected
    assert len(got) == 642
    assert sum(k.startswith("backbone.slow_path.") for k in got) == 322
    assert sum(k.startswith("backbone.fast_path.") for k in got) == 318


def test_parameter_and_bn_counts():
    model = slowfast_r50()
    assert sum(p.numel() for p in model.parameters()) == 34_565_560
    assert sum(isinstance(m, torch.nn.BatchNorm3d) for m in model.modules()) == 106


def test_slicing_equals_mmaction2_nearest_interpolation():
    x = torch.randn(2, 3, 32, 4, 4)
    for tau in (1, 4, 8):
        ref = torch.nn.functional.interpolate(x, mode="nearest", scale_factor=(1 / tau, 1, 1))
        torch.testing.assert_close(x[:, :, ::tau], ref, rtol=0, atol=0)


def test_head_concatenates_fast_then_slow(tiny_model):
    slow = torch.zeros(1, tiny_model.cls_head.fc_cls.in_features - 16, 1, 1, 1)
    fast = torch.ones(1, 16, 1, 1, 1)  # tiny fast pathway ends with 2 * 8 = 16 channels
    with torch.no_grad():
        fc = tiny_model.cls_head.fc_cls
        expected = fc.weight[:, :16].sum(1) + fc.bias
        torch.testing.assert_close(tiny_model.forward_head((slow, fast))[0], expected)


def test_tiny_model_logits_are_pinned(tiny_model):
    """Numerics guard: regenerate with SLOWFAST_DEPLOY_ACCEPT=1 only for an intended change."""
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 32, 64, 64), np.float32))
    with torch.no_grad():
        logits = tiny_model(x)[0].tolist()
    import os

    if os.environ.get("SLOWFAST_DEPLOY_ACCEPT") == "1" or not TINY_LOGITS.exists():
        TINY_LOGITS.write_text(json.dumps(logits) + "\n")
    np.testing.assert_allclose(logits, json.loads(TINY_LOGITS.read_text()), atol=1e-5)


def test_reference_contract_folds_views_and_applies_softmax(tiny_model):
    x = torch.randn(2, 3, 3, 32, 32, 32)
    with torch.no_grad():
        probs = ReferenceContract(tiny_model, softmax=True)(x)
        logits = tiny_model(x.flatten(0, 1))
    assert probs.shape == (6, 10)
    torch.testing.assert_close(probs, torch.softmax(logits, 1))


def test_4x16_variant_builds_and_runs():
    model = slowfast_r50(SLOWFAST_R50_4X16)
    lateral = model.backbone.slow_path.conv1_lateral.conv
    assert lateral.stride == (8, 1, 1)
    with torch.no_grad():
        feats = model.forward_features(torch.randn(1, 3, 32, 32, 32))
    assert feats[0].shape[2] == 4 and feats[1].shape[2] == 32  # slow T=32/8, fast T=32

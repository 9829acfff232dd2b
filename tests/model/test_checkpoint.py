import sys
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.helpers import tiny_spec  # noqa: E402

from slowfast_deploy.errors import CheckpointError  # noqa: E402
from slowfast_deploy.model.checkpoint import load_checkpoint  # noqa: E402


def _same(model, tiny_model):
    for (k, a), b in zip(model.state_dict().items(), tiny_model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_mmaction2_0x_file_with_optimizer(tmp_path, tiny_model):
    path = tmp_path / "v0.pth"
    sd = tiny_model.state_dict()
    torch.save(
        {
            "meta": {"epoch": 256, "mmcv_version": "1.3"},
            "state_dict": sd,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
        },
        path,
    )
    _same(load_checkpoint(path, tiny_spec()), tiny_model)


def test_bare_state_dict_and_dataparallel_prefix(tmp_path, tiny_model):
    path = tmp_path / "bare.pth"
    torch.save({f"module.{k}": v for k, v in tiny_model.state_dict().items()}, path)
    _same(load_checkpoint(path, tiny_spec()), tiny_model)


def test_mmengine_1x_file_with_history_buffer(tmp_path, tiny_model, monkeypatch):
    # Write a checkpoint exactly as mmengine does: meta pickles a HistoryBuffer object.
    module = types.ModuleType("mmengine.logging.history_buffer")

    class HistoryBuffer:
        def __init__(self):
            self._log_history = np.array([0.5, 0.25])
            self._count_history = np.array([1, 1])
            self.max_length = 1000000

    HistoryBuffer.__module__ = module.__name__
    HistoryBuffer.__qualname__ = "HistoryBuffer"
    module.HistoryBuffer = HistoryBuffer
    for name in ("mmengine", "mmengine.logging", "mmengine.logging.history_buffer"):
        monkeypatch.setitem(sys.modules, name, module)
    path = tmp_path / "v1.pth"
    meta = {"epoch": 256, "message_hub": {"log_scalars": {"train/loss": HistoryBuffer()}}}
    torch.save({"meta": meta, "state_dict": tiny_model.state_dict()}, path)
    for name in ("mmengine", "mmengine.logging", "mmengine.logging.history_buffer"):
        monkeypatch.delitem(sys.modules, name)
    _same(load_checkpoint(path, tiny_spec()), tiny_model)


def test_wrong_keys_are_listed_with_counts(tmp_path, tiny_model):
    sd = dict(tiny_model.state_dict())
    sd.pop("cls_head.fc_cls.bias")
    sd["backbone.extra.weight"] = torch.zeros(1)
    sd["cls_head.fc_cls.weight"] = torch.zeros(3, 3)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": sd}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, tiny_spec())
    message = str(info.value)
    assert "bad.pth" in message
    assert "1 missing: cls_head.fc_cls.bias" in message
    assert "1 unexpected: backbone.extra.weight" in message
    assert "1 shape: cls_head.fc_cls.weight (3, 3) vs model (10, 576)" in message
    assert "\n" not in message


def test_full_model_rejects_tiny_checkpoint_listing_first_keys(tmp_path, tiny_model):
    path = tmp_path / "tiny.pth"
    torch.save({"state_dict": tiny_model.state_dict()}, path)
    with pytest.raises(CheckpointError, match=r"\d+ missing: .* and \d+ more"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match=r"notes\.pth: not a loadable PyTorch checkpoint"):
        load_checkpoint(path)


def test_blocked_global_is_named(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "meta": {"cls": ValueError("x")}}, path)
    with pytest.raises(
        CheckpointError, match=r"outside the weights-only allow-list \(.*ValueError\)"
    ):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "none.pth")

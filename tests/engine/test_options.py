"""Engine options: the library resolves the defaults and checks the values, for the CLI and
the Python API alike."""

from __future__ import annotations

import pytest

from slowfast_deploy.cli import build_parser
from slowfast_deploy.cli._stream_args import engine_options
from slowfast_deploy.engine.base import DEFAULT_WORKERS, EngineOptions


def cli_options(*flags: str) -> EngineOptions:
    args = build_parser().parse_args(["predict", "v.mp4", "--model", "m.onnx", *flags])
    return engine_options(args)


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_cli_and_api_resolve_the_same_defaults(engine, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6390")
    api = EngineOptions(engine=engine)
    assert cli_options("--engine", engine) == api
    assert api.workers == DEFAULT_WORKERS[engine]
    assert api.ray_address == ("127.0.0.1:6390" if engine == "ray" else None)


def test_ray_address_is_optional(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert EngineOptions(engine="ray").ray_address is None
    assert EngineOptions(engine="ray", ray_address="127.0.0.1:1").ray_address == "127.0.0.1:1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "spark"}, r"engine must be one of \('local', 'ray'\), got 'spark'"),
        ({"batchsize": 0}, "batchsize must be an integer >= 1, got 0"),
        ({"num_workers": -1}, "num_workers must be an integer >= 0, got -1"),
        ({"decode_timeout_s": -1.0}, "decode_timeout_s must be >= 0 seconds"),
        ({"model_actors": 0}, "model_actors must be an integer >= 1, got 0"),
    ],
)
def test_bad_values_raise_value_error_naming_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EngineOptions(**kwargs)


def test_zero_timeout_means_never():
    assert EngineOptions(decode_timeout_s=0).decode_timeout_s is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"views": 7}, r"views must be one of \[1, 30\], got 7"),
        ({"topk": 0}, "topk must be >= 1, got 0"),
        ({"decoder": "ffmpeg"}, "decoder must be one of"),
        ({"engine": "dask"}, "engine must be one of"),
    ],
)
def test_predict_rejects_bad_values_before_decoding(call, message, tmp_path):
    import slowfast_deploy as sd

    model = sd.open_model(tmp_path / "never-opened.onnx")
    with pytest.raises(ValueError, match=message):
        list(model.predict([tmp_path / "v.mp4"], **call))

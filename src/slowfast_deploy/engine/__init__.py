"""Engines: turn ``VideoJob``s into scored ``VideoResult``s, in any order (see ``base``).

``open_engine`` picks one by name, in one place; Ray itself is imported only when a ray engine
starts.
"""

from __future__ import annotations

from slowfast_deploy.engine.base import DecodeOptions, Engine, EngineOptions
from slowfast_deploy.engine.local import LocalEngine
from slowfast_deploy.engine.ray_data import RayEngine  # Ray itself is imported when it starts
from slowfast_deploy.runtime import Backend, ModelConfig
from slowfast_deploy.specs import ViewSpec


def open_engine(
    model: ModelConfig | Backend | None,
    views: ViewSpec,
    decode: DecodeOptions,
    options: EngineOptions,
) -> Engine:
    """The engine named by ``options.engine``.

    ``model``: a model file to open, or (local engine) a backend already open in this process,
    which is reused and left open; None: an engine for ``decode`` only.
    """
    if options.engine == "local":
        return LocalEngine(model, views, decode, options)
    if model is not None and not isinstance(model, ModelConfig):
        raise ValueError(
            "the ray engine opens the model on its actors: give a model file (ModelConfig), "
            "not an open backend"
        )
    return RayEngine(model, views, decode, options)

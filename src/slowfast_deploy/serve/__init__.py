"""An HTTP service for the model: the Open Inference Protocol (KServe v2 REST) for tensors,
video endpoints (``predict``, ``timeline``) for uploads, dynamic batching across requests,
Prometheus metrics and a web page. One ASGI app (``app.create_app``), run embedded by uvicorn
(``server.run_server``) or on Ray Serve (``ray_serve``).

| file          | what                                                                      |
| ------------- | ------------------------------------------------------------------------- |
| ``options``   | ``ServeOptions``: batching, limits, decoding, security (the CLI's flags)   |
| ``problems``  | ``Problem``: every failure as JSON with a ``reason`` code and HTTP status  |
| ``protocol``  | requests and responses: parsed once, bad input turned into a ``Problem``   |
| ``service``   | ``InferenceService``: the model, model loop, decoders, budgets; typed results |
| ``routes``    | the HTTP doors: parse, call the service, answer (a few lines each)         |
| ``model_loop``| ``ModelLoop``: requests' clips, streams' windows -> one model thread       |
| ``decoding``  | ``DecodeService``: the decode pool shared by requests (crash/hang isolated)|
| ``uploads``   | streamed multipart -> one private temp file per request; paths; URLs       |
| ``security``  | API key (bearer), allowed directories and URL prefixes                     |
| ``metrics``   | Prometheus ``/metrics`` and the access log                                 |
| ``kserve``    | ``/v2`` endpoints, JSON and binary tensor data                              |
| ``app``       | ``create_app``: the Starlette app over one service (lifespan, middleware)  |
| ``server``    | uvicorn, bound to 127.0.0.1 unless told; SIGTERM drains; ``serve()``        |

``serve(model, port=...)`` starts the CLI's server from Python and returns a handle
(``.url``, ``.stop()``, a context manager).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy and IDEs see; at run time loaded on first use (below)
    from slowfast_deploy.serve.server import RunningServer as RunningServer
    from slowfast_deploy.serve.server import serve as serve

__all__ = ["RunningServer", "serve"]


def __getattr__(name: str) -> Any:  # importing the package stays cheap (OpenCV, the decoders)
    if name in __all__:
        import slowfast_deploy.serve.server as server  # uvicorn's module: deferred

        return getattr(server, name)
    raise AttributeError(f"module 'slowfast_deploy.serve' has no attribute {name!r}")

"""An HTTP service for the model: the Open Inference Protocol (KServe v2 REST) for tensors,
video endpoints (``predict``, ``timeline``) for uploads, dynamic batching across requests,
Prometheus metrics and a web page. One ASGI app (``app.create_app``), run embedded by uvicorn
(``server.run_server``) or on Ray Serve (``ray_serve``).

| file          | what                                                                      |
| ------------- | ------------------------------------------------------------------------- |
| ``options``   | ``ServeOptions``: limits, security, batching (the CLI's flags)             |
| ``problems``  | ``Problem``: every failure as JSON with a ``reason`` code and HTTP status  |
| ``model_loop``| ``ModelLoop``: requests' clips, streams' windows -> one model thread  |
| ``decoding``  | ``DecodeService``: the decode pool shared by requests (crash/hang isolated)|
| ``uploads``   | streamed multipart -> one private temp file per request; paths; URLs       |
| ``security``  | API key (bearer), allowed directories and URL prefixes                     |
| ``metrics``   | Prometheus ``/metrics`` and the access log                                 |
| ``kserve``    | ``/v2`` endpoints, JSON and binary tensor data                              |
| ``app``       | the Starlette app: routes, lifespan, video endpoints, the page            |
| ``server``    | uvicorn, bound to 127.0.0.1 unless told; SIGTERM drains                    |
"""

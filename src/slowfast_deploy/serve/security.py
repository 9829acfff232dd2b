"""Who may call, which server paths and which URLs a request may name.

- ``ApiKeyMiddleware``: with a key, every request needs ``Authorization: Bearer KEY``
  (compared in constant time); only the ``/v2/health/*`` probes and the page at ``/``
  (static, no data: it asks for the key and sends it) stay open.
- ``resolve_server_path``: a path is accepted only if, with every symlink and ``..``
  resolved, it lies under one of ``--allow-dir``; nothing is accepted without one.
- ``check_url``: the server fetches a URL only under an ``--allow-url`` prefix (same scheme,
  host and port, path under the prefix's path); nothing is fetched without one. A server that
  fetches any URL is an SSRF hole.
"""

from __future__ import annotations

import hmac
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from slowfast_deploy.errors import Reason
from slowfast_deploy.serve.problems import Problem

OPEN_PREFIXES = ("/v2/health/",)
# the page itself (static HTML and JavaScript, no data): it asks for the key and sends it with
# every request it makes, which a browser cannot do for the page it is opening
OPEN_PATHS = ("/",)


class ApiKeyMiddleware:
    """ASGI middleware: 401 JSON for any HTTP request without the bearer key."""

    def __init__(self, app: Any, api_key: str, *, on_reject: Any = None) -> None:
        self.app = app
        self._expected = f"Bearer {api_key}".encode()
        self.on_reject = on_reject

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")  # a lifespan scope has none
        if scope["type"] != "http" or path.startswith(OPEN_PREFIXES) or path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(given, self._expected):
            await self.app(scope, receive, send)
            return
        problem = Problem(
            Reason.UNAUTHORIZED,
            "missing or wrong API key: send the header 'Authorization: Bearer KEY'",
        )
        if self.on_reject is not None:
            self.on_reject(problem.reason)
        body = json.dumps(problem.body()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="slowfast-deploy"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def resolve_server_path(path: str, allow_dirs: tuple[str, ...]) -> Path:
    """``path`` resolved, if it lies under an allowed directory; else ``Problem`` (403)."""
    if not allow_dirs:
        raise Problem(
            Reason.FORBIDDEN_PATH,
            "this server takes no server-side paths (start it with --allow-dir DIR); "
            "upload the video instead",
        )
    if "\x00" in path:
        raise Problem(Reason.BAD_REQUEST, "a path cannot contain NUL characters")
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = Path(allow_dirs[0]) / candidate
    resolved = Path(os.path.realpath(candidate))
    for allowed in allow_dirs:
        root = Path(os.path.realpath(allowed))
        if resolved == root or resolved.is_relative_to(root):
            return resolved
    raise Problem(
        Reason.FORBIDDEN_PATH,
        f"{path!r} is not under an allowed directory ({', '.join(allow_dirs)}); "
        "'..' and symbolic links out of them are refused",
    )


def check_url(url: str, allow_urls: tuple[str, ...]) -> str:
    """``url`` if it lies under an allowed prefix; else ``Problem`` (403)."""
    if not allow_urls:
        raise Problem(
            Reason.FORBIDDEN_URL,
            "this server fetches no URLs (start it with --allow-url PREFIX); upload the video",
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise Problem(Reason.BAD_REQUEST, f"not a URL: {url!r} ({err})") from err
    if parts.username or parts.password:
        raise Problem(Reason.FORBIDDEN_URL, "URLs with credentials are refused")
    for prefix in allow_urls:
        allowed = urlsplit(prefix)
        same_origin = (
            parts.scheme == allowed.scheme
            and parts.hostname == allowed.hostname
            and port == allowed.port
        )
        base = allowed.path if allowed.path.endswith("/") else allowed.path + "/"
        path = parts.path or "/"
        traversal = ".." in unquote(path).split("/")
        if same_origin and not traversal and (path == allowed.path or path.startswith(base)):
            return url
    raise Problem(Reason.FORBIDDEN_URL, f"{url!r} is not under an allowed URL prefix")

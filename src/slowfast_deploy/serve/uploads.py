"""Request bodies to files: a streamed multipart upload, or a fetched URL, each written to a
private temporary file of its own (``mkstemp``: a unique name, mode 0600, in the server's
private 0700 directory), removed when the request ends whatever happens.

An upload is never held whole in memory: parts are written as they arrive, and a body larger
than ``--max-upload`` is refused (413) as soon as it is seen to be, from ``Content-Length`` or
while it streams.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from slowfast_deploy.serve.problems import Problem

VIDEO_FIELD = "video"
MAX_OTHER_FIELDS_BYTES = 64 * 1024  # form fields besides the video: small values only
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")
FETCH_TIMEOUT_S = 30.0
FETCH_CHUNK = 1 << 16


def too_large(limit: int) -> Problem:
    return Problem(
        "upload_too_large", f"the request body is larger than this server takes ({limit} bytes)"
    )


def check_length(headers: Any, limit: int) -> None:
    """413 at once when ``Content-Length`` already says the body is too large."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)


async def read_body(stream: AsyncIterator[bytes], headers: Any, limit: int) -> bytes:
    """The whole body (tensors), at most ``limit`` bytes, else 413."""
    check_length(headers, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class Upload:
    """A file received for one request: ``path`` on disk, ``name`` as the client called it."""

    path: str
    name: str
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)


def _temp_file(directory: str, name: str) -> tuple[str, BinaryIO]:
    suffix = os.path.splitext(name)[1]
    fd, path = tempfile.mkstemp(
        prefix="upload-", suffix=suffix if _SUFFIX.fullmatch(suffix) else "", dir=directory
    )
    return path, os.fdopen(fd, "wb")


def _disposition(value: str) -> tuple[str | None, str | None]:
    from python_multipart.multipart import parse_options_header

    _, params = parse_options_header(value)
    name = params.get(b"name")
    filename = params.get(b"filename")
    return (
        name.decode("utf-8", "replace") if name is not None else None,
        filename.decode("utf-8", "replace") if filename is not None else None,
    )


@contextlib.asynccontextmanager
async def receive_upload(
    stream: AsyncIterator[bytes], headers: Any, *, directory: str, limit: int
) -> AsyncIterator[Upload]:
    """Stream a ``multipart/form-data`` body's ``video`` field to a temp file.

    415 if the body is not multipart, 400 without a ``video`` file field, 413 past ``limit``
    bytes. The file is removed when the block ends.
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    content_type, params = parse_options_header(headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise Problem(
            "unsupported_media_type",
            f"send the video as multipart/form-data in the field '{VIDEO_FIELD}', not "
            f"{content_type.decode('latin-1') or 'no content type'}",
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise Problem("bad_request", "multipart/form-data without a boundary")
    check_length(headers, limit)

    state: dict[str, Any] = {"header_field": b"", "header_value": b"", "headers": {}}
    upload: Upload | None = None
    out: BinaryIO | None = None
    other = bytearray()
    errors: list[Problem] = []
    received = 0

    def on_part_begin() -> None:
        state["headers"] = {}
        state["target"] = None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header_field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["header_value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["header_field"].decode("latin-1").lower()] = state[
            "header_value"
        ].decode("latin-1")
        state["header_field"] = state["header_value"] = b""

    def on_headers_finished() -> None:
        nonlocal upload, out
        name, filename = _disposition(state["headers"].get("content-disposition", ""))
        if name == VIDEO_FIELD and filename is not None:
            if upload is not None:
                errors.append(Problem("bad_request", f"more than one '{VIDEO_FIELD}' file"))
                state["target"] = None
                return
            path, out = _temp_file(directory, filename)
            upload = Upload(path, os.path.basename(filename) or "upload")
            state["target"] = "video"
        elif filename is not None:
            errors.append(
                Problem(
                    "bad_request",
                    f"a file in the field {name!r}: send the video in the field '{VIDEO_FIELD}'",
                )
            )
            state["target"] = None
        else:
            state["target"] = name or ""
            state["value"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        target = state.get("target")
        if target == "video" and out is not None and upload is not None:
            out.write(data[start:end])
            upload.size += end - start
        elif target is not None:
            other.extend(data[start:end])
            state["value"].extend(data[start:end])
            if len(other) > MAX_OTHER_FIELDS_BYTES:
                errors.append(too_large(MAX_OTHER_FIELDS_BYTES))

    def on_part_end() -> None:
        target = state.get("target")
        if target not in (None, "video") and upload is not None:
            upload.fields[target] = bytes(state["value"]).decode("utf-8", "replace")
        elif target not in (None, "video"):
            state.setdefault("early_fields", {})[target] = bytes(state["value"]).decode(
                "utf-8", "replace"
            )

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        try:
            async for chunk in stream:
                received += len(chunk)
                if received > limit:
                    raise too_large(limit)
                parser.write(chunk)
                if errors:
                    raise errors[0]
            parser.finalize()
        except Problem:
            raise
        except Exception as err:  # python-multipart's parse errors
            raise Problem("bad_request", f"malformed multipart body ({err})") from err
        finally:
            if out is not None:
                out.close()
        if upload is None:
            raise Problem(
                "bad_request",
                f"no video file in the form: send it in the multipart field '{VIDEO_FIELD}'",
            )
        if upload.size == 0:
            raise Problem("not_a_video", f"{upload.name}: empty file (0 bytes)", status=422)
        upload.fields = {**state.get("early_fields", {}), **upload.fields}
        yield upload
    finally:
        if upload is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(upload.path)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could leave the allowed prefixes: refuse it (the client can resend)."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> None:
        raise Problem(
            "fetch_failed", f"the URL redirects (HTTP {code}) to {newurl!r}; give that URL"
        )


@contextlib.contextmanager
def fetch_url(url: str, *, directory: str, limit: int) -> Iterator[Upload]:
    """Download ``url`` (already checked against the allow-list) to a temp file, at most
    ``limit`` bytes (413); removed when the block ends. Blocking: run it in a thread."""
    opener = urllib.request.build_opener(_NoRedirect)
    name = os.path.basename(url.split("?", 1)[0]) or "download"
    path, out = _temp_file(directory, name)
    try:
        size = 0
        try:
            with out, opener.open(url, timeout=FETCH_TIMEOUT_S) as response:
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise too_large(limit)
                while chunk := response.read(FETCH_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise too_large(limit)
                    out.write(chunk)
        except urllib.error.HTTPError as err:
            raise Problem("fetch_failed", f"{url}: HTTP {err.code} {err.reason}") from err
        except (urllib.error.URLError, OSError) as err:
            raise Problem("fetch_failed", f"{url}: cannot fetch it ({err})") from err
        yield Upload(path, name, size)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

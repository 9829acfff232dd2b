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


class _VideoForm:
    """python-multipart's callbacks for one form: the ``video`` file part to a temp file,
    small other fields kept; the first problem seen is kept in ``errors``."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.upload: Upload | None = None
        self.out: BinaryIO | None = None
        self.errors: list[Problem] = []
        self.early_fields: dict[str, str] = {}  # fields before the video
        self._other = bytearray()  # every other field's bytes, bounded
        self._field, self._value = b"", b""  # the header being read
        self._headers: dict[str, str] = {}
        self._target: str | None = None  # "video", a field's name, or None: skip
        self._data = bytearray()

    def on_part_begin(self) -> None:
        self._headers, self._target = {}, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value.decode("latin-1")
        self._field = self._value = b""

    def on_headers_finished(self) -> None:
        name, filename = _disposition(self._headers.get("content-disposition", ""))
        if name == VIDEO_FIELD and filename is not None:
            if self.upload is not None:
                self.errors.append(Problem("bad_request", f"more than one '{VIDEO_FIELD}' file"))
                self._target = None
                return
            path, self.out = _temp_file(self.directory, filename)
            self.upload = Upload(path, os.path.basename(filename) or "upload")
            self._target = "video"
        elif filename is not None:
            self.errors.append(
                Problem(
                    "bad_request",
                    f"a file in the field {name!r}: send the video in the field '{VIDEO_FIELD}'",
                )
            )
            self._target = None
        else:
            self._target = name or ""
            self._data = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._target == "video" and self.out is not None and self.upload is not None:
            self.out.write(data[start:end])
            self.upload.size += end - start
        elif self._target is not None:
            self._other.extend(data[start:end])
            self._data.extend(data[start:end])
            if len(self._other) > MAX_OTHER_FIELDS_BYTES:
                self.errors.append(too_large(MAX_OTHER_FIELDS_BYTES))

    def on_part_end(self) -> None:
        if self._target in (None, "video"):
            return
        value = bytes(self._data).decode("utf-8", "replace")
        if self.upload is not None:
            self.upload.fields[self._target] = value
        else:
            self.early_fields[self._target] = value


def _multipart_boundary(headers: Any) -> bytes:
    """The body's multipart boundary: 415 if it is not ``multipart/form-data``."""
    from python_multipart.multipart import parse_options_header

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
    return bytes(boundary)


async def _parse_form(
    stream: AsyncIterator[bytes], form: _VideoForm, boundary: bytes, limit: int
) -> None:
    from python_multipart.multipart import MultipartParser

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": form.on_part_begin,
            "on_header_field": form.on_header_field,
            "on_header_value": form.on_header_value,
            "on_header_end": form.on_header_end,
            "on_headers_finished": form.on_headers_finished,
            "on_part_data": form.on_part_data,
            "on_part_end": form.on_part_end,
        },
    )
    received = 0
    try:
        async for chunk in stream:
            received += len(chunk)
            if received > limit:
                raise too_large(limit)
            parser.write(chunk)
            if form.errors:
                raise form.errors[0]
        parser.finalize()
    except Problem:
        raise
    except Exception as err:  # python-multipart's parse errors
        raise Problem("bad_request", f"malformed multipart body ({err})") from err
    finally:
        if form.out is not None:
            form.out.close()


@contextlib.asynccontextmanager
async def receive_upload(
    stream: AsyncIterator[bytes], headers: Any, *, directory: str, limit: int
) -> AsyncIterator[Upload]:
    """Stream a ``multipart/form-data`` body's ``video`` field to a temp file.

    415 if the body is not multipart, 400 without a ``video`` file field, 413 past ``limit``
    bytes. The file is removed when the block ends.
    """
    boundary = _multipart_boundary(headers)
    check_length(headers, limit)
    form = _VideoForm(directory)
    try:
        await _parse_form(stream, form, boundary, limit)
        upload = form.upload
        if upload is None:
            raise Problem(
                "bad_request",
                f"no video file in the form: send it in the multipart field '{VIDEO_FIELD}'",
            )
        if upload.size == 0:
            raise Problem("not_a_video", f"{upload.name}: empty file (0 bytes)", status=422)
        upload.fields = {**form.early_fields, **upload.fields}
        yield upload
    finally:
        if form.upload is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(form.upload.path)


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

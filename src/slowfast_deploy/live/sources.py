"""Live sources: what a source string names, how it is opened, and why it would not open.

A source is one of:

- a URL FFmpeg opens as a stream: ``rtsp://`` (``rtsp_transport`` tcp or udp), ``rtmp://``,
  ``http(s)://`` (HLS included), ``udp://`` and ``tcp://`` MPEG-TS, ``srt://`` (where the
  FFmpeg inside PyAV has it);
- a V4L2 camera, ``/dev/videoN``;
- a video file, played as fast as it decodes or, with ``realtime``, at its frame rate.

Every source is named by the name given to it (a ``--sources`` line) or else by the source
string exactly as given. A source that does not open raises ``StreamError`` with one reason
code (``errors.Reason``) and one plain sentence, never FFmpeg's log.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from slowfast_deploy._optional import require
from slowfast_deploy.errors import Reason, SlowFastDeployError

logger = logging.getLogger(__name__)

SourceKind = Literal["network", "device", "file"]
RtspTransport = Literal["tcp", "udp"]
RTSP_TRANSPORTS: tuple[RtspTransport, ...] = ("tcp", "udp")
NETWORK_SCHEMES = frozenset(
    {"rtsp", "rtsps", "rtmp", "rtmps", "rtmpt", "http", "https", "udp", "tcp", "srt", "rtp"}
)
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_DEVICE = re.compile(r"^/dev/video\d+$")


class StreamError(SlowFastDeployError):
    """A live source that cannot be opened or read, and why (``reason``)."""

    def __init__(self, message: str, *, reason: Reason) -> None:
        super().__init__(message)
        self.reason = Reason(reason)


@dataclass(frozen=True, slots=True)
class Source:
    """One live source: ``url`` as given, the ``name`` its events carry, and its kind."""

    url: str
    name: str
    kind: SourceKind

    @property
    def scheme(self) -> str:
        match = _URL.match(self.url)
        return match.group(1).lower() if match else ""


def parse_source(text: str, name: str | None = None) -> Source:
    """``Source`` for a URL, ``/dev/videoN`` or file path; the name defaults to ``text``."""
    text = text.strip()
    if not text:
        raise ValueError("source must be a URL, /dev/videoN or a video file, got ''")
    match = _URL.match(text)
    if match:
        scheme = match.group(1).lower()
        if scheme == "file":
            kind: SourceKind = "file"
        elif scheme in NETWORK_SCHEMES:
            kind = "network"
        else:
            raise ValueError(
                f"source {text!r}: unknown scheme {scheme!r}; use one of "
                f"{', '.join(sorted(NETWORK_SCHEMES))}, /dev/videoN or a file path"
            )
    elif _DEVICE.match(text):
        kind = "device"
    else:
        kind = "file"
    return Source(text, name or text, kind)


def read_sources_file(path: str | os.PathLike[str]) -> list[Source]:
    """Sources listed one per line, ``SOURCE [NAME]``; blank lines and ``#`` comments skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: no such sources file") from err
    sources = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        try:
            sources.append(parse_source(parts[0], parts[1].strip() if len(parts) > 1 else None))
        except ValueError as err:
            raise ValueError(f"{path}:{number}: {err}") from err
    return sources


def check_names(sources: list[Source]) -> None:
    """Every stream needs its own name: events, statistics and SRT files are keyed by it."""
    seen: set[str] = set()
    for source in sources:
        if source.name in seen:
            raise ValueError(
                f"source name {source.name!r} is given twice; give each source its own name "
                "(a --sources line: SOURCE NAME)"
            )
        seen.add(source.name)


@dataclass(frozen=True, slots=True)
class OpenOptions:
    """How sources are opened: RTSP transport and the two network timeouts."""

    rtsp_transport: RtspTransport = "tcp"
    open_timeout_s: float = 10.0  # connecting and reading the stream's header
    stall_timeout_s: float = 10.0  # no data for this long: the stream is lost

    def __post_init__(self) -> None:
        if self.rtsp_transport not in RTSP_TRANSPORTS:
            raise ValueError(
                f"rtsp_transport must be one of {RTSP_TRANSPORTS}, got {self.rtsp_transport!r}"
            )
        if not self.open_timeout_s > 0:
            raise ValueError(f"open_timeout_s must be > 0 seconds, got {self.open_timeout_s}")
        if not self.stall_timeout_s > 0:
            raise ValueError(f"stall_timeout_s must be > 0 seconds, got {self.stall_timeout_s}")


def open_source(source: Source, options: OpenOptions) -> tuple[Any, Any]:
    """Open ``source`` with PyAV: ``(container, video stream)``; raises ``StreamError``.

    Network reads give up after ``stall_timeout_s`` without data (FFmpeg's interrupt
    callback), so a stalled stream raises instead of blocking its thread for ever.
    """
    av = require("av", extra="av", purpose="live streams")
    av.logging.set_level(av.logging.WARNING if logger.isEnabledFor(logging.INFO) else None)
    url, fmt = source.url, None
    opts: dict[str, str] = {}
    if source.kind == "file":
        path = Path(url[len("file://") :] if url.startswith("file://") else url)
        if not path.exists():
            raise StreamError(f"{source.name}: no such video file", reason=Reason.NOT_FOUND)
        if not path.is_file():
            raise StreamError(f"{source.name}: not a video file", reason=Reason.NOT_A_VIDEO)
        url = str(path)
    elif source.kind == "device":
        fmt = "v4l2"
    elif source.scheme in ("rtsp", "rtsps"):
        opts["rtsp_transport"] = options.rtsp_transport
    elif source.scheme == "udp":
        opts["overrun_nonfatal"] = "1"  # a late reader loses packets, not the stream
    timeout = (options.open_timeout_s, options.stall_timeout_s)
    try:
        container = av.open(
            url, format=fmt, options=opts, timeout=None if source.kind == "file" else timeout
        )
    except Exception as err:  # PyAV raises OSError subclasses and its own FFmpegErrors
        raise open_failure(source, err, options) from err
    try:
        streams = container.streams.video
        if not streams:
            raise StreamError(
                f"{source.name}: the source has no video stream", reason=Reason.NO_VIDEO_STREAM
            )
        return container, streams[0]
    except BaseException:
        container.close()
        raise


def open_failure(source: Source, err: BaseException, options: OpenOptions) -> StreamError:
    """``err`` (raised by ``av.open``) as a reason code and one plain sentence."""
    reason, what = classify_error(err, options)
    return StreamError(f"{source.name}: {what}", reason=reason)


def classify_error(err: BaseException, options: OpenOptions) -> tuple[Reason, str]:
    """``(reason, sentence)`` for an exception PyAV raised while opening or reading."""
    av = require("av", extra="av", purpose="live streams")
    name = type(err).__name__
    if isinstance(err, av.error.HTTPUnauthorizedError):
        return (
            Reason.UNAUTHORIZED,
            "the server answered 401 Unauthorized: put user:password@ in the URL",
        )
    if isinstance(err, av.error.HTTPForbiddenError):
        return Reason.FORBIDDEN, "the server answered 403 Forbidden"
    if isinstance(err, av.error.HTTPNotFoundError):
        return Reason.NOT_FOUND, "the server answered 404 Not Found: check the stream path"
    if isinstance(err, av.error.ProtocolNotFoundError):
        return (
            Reason.UNSUPPORTED_PROTOCOL,
            "the FFmpeg inside PyAV has no support for this protocol",
        )
    if isinstance(err, ConnectionRefusedError):
        return Reason.REFUSED, "connection refused: nothing listens at that host and port"
    if isinstance(err, FileNotFoundError):
        return Reason.NOT_FOUND, "not found"
    if isinstance(err, PermissionError):
        return Reason.PERMISSION_DENIED, "permission denied"
    if isinstance(err, av.error.InvalidDataError):
        return Reason.NOT_A_VIDEO, "not a video FFmpeg recognises (invalid data)"
    if isinstance(err, av.error.ExitError | TimeoutError) or name == "ExitError":
        return Reason.UNREACHABLE, f"no answer within {options.open_timeout_s:g} s"
    if isinstance(err, OSError) and err.errno in (
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
    ):
        return Reason.UNREACHABLE, "host unreachable"
    if isinstance(err, OSError) and err.errno == errno.ENODEV:
        return Reason.NOT_FOUND, "no such device"
    text = str(err).split(": '")[0] if str(err) else name
    return Reason.ERROR, text

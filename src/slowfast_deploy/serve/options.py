"""What a server is allowed to do: limits, batching, decoding, security (``slowfast-deploy
serve``'s flags).

Pure data, composed of small option classes, each checked in its ``__post_init__`` so the CLI
and the Python API share the checks:

| class           | what                                                                    |
| --------------- | ----------------------------------------------------------------------- |
| ``BatchOptions``| dynamic batching: clips per model call, how long a batch waits to fill   |
| ``LimitOptions``| each limit named for what it bounds; past one a request gets 429/413/504 |
| ``DecodeOptions``| (``engine.base``) how videos are decoded, as for ``predict``            |
| ``ServeOptions``| the server: its name, the above, decoder processes, security             |
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from slowfast_deploy.engine.base import DecodeOptions

DEFAULT_MAX_UPLOAD = 512 * 1024**2  # 512 MiB: a few minutes of 1080p H.264
DEFAULT_MAX_QUEUE = 64
# one clip of the reference contract, [1, 3, 32, 224, 224] float32: the unit of the tensor
# body budget (a request's worth of request bodies in memory at once)
CLIP_BYTES = 3 * 32 * 224 * 224 * 4
_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3}


def parse_size(text: str) -> int:
    """Bytes from ``"1048576"``, ``"5MB"``, ``"5MiB"``, ``"2G"``, ``"512k"``.

    >>> parse_size("5MB"), parse_size("5MiB"), parse_size("100")
    (5000000, 5242880, 100)
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(i?)[bB]?\s*", text)
    if match is None:
        raise ValueError(
            f"a size must be a number of bytes, optionally with a unit (5MB, 5MiB, 2G), "
            f"got {text!r}"
        )
    number, unit, binary = match.groups()
    scale = _UNITS[unit.upper()]
    if binary and unit:
        scale = 1024 ** "KMG".index(unit.upper()) * 1024
    return int(float(number) * scale)


def _check_counts(options: object, *names: str) -> None:
    for name in names:
        value = getattr(options, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """``max_batch`` clips per model call; the oldest waiting clip waits at most
    ``max_wait_ms`` for its batch to fill (Triton's max batch size and max queue delay)."""

    max_batch: int = 8
    max_wait_ms: float = 5.0

    def __post_init__(self) -> None:
        _check_counts(self, "max_batch")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")


@dataclass(frozen=True, slots=True)
class LimitOptions:
    """How much a server takes on at once; past a limit a request is refused at once (429)
    rather than queued without bound. ``--max-queue N`` sets the first four (``queue``)."""

    max_requests: int = DEFAULT_MAX_QUEUE  # heavy requests (tensors, videos) in progress
    max_queued_clips: int = DEFAULT_MAX_QUEUE  # clips waiting for the model (the batcher)
    max_queued_videos: int = DEFAULT_MAX_QUEUE  # videos waiting for a decoder
    max_tensor_bytes: int = DEFAULT_MAX_QUEUE * CLIP_BYTES  # tensor bodies in memory at once
    max_streams: int = 16  # live streams watched at once
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD  # one request body (413)
    timeout_s: float = 300.0  # one request, once its body is in (504)

    @classmethod
    def queue(
        cls,
        max_queue: int = DEFAULT_MAX_QUEUE,
        *,
        max_requests: int | None = None,
        max_queued_clips: int | None = None,
        max_queued_videos: int | None = None,
        max_streams: int = 16,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
        timeout_s: float = 300.0,
    ) -> LimitOptions:
        """What ``--max-queue`` sets: each queue limit ``max_queue`` unless given, and tensor
        bodies of ``max_requests`` clips' worth.

        >>> LimitOptions.queue(4, max_queued_clips=32).max_tensor_bytes == 4 * CLIP_BYTES
        True
        """
        requests = max_requests if max_requests is not None else max_queue
        return cls(
            max_requests=requests,
            max_queued_clips=max_queued_clips if max_queued_clips is not None else max_queue,
            max_queued_videos=max_queued_videos if max_queued_videos is not None else max_queue,
            max_tensor_bytes=requests * CLIP_BYTES,
            max_streams=max_streams,
            max_upload_bytes=max_upload_bytes,
            timeout_s=timeout_s,
        )

    def __post_init__(self) -> None:
        _check_counts(
            self,
            "max_requests",
            "max_queued_clips",
            "max_queued_videos",
            "max_tensor_bytes",
            "max_streams",
            "max_upload_bytes",
        )
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {self.timeout_s}")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """A server: ``name`` in ``/v2/models/{name}``, its batching and limits, how it decodes
    (``decode``, in ``num_workers`` processes per protocol, each video within
    ``decode_timeout_s``), and who may call it and name which files and URLs."""

    name: str = "slowfast"  # the model's name in /v2/models/{name}
    batch: BatchOptions = field(default_factory=BatchOptions)
    limits: LimitOptions = field(default_factory=LimitOptions)
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    num_workers: int = 1  # decoder processes per protocol (1 view, 30 views)
    decode_timeout_s: float | None = 300.0
    api_key: str | None = None
    allow_dirs: tuple[str, ...] = ()  # server-side paths accepted under these only
    allow_urls: tuple[str, ...] = ()  # URL prefixes the server may fetch; none: no fetching
    tmp_dir: str | None = None  # parent of the private upload directory (default: $TMPDIR)
    labels: list[str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"name must be a non-empty name without '/', got {self.name!r}")
        _check_counts(self, "num_workers")
        if self.api_key is not None and len(self.api_key) < 8:
            raise ValueError("api_key must be at least 8 characters long")
        for prefix in self.allow_urls:
            if not re.match(r"(https?|rtsps?|rtmps?|srt|udp|tcp|rtp|mqtt)://[^/]+/", prefix):
                raise ValueError(
                    "allow_urls entries must be scheme://host[:port]/path prefixes (http(s) for "
                    "videos to fetch and webhooks; rtsp, rtmp, srt, ... for live streams; mqtt "
                    f"for brokers), got {prefix!r}"
                )

"""What a server is allowed to do: limits, batching, security (``slowfast-deploy serve``'s flags).

Pure data, checked in ``__post_init__`` so the CLI and the Python API share the checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DEFAULT_MAX_UPLOAD = 512 * 1024**2  # 512 MiB: a few minutes of 1080p H.264
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


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """``max_batch`` clips per model call, waiting at most ``max_wait_ms`` for a batch to
    fill; at most ``max_queue`` clips waiting for the model (and videos waiting for a decoder)
    before requests get 429; ``timeout_s`` per request (504); ``max_upload_bytes`` per body
    (413)."""

    name: str = "slowfast"  # the model's name in /v2/models/{name}
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 64
    timeout_s: float = 300.0
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    api_key: str | None = None
    allow_dirs: tuple[str, ...] = ()  # server-side paths accepted under these only
    allow_urls: tuple[str, ...] = ()  # URL prefixes the server may fetch; none: no fetching
    num_workers: int = 1  # decoder processes per protocol (1 view, 30 views)
    decode_timeout_s: float | None = 300.0
    decoder: str = "auto"
    frame_count: str = "container"
    tmp_dir: str | None = None  # parent of the private upload directory (default: $TMPDIR)
    labels: list[str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"name must be a non-empty name without '/', got {self.name!r}")
        for attr in ("max_batch", "max_queue", "num_workers"):
            value = getattr(self, attr)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{attr} must be an integer >= 1, got {value!r}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {self.timeout_s}")
        if self.max_upload_bytes < 1:
            raise ValueError(f"max_upload_bytes must be >= 1, got {self.max_upload_bytes}")
        if self.api_key is not None and len(self.api_key) < 8:
            raise ValueError("api_key must be at least 8 characters long")
        for prefix in self.allow_urls:
            if not re.match(r"(https?|rtsps?|rtmps?|srt|udp|tcp|rtp)://[^/]+/", prefix):
                raise ValueError(
                    "allow_urls entries must be scheme://host[:port]/path prefixes (http(s) for "
                    f"videos to fetch; rtsp, rtmp, srt, ... for live streams), got {prefix!r}"
                )

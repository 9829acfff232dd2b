"""Every failure of a request as one JSON body ``{"error", "reason", "status"}``.

``error`` is the KServe v2 field (what ``tritonclient`` shows), ``reason`` a machine-readable
code: the CLI's video reasons (``video.reasons.REASONS``, the decode pool's
``decoder_died``/``decode_timeout``) and the server's own (``SERVER_REASONS``).
"""

from __future__ import annotations

from typing import Any

# the server's reason codes -> HTTP status
SERVER_REASONS: dict[str, int] = {
    "bad_request": 400,  # malformed JSON, a missing field, a bad parameter
    "invalid": 400,  # a parameter out of range (views, topk, window, ...)
    "wrong_input": 400,  # a tensor named other than the model's input
    "wrong_shape": 400,
    "wrong_datatype": 400,
    "bad_tensor": 400,  # data that does not fill the declared shape
    "unauthorized": 401,
    "forbidden_path": 403,  # outside --allow-dir, or paths not enabled
    "forbidden_url": 403,  # not under an --allow-url prefix, or fetching not enabled
    "not_found": 404,
    "unknown_model": 404,
    "unknown_stream": 404,
    "method_not_allowed": 405,
    "conflict": 409,  # a stream of that name exists
    "upload_too_large": 413,
    "unsupported_media_type": 415,
    "fetch_failed": 422,
    "queue_full": 429,
    "internal": 500,
    "not_ready": 503,
    "timeout": 504,
}

# a failed video's reason -> HTTP status; every other video reason is 422 (unprocessable)
VIDEO_STATUS: dict[str, int] = {
    "not_found": 404,
    "permission_denied": 403,
    "decode_timeout": 504,
}


class Problem(Exception):
    """A request that fails: raised anywhere in a handler, answered as JSON by the app."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status if status is not None else SERVER_REASONS.get(reason, 400)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": str(self), "reason": self.reason, "status": self.status}


def video_problem(reason: str, message: str) -> Problem:
    """A video that cannot be classified, with the CLI's reason code."""
    return Problem(reason, message, status=VIDEO_STATUS.get(reason, 422))

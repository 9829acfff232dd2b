"""Every failure of a request as one JSON body ``{"error", "reason", "status"}``.

``error`` is the KServe v2 field (what ``tritonclient`` shows), ``reason`` a machine-readable
``errors.Reason``: the CLI's video reasons (a file that does not decode, the decode pool's
``decoder_died``/``decode_timeout``) and the server's own. The status comes from the one
table, ``errors.REASONS``.
"""

from __future__ import annotations

from typing import TypedDict

from slowfast_deploy.errors import REASONS, Reason, video_status


class ProblemBody(TypedDict):
    error: str
    reason: Reason
    status: int


class Problem(Exception):
    """A request that fails: raised anywhere in a handler, answered as JSON by the app.

    ``status`` is the reason's (``errors.REASONS``) unless given.
    """

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status if status is not None else REASONS[self.reason].http_status
        self.headers = headers or {}

    @property
    def retryable(self) -> bool:
        return REASONS[self.reason].retryable

    def body(self) -> ProblemBody:
        return {"error": str(self), "reason": self.reason, "status": self.status}


def video_problem(reason: Reason, message: str) -> Problem:
    """A video that cannot be classified, with the CLI's reason code."""
    return Problem(reason, message, status=video_status(reason))

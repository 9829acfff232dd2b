"""Exceptions raised by slowfast_deploy, and the one table of failure reasons.

The CLI turns each exception into one line and an exit code. ``Reason`` is the
machine-readable code of every failure the toolkit reports as data (a video that does not
decode, a live source that does not open, a request the server refuses); ``REASONS`` says,
once, what each means, its HTTP status and whether trying again may help.
``docs/reference/reasons.md`` is this table (a test keeps them in step).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import Enum

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, Enum):
        """``enum.StrEnum`` of Python 3.11: members are their value as text."""

        __str__ = str.__str__
        __format__ = str.__format__


class Reason(StrEnum):
    """Why something failed: the ``reason`` of a results line, an event or a problem body.

    A member is its string value (``Reason.NOT_FOUND == "not_found"``, JSON ``"not_found"``),
    so every serialised form reads as it did when these were plain strings.
    """

    # a video file (decode; evaluate, predict, timeline, preprocess, serve)
    NOT_FOUND = "not_found"
    NOT_REGULAR_FILE = "not_regular_file"
    PERMISSION_DENIED = "permission_denied"
    NOT_A_VIDEO = "not_a_video"
    NO_VIDEO_STREAM = "no_video_stream"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    UNSUPPORTED_SIZE = "unsupported_size"
    UNSUPPORTED_BY_DECORD = "unsupported_by_decord"
    SIZE_CHANGE = "size_change"
    EDIT_LIST = "edit_list"
    INVALID_INDICES = "invalid_indices"
    DECODER_CRASH = "decoder_crash"
    INVALID = "invalid"
    # the engines around the decoders
    DECODER_DIED = "decoder_died"
    DECODE_TIMEOUT = "decode_timeout"
    ENGINE_FAILED = "engine_failed"
    LOST = "lost"
    # a live source (watch, /v1/streams): opening it, then losing it
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    ERROR = "error"
    STALLED = "stalled"
    ENDED = "ended"
    STOPPED = "stopped"
    # a request the server refuses
    BAD_REQUEST = "bad_request"
    WRONG_INPUT = "wrong_input"
    WRONG_SHAPE = "wrong_shape"
    WRONG_DATATYPE = "wrong_datatype"
    BAD_TENSOR = "bad_tensor"
    FORBIDDEN_PATH = "forbidden_path"
    FORBIDDEN_URL = "forbidden_url"
    UNKNOWN_MODEL = "unknown_model"
    UNKNOWN_STREAM = "unknown_stream"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    UPLOAD_TOO_LARGE = "upload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    FETCH_FAILED = "fetch_failed"
    QUEUE_FULL = "queue_full"
    INTERNAL = "internal"
    NOT_READY = "not_ready"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class ReasonInfo:
    """What a reason means, the HTTP status the server answers it with, and whether the same
    request (or run, or connection) may succeed if simply tried again later."""

    meaning: str
    http_status: int
    retryable: bool = False


R = Reason
# The one table. HTTP statuses: a request's own fault is 4xx (400 a bad value, 404 no such
# thing, 429 too busy); a video that cannot be classified is 422 (unprocessable content), but
# 404/403 when the file is missing or unreadable on the server; 5xx is the server's or an
# upstream's fault (a live source that does not answer is 502). Only server reasons and video
# reasons reach an HTTP answer today; a live reason becomes a ``stream_*`` event.
REASONS: dict[Reason, ReasonInfo] = {
    R.NOT_FOUND: ReasonInfo(
        "no such file, device or stream path (RTSP/HTTP 404), route, model version: check it",
        404,
    ),
    R.NOT_REGULAR_FILE: ReasonInfo(
        "a directory, FIFO or device, not a video file: list video files only", 422
    ),
    R.PERMISSION_DENIED: ReasonInfo(
        "the file, its folder or the device cannot be read: make it readable (chmod a+r)", 403
    ),
    R.NOT_A_VIDEO: ReasonInfo(
        "empty, a still image, or not a video container or stream FFmpeg recognises", 422
    ),
    R.NO_VIDEO_STREAM: ReasonInfo(
        "audio only, or audio with a cover image: there is no video to classify", 422
    ),
    R.TRUNCATED: ReasonInfo(
        "the file is cut short (says how far it plays): download or copy it again", 422
    ),
    R.CORRUPT: ReasonInfo(
        "damaged data near a given frame (or mid-stream): re-encode or replace the file", 422
    ),
    R.UNSUPPORTED_SIZE: ReasonInfo(
        "decord mis-sizes frames of this size or rotation: use --decoder auto", 422
    ),
    R.UNSUPPORTED_BY_DECORD: ReasonInfo(
        "decord cannot read the file but PyAV can: use --decoder auto or pyav", 422
    ),
    R.SIZE_CHANGE: ReasonInfo(
        "frame size changes mid-stream; only decord rescales it: use --decoder decord", 422
    ),
    R.EDIT_LIST: ReasonInfo(
        "PyAV, container count, edit-list cut: use decord, auto or --frame-count decoded", 422
    ),
    R.INVALID_INDICES: ReasonInfo("frame indices outside the video (a decoder's count)", 422),
    R.DECODER_CRASH: ReasonInfo("anything else a decoder raised, named in the line", 422),
    # 400 as a request's parameter; a video's own ``invalid`` is 422 (``video_status``)
    R.INVALID: ReasonInfo(
        "a value out of range (a parameter, or one the library refuses), named in the line",
        400,
    ),
    R.DECODER_DIED: ReasonInfo("the decode worker process died twice on the video", 422),
    R.DECODE_TIMEOUT: ReasonInfo(
        "the decoder made no progress for --decode-timeout seconds", 504, retryable=True
    ),
    R.ENGINE_FAILED: ReasonInfo(
        "the Ray cluster failed the video on every pass: rerun to retry", 500, retryable=True
    ),
    R.LOST: ReasonInfo(
        "the engine returned no result for the video: rerun to retry", 500, retryable=True
    ),
    R.REFUSED: ReasonInfo(
        "connection refused: nothing listens at that host and port", 502, retryable=True
    ),
    R.UNREACHABLE: ReasonInfo(
        "no answer within the open timeout (host down, wrong address, no data)",
        502,
        retryable=True,
    ),
    # 401 as the server's own (missing or wrong API key); a live source's server's 401 too
    R.UNAUTHORIZED: ReasonInfo(
        "missing or wrong credentials: the API key, or user:pass@host in a source URL", 401
    ),
    R.FORBIDDEN: ReasonInfo("a live source's server refuses access (403)", 502),
    R.UNSUPPORTED_PROTOCOL: ReasonInfo(
        "the FFmpeg inside PyAV was built without this protocol", 422
    ),
    R.ERROR: ReasonInfo("any other failure of a live source (the sentence says which)", 502),
    R.STALLED: ReasonInfo(
        "a live source sent no data for --stall-timeout seconds", 502, retryable=True
    ),
    R.ENDED: ReasonInfo("a live source's stream ended", 502, retryable=True),
    R.STOPPED: ReasonInfo("the stream was stopped (Ctrl-C, DELETE, shutdown)", 503),
    R.BAD_REQUEST: ReasonInfo(
        "malformed JSON or multipart, a missing field, a malformed path or URL", 400
    ),
    R.WRONG_INPUT: ReasonInfo("a tensor named other than the model's input", 400),
    R.WRONG_SHAPE: ReasonInfo("a tensor of another shape than the model's input", 400),
    R.WRONG_DATATYPE: ReasonInfo("a tensor of another datatype than the model's input", 400),
    R.BAD_TENSOR: ReasonInfo("tensor data that does not fill the declared shape", 400),
    R.FORBIDDEN_PATH: ReasonInfo("outside --allow-dir, or server-side paths not enabled", 403),
    R.FORBIDDEN_URL: ReasonInfo("not under an --allow-url prefix, or fetching not enabled", 403),
    R.UNKNOWN_MODEL: ReasonInfo("no such model (name or version)", 404),
    R.UNKNOWN_STREAM: ReasonInfo("no stream of that name", 404),
    R.METHOD_NOT_ALLOWED: ReasonInfo("the route does not take that method", 405),
    R.CONFLICT: ReasonInfo("a stream of that name exists", 409),
    R.UPLOAD_TOO_LARGE: ReasonInfo("the request body is past --max-upload", 413),
    R.UNSUPPORTED_MEDIA_TYPE: ReasonInfo(
        "a body that is not multipart/form-data or JSON, or a compressed one", 415
    ),
    R.FETCH_FAILED: ReasonInfo(
        "an allowed URL that could not be downloaded (HTTP error, redirect, network)",
        422,
        retryable=True,
    ),
    R.QUEUE_FULL: ReasonInfo("past --max-queue, or past the server's streams", 429, True),
    R.INTERNAL: ReasonInfo("a bug: logged on the server with its traceback", 500),
    R.NOT_READY: ReasonInfo("the model is loading, or the server is shutting down", 503, True),
    R.TIMEOUT: ReasonInfo("past --timeout", 504, retryable=True),
}
del R


def video_status(reason: Reason) -> int:
    """The HTTP status of a video that cannot be classified: the table's, but 422 where the
    table gives 400 (a video's ``invalid`` is its content, not the request's syntax)."""
    status = REASONS[reason].http_status
    return 422 if status == 400 else status


class SlowFastDeployError(Exception):
    """Base class of every error the toolkit raises on purpose (bad input, missing extras)."""


class CheckpointError(SlowFastDeployError):
    """A checkpoint file cannot be read or does not fit the model."""


class VideoDecodeError(SlowFastDeployError):
    """A video is missing, unreadable, or yields no frames.

    ``reason`` says why (``Reason.NOT_FOUND``, ``Reason.TRUNCATED``, ...); the message is one
    plain sentence naming the file and the fix.
    """

    def __init__(self, message: str, *, reason: Reason = Reason.CORRUPT) -> None:
        super().__init__(message)
        self.reason = Reason(reason)

    def __reduce__(self) -> tuple[object, ...]:  # keep ``reason`` across process boundaries
        return (_video_decode_error, (str(self), self.reason))


def _video_decode_error(message: str, reason: Reason) -> VideoDecodeError:
    return VideoDecodeError(message, reason=reason)


class DataFormatError(SlowFastDeployError):
    """An annotation list, ``.info`` file, ``.bin`` file or result file is malformed."""


class BackendUnavailableError(SlowFastDeployError):
    """The requested runtime, device or precision is not installed or not supported."""


class ModelFormatError(SlowFastDeployError):
    """A model file is not a model this toolkit can run, or its shape disagrees with the input."""


class ParityError(SlowFastDeployError):
    """An exported or compiled model disagrees with the PyTorch reference beyond tolerance."""

"""Exceptions raised by slowfast_deploy; the CLI turns each into one line and an exit code."""

from __future__ import annotations


class SlowFastDeployError(Exception):
    """Base class of every error the toolkit raises on purpose (bad input, missing extras)."""


class CheckpointError(SlowFastDeployError):
    """A checkpoint file cannot be read or does not fit the model."""


class VideoDecodeError(SlowFastDeployError):
    """A video is missing, unreadable, or yields no frames.

    ``reason`` is a machine-readable code (``video.reasons.REASONS``: ``not_found``,
    ``truncated``, ...); the message is one plain sentence naming the file and the fix.
    """

    def __init__(self, message: str, *, reason: str = "corrupt") -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:  # keep ``reason`` across process boundaries
        return (_video_decode_error, (str(self), self.reason))


def _video_decode_error(message: str, reason: str) -> VideoDecodeError:
    return VideoDecodeError(message, reason=reason)


class DataFormatError(SlowFastDeployError):
    """An annotation list, ``.info`` file, ``.bin`` file or result file is malformed."""


class BackendUnavailableError(SlowFastDeployError):
    """The requested runtime, device or precision is not installed or not supported."""


class ModelFormatError(SlowFastDeployError):
    """A model file is not a model this toolkit can run, or its shape disagrees with the input."""


class ParityError(SlowFastDeployError):
    """An exported or compiled model disagrees with the PyTorch reference beyond tolerance."""

"""Exceptions raised by slowfast_deploy; the CLI turns each into one line and an exit code."""

from __future__ import annotations


class SlowFastDeployError(Exception):
    """Base class of every error the toolkit raises on purpose (bad input, missing extras)."""


class CheckpointError(SlowFastDeployError):
    """A checkpoint file cannot be read or does not fit the model."""


class VideoDecodeError(SlowFastDeployError):
    """A video is missing, unreadable, or yields no frames."""


class DataFormatError(SlowFastDeployError):
    """An annotation list, ``.info`` file, ``.bin`` file or result file is malformed."""


class BackendUnavailableError(SlowFastDeployError):
    """The requested runtime, device or precision is not installed or not supported."""


class ModelFormatError(SlowFastDeployError):
    """A model file is not a model this toolkit can run, or its shape disagrees with the input."""


class ParityError(SlowFastDeployError):
    """An exported or compiled model disagrees with the PyTorch reference beyond tolerance."""

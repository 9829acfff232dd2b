"""Decode RGB frames at given indices (the only module of ``video/`` that touches files).

Two decoders, chosen explicitly (never a silent fallback):

- ``decord``: mmaction2's own decoder (``DecordInit`` + ``DecordDecode``); frames are the
  reference by definition, odd-sized videos included.
- ``pyav``: FFmpeg through PyAV, decoding sequentially from the start (accurate, no seek
  drift); bit-identical to decord on even-sized videos, and on yuv420p videos of odd width
  and height through ``_swscale41`` (FFmpeg 4.1's conversion); see the README.

Frame index ``i`` is the ``i``-th decoded frame; the frame count is the container's count,
as decord reports it (``len(VideoReader)``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy._optional import require
from slowfast_deploy.errors import VideoDecodeError
from slowfast_deploy.video import _swscale41

logger = logging.getLogger(__name__)

Decoder = Literal["decord", "pyav"]
DECODERS: tuple[Decoder, ...] = ("decord", "pyav")


@dataclass(frozen=True, slots=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    num_frames: int


class VideoReader(Protocol):
    info: VideoInfo

    def read(self, indices: NDArray[np.int64]) -> NDArray[np.uint8]:
        """Frames at ``indices`` (any order, repeats allowed) as ``[T, H, W, 3]`` RGB uint8."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> VideoReader: ...

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class _ReaderBase:
    path: Path
    info: VideoInfo

    def __enter__(self) -> _ReaderBase:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        pass

    def _check(self, indices: NDArray[np.int64]) -> None:
        if indices.size and (indices.min() < 0 or indices.max() >= self.info.num_frames):
            raise VideoDecodeError(
                f"{self.path}: frame indices {indices.min()}..{indices.max()} outside "
                f"0..{self.info.num_frames - 1}"
            )


class DecordReader(_ReaderBase):
    def __init__(self, path: Path) -> None:
        decord = require("decord", extra="decord", purpose="decoder 'decord'")
        self.path = path
        try:
            self._vr = decord.VideoReader(str(path), num_threads=1)
            height, width = self._vr[0].shape[:2] if len(self._vr) else (0, 0)
            self.info = VideoInfo(width, height, float(self._vr.get_avg_fps()), len(self._vr))
        except (decord.DECORDError, RuntimeError) as err:  # decord raises both
            raise VideoDecodeError(f"{path}: decord cannot open it ({_first_line(err)})") from err
        if self.info.num_frames < 1:
            raise VideoDecodeError(f"{path}: no video frames")
        self._vr.seek(0)

    def read(self, indices: NDArray[np.int64]) -> NDArray[np.uint8]:
        self._check(indices)
        decord = require("decord", extra="decord", purpose="decoder 'decord'")
        try:
            frames: NDArray[np.uint8] = self._vr.get_batch(indices.tolist()).asnumpy()
        except (decord.DECORDError, RuntimeError) as err:
            raise VideoDecodeError(f"{self.path}: decord failed ({_first_line(err)})") from err
        return frames

    def close(self) -> None:
        self._vr = None


class PyAVReader(_ReaderBase):
    def __init__(self, path: Path) -> None:
        av = require("av", extra="av", purpose="decoder 'pyav'")
        self.path = path
        try:
            self._container = av.open(str(path))
            if not self._container.streams.video:
                raise VideoDecodeError(f"{path}: no video stream")
            stream = self._container.streams.video[0]
            num_frames = stream.frames or self._count_frames()
            fps = float(stream.average_rate or stream.guessed_rate or 0.0)
            self.info = VideoInfo(stream.width, stream.height, fps, num_frames)
        except av.FFmpegError as err:
            raise VideoDecodeError(f"{path}: PyAV cannot open it ({_first_line(err)})") from err
        if self.info.num_frames < 1:
            raise VideoDecodeError(f"{path}: no video frames")
        if self.info.height % 2 and not self.info.width % 2:
            logger.warning(
                "%s: %dx%d (even width, odd height): PyAV's colour conversion differs from "
                "decord's here; use --decoder decord for exact mmaction2 parity",
                path,
                self.info.width,
                self.info.height,
            )

    def _count_frames(self) -> int:
        count = sum(1 for p in self._container.demux(video=0) if p.size)
        self._container.seek(0)
        return count

    def read(self, indices: NDArray[np.int64]) -> NDArray[np.uint8]:
        self._check(indices)
        av = require("av", extra="av", purpose="decoder 'pyav'")
        wanted = set(indices.tolist())
        last = max(wanted)
        got: dict[int, NDArray[np.uint8]] = {}
        try:
            self._container.seek(0)
            for i, frame in enumerate(self._container.decode(video=0)):
                if i in wanted:
                    got[i] = _frame_to_rgb(frame)
                if i >= last:
                    break
        except av.FFmpegError as err:
            raise VideoDecodeError(f"{self.path}: PyAV failed ({_first_line(err)})") from err
        missing = wanted - got.keys()
        if missing:
            raise VideoDecodeError(
                f"{self.path}: container says {self.info.num_frames} frames but frame "
                f"{min(missing)} could not be decoded (truncated or corrupt file)"
            )
        return np.stack([got[i] for i in indices.tolist()])

    def close(self) -> None:
        self._container.close()


def _frame_to_rgb(frame: Any) -> NDArray[np.uint8]:
    """RGB of a PyAV frame, converted as decord's FFmpeg 4.1 does (see ``_swscale41``)."""
    if _swscale41.applies(
        frame.width,
        frame.height,
        frame.format.name,
        int(frame.colorspace),
        int(frame.color_range),
    ):
        width, height = frame.width, frame.height
        chroma = ((width + 1) // 2, (height + 1) // 2)
        y, u, v = (
            np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w]
            for plane, (w, h) in zip(frame.planes, [(width, height), chroma, chroma], strict=True)
        )
        return _swscale41.yuv420p_to_rgb24(y, u, v)
    rgb: NDArray[np.uint8] = frame.to_ndarray(format="rgb24")
    return rgb


def open_video(path: str | os.PathLike[str], *, decoder: Decoder = "decord") -> VideoReader:
    """Open ``path`` with the named decoder; raises ``VideoDecodeError`` if it cannot."""
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"{path}: no such video file")
    if decoder == "decord":
        return DecordReader(path)
    if decoder == "pyav":
        return PyAVReader(path)
    raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__

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


# --- Sequential reading, for timelines of long videos -------------------------------------
# (appended as one section, so it merges with concurrent edits of the readers above)

from collections.abc import Iterator  # noqa: E402


@dataclass(frozen=True, slots=True)
class TimedFrame:
    """One decoded frame in presentation order; ``rgb`` only for frames asked for."""

    index: int
    time_s: float  # presentation time in seconds (the stream's start time is 0)
    rgb: NDArray[np.uint8] | None  # [H, W, 3]; None when the caller does not need the pixels


def iter_frames(
    reader: VideoReader,
    wanted: NDArray[np.bool_],
    *,
    first: int = 0,
    chunk_size: int = 32,
) -> Iterator[TimedFrame]:
    """Frames ``first .. len(wanted) - 1`` of an open reader, each decoded once, in order.

    Pixels (the same as ``reader.read`` gives) come only where ``wanted`` is true, so unused
    frames cost a decode but no colour conversion. Memory does not grow with the video.
    """
    stop = int(wanted.shape[0])
    if not 0 <= first <= stop <= reader.info.num_frames:
        raise ValueError(
            f"frames {first}..{stop} are outside 0..{reader.info.num_frames} of the video"
        )
    if isinstance(reader, DecordReader):
        yield from _iter_decord(reader, wanted, first, stop, chunk_size)
    elif isinstance(reader, PyAVReader):
        yield from _iter_pyav(reader, wanted, first, stop)
    else:
        raise TypeError(f"iter_frames needs a reader from open_video, got {type(reader)}")


def _iter_decord(
    reader: DecordReader, wanted: NDArray[np.bool_], first: int, stop: int, chunk_size: int
) -> Iterator[TimedFrame]:
    # decord reads increasing indices without seeking back (it skips forward, decoding without
    # colour conversion), so chunks of wanted indices decode the video once, in order.
    fps = reader.info.fps or 1.0
    warned = False
    for begin in range(first, stop, chunk_size):
        indices = np.arange(begin, min(begin + chunk_size, stop), dtype=np.int64)
        pick = indices[wanted[indices]]
        frames = reader.read(pick) if pick.size else None
        times = np.asarray(reader._vr.get_frame_timestamp(indices.tolist()), np.float64)
        times = times.reshape(-1, 2)[:, 0]
        if not (np.isfinite(times).all() and (times >= 0).all()):
            if not warned:
                logger.warning(
                    "%s: the container has no usable timestamps; times are frame / %.3f fps",
                    reader.path,
                    fps,
                )
                warned = True
            times = indices / fps
        rows = dict(zip(pick.tolist(), range(pick.size), strict=True))
        for index, time_s in zip(indices.tolist(), times.tolist(), strict=True):
            row = rows.get(index)
            rgb = frames[row] if frames is not None and row is not None else None
            yield TimedFrame(index, float(time_s), rgb)


def _iter_pyav(
    reader: PyAVReader, wanted: NDArray[np.bool_], first: int, stop: int
) -> Iterator[TimedFrame]:
    av = require("av", extra="av", purpose="decoder 'pyav'")
    fps = reader.info.fps or 1.0
    container = reader._container
    stream = container.streams.video[0]
    offset_s = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
    index = -1
    try:
        container.seek(0)
        for index, frame in enumerate(container.decode(video=0)):
            if index >= stop:
                break
            if index < first:
                continue
            time_s = frame.time - offset_s if frame.time is not None else index / fps
            rgb = _frame_to_rgb(frame) if wanted[index] else None
            yield TimedFrame(index, float(time_s), rgb)
    except av.FFmpegError as err:
        raise VideoDecodeError(f"{reader.path}: PyAV failed ({_first_line(err)})") from err
    if index + 1 < stop:
        raise VideoDecodeError(
            f"{reader.path}: container says {reader.info.num_frames} frames but frame "
            f"{index + 1} could not be decoded (truncated or corrupt file); "
            "stop before it with --end"
        )

"""Decode RGB frames at given indices (the only module of ``video/`` that touches files).

Decoders, chosen explicitly (never a silent fallback):

- ``decord``: mmaction2's own decoder (``DecordInit`` + ``DecordDecode``); frames are the
  reference by definition, odd-sized videos included.
- ``pyav``: FFmpeg through PyAV, decoding sequentially from the start (accurate, no seek
  drift); bit-identical to decord, FFmpeg 4.1's conversions re-implemented where newer
  FFmpeg differs (``_swscale41``: odd sizes, 10/12-bit) and the display matrix applied as
  decord applies it; on edit-list cuts only with ``frame_count="decoded"`` (see
  ``EditList``); see docs/design/decoding.md.
- ``auto``: decord, and PyAV for a video decord cannot open or decode but PyAV can; the
  decoder that made the frames is reported per video.

Frame index ``i`` is the ``i``-th frame as decord numbers it, and the frame count is the
container's count (``len(VideoReader)``, mmaction2's) unless ``frame_count="decoded"``: then
only the frames that play are counted (edit lists honoured). Frames are read one by one and
passed through ``transform`` (e.g. the resize) as they are decoded, so memory holds the
transformed frames, never all full-size ones. Failures raise ``VideoDecodeError`` with a
reason code (``video.reasons``) and one plain sentence.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, TypedDict, TypeVar

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy._optional import require
from slowfast_deploy.errors import Reason, VideoDecodeError
from slowfast_deploy.video import _quiet, _swscale41, reasons
from slowfast_deploy.video.frames import FrameClock, TimedFrame, decode_timed

logger = logging.getLogger(__name__)

Decoder = Literal["decord", "pyav", "auto"]
DECODERS: tuple[Decoder, ...] = ("decord", "pyav", "auto")
FrameCount = Literal["container", "decoded"]
FRAME_COUNTS: tuple[FrameCount, ...] = ("container", "decoded")
Transform = Callable[[NDArray[np.uint8]], NDArray[np.uint8]]


class DecodeFacts(TypedDict, total=False):
    """What ``read_frames`` says about the frames it made (JSON, part of a video's record)."""

    decoder: Decoder  # the decoder that made them ("decord" or "pyav"; never "auto")
    hidden_frames: int  # frames the container counts that never play (edit lists), if any


# decord's get_batch returns each call's frames at full size: small calls bound the memory
_DECORD_FRAMES_PER_CALL = 4
# failures that are the file's, not the decoder's: ``auto`` does not try PyAV after them
_FILE_REASONS = frozenset(
    {
        Reason.NOT_FOUND,
        Reason.NOT_REGULAR_FILE,
        Reason.PERMISSION_DENIED,
        Reason.NOT_A_VIDEO,
        Reason.NO_VIDEO_STREAM,
        Reason.TRUNCATED,
        Reason.CORRUPT,
    }
)


@dataclass(frozen=True, slots=True)
class VideoInfo:
    width: int  # as the frames come out (after rotation)
    height: int
    fps: float
    num_frames: int  # the count frame indices refer to (container's or decoded, see module doc)
    hidden_frames: int = 0  # frames the container counts that never play (edit lists)
    rotation: int = 0  # clockwise degrees PyAV applied (display matrix); 0 from decord


_Reader = TypeVar("_Reader")


class VideoReader(Protocol):
    info: VideoInfo

    def read(
        self,
        indices: NDArray[np.int64],
        *,
        transform: Transform | None = None,
        on_frame: Callable[[], None] | None = None,
    ) -> NDArray[np.uint8]:
        """Frames at ``indices`` (any order, repeats allowed) as ``[T, H, W, 3]`` RGB uint8,
        each passed through ``transform``; ``on_frame`` is called once per decoded frame."""
        ...

    def close(self) -> None: ...

    def __enter__(self: _Reader) -> _Reader: ...

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class _ReaderBase:
    path: Path
    info: VideoInfo

    def __enter__(self: _Reader) -> _Reader:
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
                f"0..{self.info.num_frames - 1}",
                reason=Reason.INVALID_INDICES,
            )


class DecordReader(_ReaderBase):
    def __init__(
        self,
        path: Path,
        *,
        frame_count: FrameCount = "container",
        on_frame: Callable[[], None] | None = None,
    ) -> None:
        decord = require("decord", extra="decord", purpose="decoder 'decord'")
        _quiet.configure_decord_logging(decord)
        self.path = path
        self._on_frame = on_frame
        self._vr: Any = None
        try:
            with _quiet.captured_stderr(path):
                self._vr = decord.VideoReader(str(path), num_threads=1)
                num_frames = len(self._vr)
                first = self._vr[0].asnumpy() if num_frames else None
                fps = float(self._vr.get_avg_fps())
                self._vr.seek(0)
        except (decord.DECORDError, RuntimeError) as err:  # decord raises both
            raise _decord_failure(path, err, on_frame) from err
        if first is None:
            found = reasons.diagnose(path, on_frame=on_frame)
            raise found or reasons.fail(path, Reason.CORRUPT, "no frame decodes")
        if first.ndim != 3 or first.shape[2] != 3:  # decord's copy mis-sizes these frames
            raise _decord_unsupported_size(path)
        hidden = count_hidden_frames(path)
        self._sequential = frame_count == "decoded" and hidden > 0
        if self._sequential:
            num_frames -= hidden
        height, width = first.shape[:2]  # decord turned the frame already: rotation unknown
        self.info = VideoInfo(width, height, fps, num_frames, hidden)

    def read(
        self,
        indices: NDArray[np.int64],
        *,
        transform: Transform | None = None,
        on_frame: Callable[[], None] | None = None,
    ) -> NDArray[np.uint8]:
        self._check(indices)
        on_frame = on_frame or self._on_frame
        order = indices.tolist()
        # One get_batch call (mmaction2's) decodes the first occurrence of each index, in
        # order, and copies repeats from it; the same positions in calls of a few frames leave
        # decord's decoder in the same states, so the frames are the same. In "decoded" mode
        # every frame up to the last wanted is read, without seeking (see EditList): the
        # frames that play.
        plan = list(range(max(order) + 1)) if self._sequential else list(dict.fromkeys(order))
        wanted = set(order)
        got: dict[int, NDArray[np.uint8]] = {}
        for start in range(0, len(plan), _DECORD_FRAMES_PER_CALL):
            chunk = plan[start : start + _DECORD_FRAMES_PER_CALL]
            for index, frame in zip(chunk, self._get_batch(chunk), strict=True):
                if on_frame is not None:
                    on_frame()
                if index in wanted:
                    got[index] = transform(frame) if transform is not None else frame.copy()
        return np.stack([got[i] for i in order])

    def _get_batch(self, chunk: list[int]) -> NDArray[np.uint8]:
        decord = require("decord", extra="decord", purpose="decoder 'decord'")
        try:
            with _quiet.captured_stderr(self.path):
                frames: NDArray[np.uint8] = self._vr.get_batch(chunk).asnumpy()
        except (decord.DECORDError, RuntimeError) as err:
            raise _decord_failure(self.path, err, self._on_frame) from err
        return frames

    def close(self) -> None:
        self._vr = None


def _decord_failure(
    path: Path, err: BaseException, on_frame: Callable[[], None] | None
) -> VideoDecodeError:
    """decord's error, said plainly: what PyAV finds wrong with the file, else decord's limit."""
    text = str(err)
    logger.info("%s: decord: %s", path, _first_line(err))
    if "size must exactly match" in text:
        return _decord_unsupported_size(path)
    # decord's own limits need only a cheap look; its decoding errors, the whole file
    metadata = "frame-count" in text or "duration" in text
    found = reasons.diagnose(path, every_frame=not metadata, on_frame=on_frame)
    if found is not None:
        return found
    if metadata:
        what = "decord cannot read it (no usable frame count or duration in its metadata)"
    else:
        what = "decord cannot read it"
    return reasons.fail(
        path, Reason.UNSUPPORTED_BY_DECORD, f"{what}; PyAV can: use --decoder auto or pyav"
    )


def _decord_unsupported_size(path: Path) -> VideoDecodeError:
    return reasons.fail(
        path,
        Reason.UNSUPPORTED_SIZE,
        "decord mis-sizes the frames of this video (its size or "
        "rotation); use --decoder auto or pyav",
    )


class PyAVReader(_ReaderBase):
    def __init__(
        self,
        path: Path,
        *,
        frame_count: FrameCount = "container",
        on_frame: Callable[[], None] | None = None,
    ) -> None:
        av = require("av", extra="av", purpose="decoder 'pyav'")
        _quiet.configure_pyav_logging(av)
        self.path = path
        self._on_frame = on_frame
        try:
            self._container = av.open(str(path))
        except (av.FFmpegError, OSError) as err:
            raise self._failure() from err
        try:
            self._open(frame_count)
        except BaseException:
            self._container.close()
            raise

    def _open(self, frame_count: FrameCount) -> None:
        av = require("av", extra="av", purpose="decoder 'pyav'")
        if reasons.is_still_image(self._container):
            raise reasons.still_image(self.path)
        stream = reasons.video_stream(self._container)
        if stream is None:
            raise reasons.no_video_stream(self.path, self._container)
        self._stream = stream
        edits = EditList.probe(self._container, stream)
        num_frames = stream.frames or self._count_packets()
        try:
            first = next(self._container.decode(stream), None)
        except av.FFmpegError as err:
            raise self._failure() from err
        if first is None:
            raise self._failure()
        self._size = (first.width, first.height)
        self._sources: EditList | None = None  # set: decord's numbering needed (read refuses)
        if frame_count == "decoded":
            num_frames -= edits.hidden
        elif edits.hidden:
            self._sources = edits
        rotation = display_rotation(first)
        width, height = self._size if rotation in (0, 180) else self._size[::-1]
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        self.info = VideoInfo(width, height, fps, num_frames, edits.hidden, rotation)
        if height % 2 and not width % 2:
            logger.warning(
                "%s: %dx%d (even width, odd height): PyAV's colour conversion differs from "
                "decord's here; use --decoder decord for exact mmaction2 parity",
                self.path,
                width,
                height,
            )

    def _count_packets(self) -> int:
        count = sum(1 for p in self._container.demux(self._stream) if p.size)
        self._container.seek(0)
        return count

    def _failure(self) -> VideoDecodeError:
        return reasons.diagnose(self.path, on_frame=self._on_frame) or reasons.fail(
            self.path, Reason.CORRUPT, "PyAV cannot decode its video stream; re-encode it"
        )

    def read(
        self,
        indices: NDArray[np.int64],
        *,
        transform: Transform | None = None,
        on_frame: Callable[[], None] | None = None,
    ) -> NDArray[np.uint8]:
        self._check(indices)
        on_frame = on_frame or self._on_frame
        av = require("av", extra="av", purpose="decoder 'pyav'")
        if self._sources is not None:
            raise reasons.fail(
                self.path,
                Reason.EDIT_LIST,
                f"its container counts {self._sources.hidden} frames "
                "that never play (an edit list) and only decord numbers frames around them as "
                "mmaction2 sees them: use --decoder decord or auto, or --frame-count decoded "
                "for the frames that play",
            )
        sources = indices.tolist()
        wanted = set(sources)
        last = max(wanted)
        got: dict[int, NDArray[np.uint8]] = {}
        try:
            self._container.seek(0)
            for i, frame in enumerate(self._container.decode(self._stream)):
                if on_frame is not None:
                    on_frame()
                if i in wanted:
                    got[i] = self._convert(frame, i, transform)
                if i >= last:
                    break
        except av.FFmpegError as err:
            raise self._failure() from err
        missing = wanted - got.keys()
        if missing:
            raise self._failure()
        return np.stack([got[i] for i in sources])

    def _convert(self, frame: Any, index: int, transform: Transform | None) -> NDArray[np.uint8]:
        if (frame.width, frame.height) != self._size:
            raise reasons.fail(
                self.path,
                Reason.SIZE_CHANGE,
                f"the frame size changes from {self._size[0]}x"
                f"{self._size[1]} to {frame.width}x{frame.height} by frame {index}; PyAV does "
                "not rescale it as decord does: use --decoder decord or auto",
            )
        rgb = _frame_to_rgb(frame)
        return transform(rgb) if transform is not None else rgb

    def close(self) -> None:
        self._container.close()


def display_rotation(frame: Any) -> int:
    """Clockwise degrees decord (FFmpeg 4.1's ``rotate`` tag) turns a frame: 0/90/180/270.

    FFmpeg 4.1 sets ``rotate`` to minus the display matrix's angle; a mirrored matrix reads as
    a 180-degree turn and other angles are ignored, as decord does.
    """
    angle = round(-float(getattr(frame, "rotation", 0) or 0)) % 360
    return angle if angle in (90, 180, 270) else 0


def _rotate(rgb: NDArray[Any], degrees: int) -> NDArray[Any]:
    """Turn an image (or one plane) clockwise by ``degrees``."""
    if degrees == 90:
        return np.ascontiguousarray(np.rot90(rgb, -1))  # clockwise
    if degrees == 180:
        return np.ascontiguousarray(rgb[::-1, ::-1])
    if degrees == 270:
        return np.ascontiguousarray(np.rot90(rgb, 1))
    return rgb


@dataclass(frozen=True, slots=True)
class EditList:
    """Packets an mp4 edit list hides (pre-roll kept by ``ffmpeg -ss T -c copy`` cuts).

    decord counts them (so mmaction2 does) and numbers the frames around them by how it
    reached them: from the start its frame ``i`` is the ``i``-th frame that plays, after a
    seek the ``i``-th packet's, and past the last frame that plays it repeats that frame
    (its threaded decoder drops frames by timestamp). That numbering is decord's alone:
    PyAV reads such a video only with ``frame_count="decoded"`` (the frames that play).
    """

    hidden: int

    @classmethod
    def probe(cls, container: Any, stream: Any) -> EditList:
        if "mp4" not in container.format.name or not _may_hide_frames(stream):
            return cls(0)
        hidden = sum(1 for p in container.demux(stream) if p.size and p.is_discard)
        container.seek(0)
        return cls(hidden)


def _may_hide_frames(stream: Any) -> bool:
    """Cheap gate: more packets than the stream's (edit-list) duration holds."""
    rate = stream.average_rate or stream.guessed_rate
    if not stream.frames or not rate or stream.duration is None:
        return False
    return bool(stream.frames > float(stream.duration * stream.time_base * rate))


def count_hidden_frames(path: Path) -> int:
    """Frames the container of a video decord opened counts that never play (edit lists),
    found with PyAV (no frame is decoded: a few ms)."""
    av = require("av", extra="av", purpose="counting hidden frames")
    try:
        with av.open(str(path)) as container:
            stream = reasons.video_stream(container)
            return EditList.probe(container, stream).hidden if stream is not None else 0
    except av.FFmpegError:
        return 0


def _frame_to_rgb(frame: Any) -> NDArray[np.uint8]:
    """RGB of a PyAV frame, rotated and converted as decord's FFmpeg 4.1 does.

    decord turns the YUV planes (``transpose``/``hflip,vflip`` filters) before converting;
    where the conversion is emulated (``_swscale41``) the planes are turned first too, as
    it does not commute with a turn; PyAV's own conversion does, so its RGB is turned.
    """
    rotation = display_rotation(frame)
    facts = (
        frame.width,
        frame.height,
        frame.format.name,
        int(frame.colorspace),
        int(frame.color_range),
    )
    if _swscale41.applies(*facts):
        y, u, v = (_rotate(p, rotation) for p in _planes(frame, np.dtype(np.uint8)))
        return _swscale41.yuv420p_to_rgb24(y, u, v)
    if _swscale41.applies_10bit(*facts):
        y10, u10, v10 = (_rotate(p, rotation) for p in _planes(frame, np.dtype("<u2")))
        return _swscale41.yuv420p10_to_rgb24(
            y10,
            u10,
            v10,
            colorspace=facts[3],
            full_range=facts[4] == 2,
            bits=_swscale41.bit_depth(facts[2]),
        )
    return _rotate(frame.to_ndarray(format="rgb24"), rotation)


def _planes(frame: Any, dtype: np.dtype[Any]) -> list[NDArray[Any]]:
    """Y, U, V of a 4:2:0 or 4:2:2 frame without row padding."""
    width, height = frame.width, frame.height
    full_height = "422" in frame.format.name
    chroma = ((width + 1) // 2, height if full_height else (height + 1) // 2)
    return [
        np.frombuffer(plane, dtype).reshape(-1, plane.line_size // dtype.itemsize)[:h, :w]
        for plane, (w, h) in zip(frame.planes, [(width, height), chroma, chroma], strict=True)
    ]


def open_video(
    path: str | os.PathLike[str],
    *,
    decoder: Decoder = "decord",
    frame_count: FrameCount = "container",
    on_frame: Callable[[], None] | None = None,
) -> VideoReader:
    """Open ``path`` with the named decoder; raises ``VideoDecodeError`` (with a reason) if it
    cannot. ``auto`` opens with decord and, where decord cannot open it, with PyAV.
    ``on_frame`` is the heartbeat while a failure is looked into (and the default of
    ``read``'s)."""
    path = Path(path)
    reasons.check_path(path)
    if decoder == "decord":
        return DecordReader(path, frame_count=frame_count, on_frame=on_frame)
    if decoder == "pyav":
        return PyAVReader(path, frame_count=frame_count, on_frame=on_frame)
    if decoder == "auto":
        try:
            return DecordReader(path, frame_count=frame_count, on_frame=on_frame)
        except VideoDecodeError as err:
            if err.reason in _FILE_REASONS:
                raise
            logger.info("%s: decord cannot decode it (%s); using PyAV", path, err.reason)
            return PyAVReader(path, frame_count=frame_count, on_frame=on_frame)
    raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")


def read_frames(
    path: str | os.PathLike[str],
    sample: Callable[[int], NDArray[np.int64]],
    *,
    decoder: Decoder = "decord",
    frame_count: FrameCount = "container",
    transform: Transform | None = None,
    on_frame: Callable[[], None] | None = None,
) -> tuple[NDArray[np.uint8], NDArray[np.int64], DecodeFacts]:
    """Open, sample indices from the frame count, read them: ``(frames, indices, facts)``.

    ``facts`` (JSON-able) says which decoder made the frames and, if any, the hidden
    frames. With ``auto``, a video decord opens but cannot decode is read again with PyAV.
    """
    first: Decoder = "decord" if decoder == "auto" else decoder
    try:
        return _read_with(path, sample, first, frame_count, transform, on_frame)
    except VideoDecodeError as err:
        if decoder != "auto" or err.reason in _FILE_REASONS:
            raise
        logger.info("%s: decord cannot decode it (%s); using PyAV", path, err.reason)
    return _read_with(path, sample, "pyav", frame_count, transform, on_frame)


def _read_with(
    path: str | os.PathLike[str],
    sample: Callable[[int], NDArray[np.int64]],
    decoder: Decoder,
    frame_count: FrameCount,
    transform: Transform | None,
    on_frame: Callable[[], None] | None,
) -> tuple[NDArray[np.uint8], NDArray[np.int64], DecodeFacts]:
    with open_video(path, decoder=decoder, frame_count=frame_count, on_frame=on_frame) as reader:
        indices = sample(reader.info.num_frames)
        frames = reader.read(indices, transform=transform, on_frame=on_frame)
        info = reader.info
    facts: DecodeFacts = {"decoder": decoder}
    if info.hidden_frames:
        facts["hidden_frames"] = info.hidden_frames
    return frames, indices, facts


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


# --- Sequential reading, for timelines of long videos -------------------------------------
# (appended as one section, so it merges with concurrent edits of the readers above)


def iter_frames(
    reader: VideoReader,
    wanted: NDArray[np.bool_],
    *,
    first: int = 0,
    chunk_size: int = 32,
) -> Iterator[TimedFrame]:
    """Frames ``first .. len(wanted) - 1`` of an open reader, each decoded once, in order,
    timed by ``frames.FrameClock`` from the container's start time.

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
    # decord's timestamps are from the start already (a missing one is a huge negative).
    clock = FrameClock(reader.info.fps, origin_s=0.0, name=reader.path)
    for begin in range(first, stop, chunk_size):
        indices = np.arange(begin, min(begin + chunk_size, stop), dtype=np.int64)
        pick = indices[wanted[indices]]
        frames = reader.read(pick) if pick.size else None
        times = np.asarray(reader._vr.get_frame_timestamp(indices.tolist()), np.float64)
        rows = dict(zip(pick.tolist(), range(pick.size), strict=True))
        for index, time_s in zip(
            indices.tolist(), times.reshape(-1, 2)[:, 0].tolist(), strict=True
        ):
            row = rows.get(index)
            rgb = frames[row] if frames is not None and row is not None else None
            yield TimedFrame(index, clock.time_s(index, time_s), rgb)


def _iter_pyav(
    reader: PyAVReader, wanted: NDArray[np.bool_], first: int, stop: int
) -> Iterator[TimedFrame]:
    av = require("av", extra="av", purpose="decoder 'pyav'")
    if reader._sources is not None:  # decord's numbering around hidden frames needs seeks
        raise reasons.fail(
            reader.path,
            Reason.EDIT_LIST,
            f"its container counts {reader.info.hidden_frames} frames that never play (an "
            "edit list) and only decord numbers frames around them as mmaction2 sees them: "
            "use --decoder decord or auto",
        )
    stream = reader._stream
    offset_s = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
    clock = FrameClock(reader.info.fps, origin_s=offset_s, name=reader.path)
    try:
        reader._container.seek(0)
        decoded = yield from decode_timed(
            reader._container,
            stream,
            clock,
            wanted=lambda index: bool(wanted[index]),
            convert=lambda frame, index: reader._convert(frame, index, None),
            first=first,
            stop=stop,
        )
    except av.FFmpegError as err:
        raise reader._failure() from err
    if decoded < stop:
        raise VideoDecodeError(
            f"{reader.path}: container says {reader.info.num_frames} frames but frame "
            f"{decoded} could not be decoded (truncated or corrupt file); "
            "stop before it with --end",
            reason=Reason.TRUNCATED,
        )


# --- Live frames (streams opened by ``live.sources``) --------------------------------------


def frame_to_rgb(frame: Any) -> NDArray[np.uint8]:
    """``[H, W, 3]`` RGB of one decoded PyAV frame, converted exactly as the ``pyav`` reader
    converts a file's frames (FFmpeg 4.1's conversions, display matrix applied)."""
    return _frame_to_rgb(frame)

"""Why a video cannot be decoded: one reason code and one plain sentence per failure.

``check_path`` looks at the path before any decoder opens it (a FIFO is never opened, so it
cannot hang a run); ``diagnose`` finds, with PyAV, what is wrong with a file a decoder
refused, so the sentence says it in the user's words and never pastes the decoder's log.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slowfast_deploy._optional import require
from slowfast_deploy.errors import Reason, VideoDecodeError

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def fail(path: Path, reason: Reason, what: str) -> VideoDecodeError:
    """The one-line error: ``PATH: what is wrong; the fix``."""
    return VideoDecodeError(f"{path}: {what}", reason=reason)


def check_path(path: Path) -> None:
    """Raise ``VideoDecodeError`` unless ``path`` is a readable regular file (others unopened)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as err:
        raise fail(path, Reason.NOT_FOUND, "no such video file") from err
    except NotADirectoryError as err:
        raise fail(
            path, Reason.NOT_FOUND, "no such video file (a parent is not a directory)"
        ) from err
    except PermissionError as err:
        raise fail(path, Reason.PERMISSION_DENIED, "permission denied on its folder") from err
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise fail(
            path, Reason.NOT_REGULAR_FILE, f"is {kind}, not a video file; list video files only"
        )
    try:
        with open(path, "rb"):
            pass
    except PermissionError as err:
        raise fail(
            path, Reason.PERMISSION_DENIED, "permission denied; make it readable (chmod a+r)"
        ) from err


def diagnose(
    path: Path, *, every_frame: bool = True, on_frame: Callable[[], None] | None = None
) -> VideoDecodeError | None:
    """What PyAV finds wrong with ``path``, or None if nothing.

    ``every_frame`` decodes the whole stream (finds truncation and corruption anywhere);
    without it only the container, its streams and the first frame are checked (cheap).
    ``on_frame`` is called once per packet (the heartbeat of a long look).
    """
    av = require("av", extra="av", purpose="diagnosing videos")
    if path.stat().st_size == 0:
        return fail(path, Reason.NOT_A_VIDEO, "empty file (0 bytes); remove it from the list")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError):
        if _mp4_without_index(path):
            return fail(
                path,
                Reason.TRUNCATED,
                "truncated: the file ends before its index (moov) was "
                "written, so no frame can be located; download or copy it again",
            )
        return fail(
            path, Reason.NOT_A_VIDEO, "not a video file FFmpeg recognises; remove it from the list"
        )
    with container:
        if is_still_image(container):
            return still_image(path)
        stream = video_stream(container)
        if stream is None:
            return no_video_stream(path, container)
        return _decode_all(path, container, stream, every_frame, on_frame)


def is_still_image(container: Any) -> bool:
    """A picture file (PNG, JPEG, ...) that FFmpeg reads as a one-frame video."""
    return bool(container.format.name == "image2" or container.format.name.endswith("_pipe"))


def still_image(path: Path) -> VideoDecodeError:
    return fail(path, Reason.NOT_A_VIDEO, "a still image, not a video; remove it from the list")


def video_stream(container: Any) -> Any:
    """The stream FFmpeg's ``av_find_best_stream`` picks (decord's choice), cover art excluded."""
    av = require("av", extra="av", purpose="decoder 'pyav'")
    playable = [
        s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic
    ]
    if not playable:
        return None
    best = container.streams.best("video")
    return best if best in playable else playable[0]


def no_video_stream(path: Path, container: Any) -> VideoDecodeError:
    if container.streams.video:
        what = "has no video stream, only a still cover image; there is no video to classify"
    elif container.streams.audio:
        what = "has no video stream (audio only); remove it from the list"
    else:
        what = "has no video stream; remove it from the list"
    return fail(path, Reason.NO_VIDEO_STREAM, what)


def _decode_all(
    path: Path,
    container: Any,
    stream: Any,
    every_frame: bool,
    on_frame: Callable[[], None] | None,
) -> VideoDecodeError | None:
    av = require("av", extra="av", purpose="diagnosing videos")
    packets = frames = 0
    first_error: int | None = None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            packets += 1
            if on_frame is not None:
                on_frame()
            try:
                frames += len(packet.decode())
            except av.FFmpegError:
                first_error = frames if first_error is None else first_error
            if frames and not every_frame:
                return None
    except av.FFmpegError:
        first_error = frames if first_error is None else first_error
    expected = stream.frames
    if expected and packets < expected:
        return truncated(path, frames, expected, stream)
    if first_error is not None:
        return corrupt(path, first_error)
    if frames == 0:
        return fail(
            path, Reason.CORRUPT, "no frame of its video stream decodes; re-encode or replace it"
        )
    return None


def truncated(path: Path, played: int, expected: int, stream: Any) -> VideoDecodeError:
    rate = float(stream.average_rate or stream.guessed_rate or 0)
    seconds = f" ({played / rate:.1f} s of {expected / rate:.1f} s)" if rate else ""
    return fail(
        path,
        Reason.TRUNCATED,
        f"truncated: plays {played} of {expected} frames{seconds}; download or copy it again",
    )


def corrupt(path: Path, frame_index: int) -> VideoDecodeError:
    return fail(
        path,
        Reason.CORRUPT,
        f"corrupt data near frame {frame_index}; re-encode or replace the file",
    )


def _mp4_without_index(path: Path) -> bool:
    """An ISO media file (``ftyp`` first) whose top-level boxes hold no ``moov``."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        offset = 0
        first = True
        while offset + 8 <= size:
            f.seek(offset)
            header = f.read(16)
            box_size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if first and kind != b"ftyp":
                return False
            first = False
            if kind == b"moov":
                return False
            if box_size == 1 and len(header) == 16:
                box_size = int.from_bytes(header[8:16], "big")
            if box_size < 8:  # 0 = "to the end of the file"
                break
            offset += box_size
    return not first

"""A generated corpus of hostile video files (rotated, cut, 10-bit, tiny, broken, not files).

Every file is small (a few KB) and made here: with PyAV where it can, with Debian's ``ffmpeg``
for the few containers PyAV cannot shape (edit lists, cover art). ``build_corpus`` returns
``{kind: path}``; kinds that need ``ffmpeg`` are left out when it is absent.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 80, 48  # 90/270 rotation of this size also hits decord's row-stride bug

# tkhd display matrices (a, b, c, d), as phones write them
MATRICES = {
    "rot90": (0, 1, -1, 0),
    "rot180": (-1, 0, 0, -1),
    "rot270": (0, -1, 1, 0),
    "mirrored": (-1, 0, 0, 1),
}


def random_frames(num_frames: int, width: int, height: int, *, seed: int = 0) -> np.ndarray:
    """Smooth random frames (blurred noise) so lossy codecs keep them recognisable."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (num_frames, height // 2 + 1, width // 2 + 1, 3), np.uint8)
    return np.ascontiguousarray(small.repeat(2, 1).repeat(2, 2)[:, :height, :width])


def write_video(
    path: Path,
    *,
    num_frames: int = 40,
    width: int = WIDTH,
    height: int = HEIGHT,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    fps: int = 25,
    options: dict[str, str] | None = None,
    seed: int = 0,
    pts: list[int] | None = None,
    faststart: bool = False,
) -> Path:
    """Encode ``num_frames`` random frames; ``pts`` (in 1/1000 s) makes a VFR stream."""
    import av

    frames = random_frames(num_frames, width, height, seed=seed)
    muxer_options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=muxer_options) as container:
        stream = container.add_stream(codec, rate=None if pts else fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {"preset": "ultrafast", **(options or {})} if "264" in codec else {}
        if pts:
            stream.time_base = Fraction(1, 1000)
            stream.codec_context.time_base = Fraction(1, 1000)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts:
                frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def set_display_matrix(src: Path, dst: Path, matrix: tuple[int, int, int, int]) -> Path:
    """Copy an mp4, setting its video track's tkhd display matrix (what phones write)."""
    data = bytearray(src.read_bytes())
    at = data.find(b"tkhd")
    version = data[at + 4]
    offset = at + 8 + (32 if version == 1 else 20) + 8 + 8  # times, ids, reserved, layer..volume
    a, b, c, d = (v << 16 & 0xFFFFFFFF for v in matrix)
    data[offset : offset + 36] = struct.pack(">9I", a, b, 0, c, d, 0, 0, 0, 0x40000000)
    dst.write_bytes(bytes(data))
    return dst


def write_audio(path: Path, *, seconds: float = 1.0) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        samples = 1024
        for i in range(int(seconds * 44100 / samples)):
            t = (np.arange(samples) + i * samples) / 44100
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * samples
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_two_video_streams(path: Path) -> Path:
    """A Matroska file with a small first video stream and a larger second one."""
    import av

    sizes = [(WIDTH, HEIGHT), (WIDTH * 2, HEIGHT * 2)]
    with av.open(str(path), "w") as container:
        streams = []
        for width, height in sizes:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"preset": "ultrafast"}
            streams.append(stream)
        for seed, (stream, (width, height)) in enumerate(zip(streams, sizes, strict=True)):
            for image in random_frames(20, width, height, seed=seed):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
    return path


def write_resolution_change(path: Path, tmp: Path) -> Path:
    """MPEG-TS whose stream switches from 80x48 to 64x64 halfway (two segments joined)."""
    first = write_video(tmp / "seg1.ts", num_frames=20, seed=1)
    second = write_video(tmp / "seg2.ts", num_frames=20, width=64, height=64, seed=2)
    path.write_bytes(first.read_bytes() + second.read_bytes())
    return path


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def corrupt(src: Path, dst: Path) -> Path:
    """Overwrite a stretch in the middle of the media data with bytes of noise."""
    data = bytearray(src.read_bytes())
    start = data.find(b"mdat") + len(data) // 3
    data[start : start + 2000] = np.random.default_rng(7).integers(0, 256, 2000, np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def _pyav_kinds(root: Path) -> dict[str, Callable[[], Path]]:
    plain = root / "plain.mp4"
    long_gop = {"g": "250", "bf": "0"}
    return {
        "plain": lambda: write_video(plain),
        **{
            kind: (lambda m=m, k=kind: set_display_matrix(plain, root / f"{k}.mp4", m))
            for kind, m in MATRICES.items()
        },
        "yuv420p10le": lambda: write_video(root / "p10.mp4", pix_fmt="yuv420p10le"),
        # decord turns the YUV planes before converting: 10-bit and odd sizes must follow
        "rot90_10bit": lambda: set_display_matrix(
            write_video(root / "p10_96x64.mp4", width=96, height=64, pix_fmt="yuv420p10le"),
            root / "rot90_10bit.mp4",
            MATRICES["rot90"],
        ),
        "rot90_odd_size": lambda: set_display_matrix(
            write_video(root / "odd.mp4", width=99, height=75, codec="mpeg4"),
            root / "rot90_odd.mp4",
            MATRICES["rot90"],
        ),
        "yuv444p": lambda: write_video(root / "p444.mp4", pix_fmt="yuv444p"),
        "yuvj420p": lambda: write_video(root / "pj420.mp4", pix_fmt="yuvj420p"),
        "gray": lambda: write_video(root / "gray.mkv", codec="ffv1", pix_fmt="gray"),
        "vfr_no_rate": lambda: write_video(
            root / "vfr.mkv", pts=[int(i * 40 + (i % 3) * 13) for i in range(40)]
        ),
        "tiny_2x2": lambda: write_video(root / "tiny.mp4", width=2, height=2, codec="mpeg4"),
        "resolution_change": lambda: write_resolution_change(root / "reschange.ts", root),
        "second_video_stream": lambda: write_two_video_streams(root / "two.mkv"),
        "audio_only": lambda: write_audio(root / "audio.m4a"),
        "truncated": lambda: truncate(
            write_video(root / "long.mp4", num_frames=100, faststart=True),
            root / "truncated.mp4",
            0.6,
        ),
        "truncated_no_index": lambda: truncate(
            write_video(root / "tail.mp4", num_frames=60), root / "truncated_no_index.mp4", 0.7
        ),
        "corrupt": lambda: corrupt(
            write_video(root / "gop.mp4", num_frames=100, options=long_gop), root / "corrupt.mp4"
        ),
        "not_a_video": lambda: _write(root / "notes.mp4", b"these are not video frames\n" * 40),
        "empty": lambda: _write(root / "empty.mp4", b""),
    }


def _ffmpeg_kinds(root: Path) -> dict[str, Callable[[], Path]]:
    def edit_list() -> Path:
        src = write_video(root / "gop50.mp4", num_frames=125, options={"g": "50", "bf": "0"})
        out = root / "edit_list.mp4"
        ffmpeg("-ss", "1.5", "-i", str(src), "-t", "2", "-c", "copy", str(out))
        return out

    def cover_art() -> Path:
        png = root / "cover.png"
        ffmpeg("-f", "lavfi", "-i", "color=red:s=32x32", "-frames:v", "1", str(png))
        out = root / "cover_art.m4a"
        audio = write_audio(root / "song.m4a")
        ffmpeg(
            *("-i", str(audio), "-i", str(png), "-map", "0", "-map", "1", "-c", "copy"),
            *("-disposition:v:0", "attached_pic", str(out)),
        )
        return out

    def mkv_no_duration() -> Path:
        """Matroska written to a pipe: no duration, no index (decord refuses it)."""
        out = root / "piped.mkv"
        with open(out, "wb") as f:
            subprocess.run(
                [
                    "ffmpeg",
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-i",
                    str(root / "plain.mp4"),
                    "-c",
                    "copy",
                    "-f",
                    "matroska",
                    "pipe:1",
                ],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=f,
            )
        return out

    def high_depth(name: str, pix_fmt: str, *tags: str) -> Callable[[], Path]:
        def make() -> Path:
            out = root / f"{name}.mp4"
            ffmpeg(
                *("-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate=25", "-t", "1"),
                *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", pix_fmt),
                *tags,
                str(out),
            )
            return out

        return make

    def still_image() -> Path:
        out = root / "picture.mp4"  # a JPEG under a video's name
        ffmpeg(
            "-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1", "-f", "mjpeg", str(out)
        )
        return out

    return {
        "still_image": still_image,
        "edit_list": edit_list,
        "cover_art": cover_art,
        "mkv_no_duration": mkv_no_duration,
        "yuv420p10le_bt709": high_depth("p10_709", "yuv420p10le", "-colorspace", "bt709"),
        "yuv420p10le_full_range": high_depth("p10_full", "yuv420p10le", "-color_range", "pc"),
        "yuv420p10le_bt2020": high_depth("p10_2020", "yuv420p10le", "-colorspace", "bt2020nc"),
        "yuv422p10le": high_depth("p422_10", "yuv422p10le"),
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def build_corpus(root: Path) -> dict[str, Path]:
    """Write every hostile file under ``root``; ``{kind: path}``."""
    makers = _pyav_kinds(root)
    if shutil.which("ffmpeg"):
        makers |= _ffmpeg_kinds(root)
    corpus = {kind: make() for kind, make in makers.items()}
    fifo = root / "fifo.mp4"
    os.mkfifo(fifo)
    directory = root / "folder.mp4"
    directory.mkdir()
    return corpus | {"fifo": fifo, "directory": directory, "missing": root / "missing.mp4"}

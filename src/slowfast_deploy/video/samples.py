"""Generated sample videos (moving coloured shapes) and an annotation list, for demos and tests.

Real Kinetics clips cannot be bundled; these exercise the whole pipeline with known sizes:
landscape, portrait, a short clip whose indices wrap, and an odd-sized one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# name, width, height, frames, fps, label
SAMPLES = (
    ("landscape_340x256.mp4", 340, 256, 120, 30, 0),
    ("portrait_256x340.mp4", 256, 340, 100, 25, 1),
    ("short_48f.mp4", 340, 256, 48, 30, 2),
    ("wide_640x360.mp4", 640, 360, 90, 30, 3),
)


def _frame(i: int, width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, 3)
    y, x = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), dtype=np.uint8)
    for c in range(3):
        frame[..., c] = (base[c] + x * (c + 1) // 3 + y // 2 + 4 * i) % 256
    cx, cy = (width // 2 + int(width / 3 * np.sin(i / 9 + seed))), height // 2
    frame[max(cy - 30, 0) : cy + 30, max(cx - 30, 0) : cx + 30] = (255 - base).astype(np.uint8)
    return frame


def sample_frames(
    num_frames: int, *, seed: int = 0, width: int = 340, height: int = 256
) -> np.ndarray:
    """``[T, H, W, 3]`` uint8 frames of the moving pattern (every other frame, as sampled)."""
    return np.stack([_frame(2 * i, width, height, seed) for i in range(num_frames)])


def write_samples(out_dir: str | Path) -> Path:
    """Write the sample videos (H.264, yuv420p) and ``list.txt``; return the list's path."""
    import av

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for seed, (name, width, height, frames, fps, label) in enumerate(SAMPLES):
        with av.open(str(out / name), "w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for i in range(frames):
                image = av.VideoFrame.from_ndarray(_frame(i, width, height, seed), format="rgb24")
                container.mux(stream.encode(image))
            container.mux(stream.encode())
        lines.append(f"{name} {label}\n")
    ann = out / "list.txt"
    ann.write_text("".join(lines))
    return ann

"""FFmpeg 4.1's yuv420p -> rgb24 conversion for frames of odd width *and* odd height.

decord 0.6.0 (mmaction2's decoder) converts through FFmpeg 4.1's ``scale`` filter. For frames
with an odd height, libswscale 4.1 skips its fast YUV->RGB path and runs the generic scaler
(SWS_BILINEAR, full horizontal chroma interpolation): the 161x121 chroma plane of a 321x241
frame is stretched edge-aligned to 321x241 (ratio 161/321, not 1/2) and the vertical chroma
weights are rounded to "this line" or "average of two". Newer FFmpeg (PyAV's) uses an exact
1/2 ratio, which differs by up to ~90 levels. This module re-implements that 4.1 arithmetic
in numpy (filter set-up as in ``initFilter``, 15-bit horizontal pass, vertical pass, BT.601
limited-range RGB output with C integer semantics) so PyAV frames equal decord's bit for bit.

Used only for yuv420p frames with odd width and odd height, BT.601 / unspecified colour
metadata, at least 8x8 pixels; other frames already match through PyAV's own conversion
(even sizes) or are not covered (even width with odd height: see docs/design/decoding.md).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

# BT.601 limited range, as libswscale 4.1's yuv2rgb tables (coefficients in 1/2^13 units).
_Y_MUL, _Y_OFFSET = 9539, 8192
_V2R, _V2G, _U2G, _U2B = 13075, -6660, -3209, 16525


def _round_div(a: int, b: int) -> int:
    """C ``ROUNDED_DIV`` with truncating division."""
    n = a + (b >> 1) if a >= 0 else a - (b >> 1)
    q = abs(n) // b
    return q if n >= 0 else -q


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@lru_cache(maxsize=32)
def _bilinear_filter(src: int, dst: int, one: int, align: int) -> tuple[np.ndarray, np.ndarray]:
    """libswscale 4.1 ``initFilter`` for SWS_BILINEAR upscaling: (positions, int coefficients)."""
    x_inc = ((src << 16) + (dst >> 1)) // dst
    if abs(x_inc - 0x10000) < 10:  # no scaling
        return np.arange(dst), np.full((dst, 1), one, np.int64)
    f_one = 1 << 54
    size = min(3, src - 2)
    x_dist = x_inc - 0x10000
    positions, coeffs = [], []
    for _ in range(dst):
        xx = _trunc_div(x_dist - ((size - 2) << 16), 1 << 17)
        positions.append(xx)
        row = []
        for _ in range(size):
            d = abs((xx << 17) - x_dist) << 13
            row.append(max((1 << 30) - d, 0) * (f_one >> 30))
            xx += 1
        coeffs.append(row)
        x_dist += 2 * x_inc
    cut = int(0.002 * f_one)
    min_size = 0
    for i in range(dst - 1, -1, -1):  # trim near-zero taps, as initFilter does
        kept, total = size, 0
        for _ in range(size):
            total += abs(coeffs[i][0])
            if total > cut or (i < dst - 1 and positions[i] >= positions[i + 1]):
                break
            coeffs[i] = [*coeffs[i][1:], 0]
            positions[i] += 1
        total = 0
        for j in range(size - 1, 0, -1):
            total += abs(coeffs[i][j])
            if total > cut:
                break
            kept -= 1
        min_size = max(min_size, kept)
    if min_size == 1 and align == 2:
        align = 1
    width = (min_size + align - 1) & ~(align - 1)
    taps = [[coeffs[i][j] if j < size else 0 for j in range(width)] for i in range(dst)]
    for i in range(dst):  # move taps that fall outside the source onto its edges
        if positions[i] < 0:
            for j in range(1, width):
                left = max(j + positions[i], 0)
                taps[i][left] += taps[i][j]
                taps[i][j] = 0
            positions[i] = 0
        if positions[i] + width > src:
            shift = positions[i] + width - src
            for j in range(width - 2, -1, -1):
                right = min(j + shift, width - 1)
                taps[i][right] += taps[i][j]
                taps[i][j] = 0
            positions[i] = src - width
    out = np.zeros((dst, width), np.int64)
    for i in range(dst):  # normalise to `one` with error diffusion
        scale = (sum(taps[i]) + one // 2) // one or 1
        err = 0
        for j in range(width):
            v = taps[i][j] + err
            iv = _round_div(v, scale)
            out[i, j] = iv
            err = v - iv * scale
    return np.array(positions), out


def applies(width: int, height: int, pix_fmt: str, colorspace: int, color_range: int) -> bool:
    """Whether a frame goes through the emulated path (see the module docstring)."""
    return (
        pix_fmt == "yuv420p"
        and width % 2 == 1
        and height % 2 == 1
        and width >= 8
        and height >= 8
        and colorspace in (2, 5, 6)  # unspecified, BT470BG, SMPTE170M (all BT.601 in 4.1)
        and color_range in (0, 1)  # unspecified or MPEG (limited)
    )


def yuv420p_to_rgb24(
    y: NDArray[np.uint8], u: NDArray[np.uint8], v: NDArray[np.uint8]
) -> NDArray[np.uint8]:
    """``Y [H, W]``, ``U, V [ceil(H/2), ceil(W/2)]`` -> ``[H, W, 3]`` RGB as FFmpeg 4.1 makes it."""
    height, width = y.shape
    c_height, c_width = u.shape
    h_pos, h_coef = _bilinear_filter(c_width, width, 1 << 14, 4)
    v_pos, v_coef = _bilinear_filter(c_height, height, 1 << 12, 2)
    h_idx = np.clip(h_pos[:, None] + np.arange(h_coef.shape[1]), 0, c_width - 1)
    used = np.any(h_coef != 0, axis=0)
    h_idx, h_coef = h_idx[:, used], h_coef[:, used].astype(np.int32)
    v_coef = v_coef.astype(np.int32)

    def horizontal(plane: NDArray[np.uint8]) -> NDArray[np.int32]:  # -> [cH, W], 15-bit
        p = plane.astype(np.int32)
        acc = p[:, h_idx[:, 0]] * h_coef[:, 0]
        for j in range(1, h_coef.shape[1]):
            acc += p[:, h_idx[:, j]] * h_coef[:, j]
        clipped: NDArray[np.int32] = np.minimum(acc >> 7, 32767)
        return clipped

    second = v_coef[:, 1]
    simple = (v_coef[:, 0] + second == 4096) & (second <= 4096)
    row0, row1 = v_pos, np.minimum(v_pos + 1, c_height - 1)

    def vertical(plane: NDArray[np.int32]) -> NDArray[np.int32]:  # -> [H, W]
        p0, p1 = plane[row0], plane[row1]
        single = (p0 - (128 << 7)) * 4
        average = (p0 + p1 - (128 << 8)) * 2
        general = (((1 << 9) - (128 << 19)) + p0 * v_coef[:, :1] + p1 * v_coef[:, 1:]) >> 10
        mixed: NDArray[np.int32] = np.where(
            simple[:, None], np.where((second < 2048)[:, None], single, average), general
        )
        return mixed

    uf, vf = vertical(horizontal(u)), vertical(horizontal(v))
    luma = ((y.astype(np.int32) << 9) - _Y_OFFSET) * _Y_MUL + (1 << 21)  # int32 wraps as in C
    out = np.empty((height, width, 3), np.uint8)
    for k, channel in enumerate((luma + vf * _V2R, luma + vf * _V2G + uf * _U2G, luma + uf * _U2B)):
        out[..., k] = np.clip(channel, 0, (1 << 30) - 1) >> 22
    return out


# --- 10/12-bit 4:2:0 and 4:2:2: libswscale 4.1's generic path, packed RGB output ----------
# For these frames FFmpeg 4.1 has no special converter: samples are scaled to 15 bits
# (``hScale16To15``: ``x << 14 >> 9``), chroma is upsampled vertically only (one line, or the
# average of two, by the bilinear weight), each chroma sample serves two pixels, and RGB comes
# from the ``yuv2rgb`` lookup tables (``ff_yuv2rgb_c_init_tables``, 24 bpp) in
# ``yuv2rgb24_1_c``. Newer FFmpeg converts with more precision: up to ~190 levels apart.

# ``ff_yuv2rgb_coeffs`` rows (crv, cbu, cgu, cgv) by AVColorSpace, as libswscale 4.1 picks them
_COEFFS = {
    1: (117489, 138438, 13975, 34925),  # BT.709
    2: (104597, 132201, 25675, 53279),  # unspecified: BT.601
    5: (104597, 132201, 25675, 53279),  # BT.470BG
    6: (104597, 132201, 25675, 53279),  # SMPTE 170M
    9: (110013, 140363, 12277, 42626),  # BT.2020 non-constant luminance
}
# high-bit-depth formats on this path: (bits per sample, chroma rows per luma row)
_HIGH_DEPTH = {
    "yuv420p10le": 10,
    "yuv420p12le": 12,
    "yuv422p10le": 10,
    "yuv422p12le": 12,
}
_TABLE_HEADROOM = 512  # YUVRGB_TABLE_LUMA_HEADROOM


def applies_10bit(width: int, height: int, pix_fmt: str, colorspace: int, color_range: int) -> bool:
    """Whether a frame goes through the emulated 10-bit path."""
    return (
        pix_fmt in _HIGH_DEPTH
        and width >= 8
        and height >= 8
        and colorspace in _COEFFS
        and color_range in (0, 1, 2)
    )


def _c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@lru_cache(maxsize=8)
def _rgb_tables(
    colorspace: int, full_range: bool
) -> tuple[NDArray[np.uint8], int, tuple[int, ...]]:
    """``ff_yuv2rgb_c_init_tables`` for 24 bpp (contrast/saturation 1, brightness 0):
    the clipped luma table, its offset, and (crv, cbu, cgu, cgv) scaled by the luma gain."""
    crv, cbu, cgu, cgv = _COEFFS[colorspace]
    coeffs = [crv, cbu, -cgu, -cgv]
    if full_range:
        gain, offset = 1 << 16, 0
        coeffs = [_c_div(c * 224, 255) for c in coeffs]
    else:
        gain, offset = (65536 * 255) // 219, 16 << 16
    coeffs = [_c_div(c * 65536 + 0x8000, gain) for c in coeffs]
    start = -(384 << 16) - _TABLE_HEADROOM * gain - offset
    steps = np.arange(1024 + 2 * _TABLE_HEADROOM, dtype=np.int64)
    y_table = np.clip((start + steps * gain + 0x8000) >> 16, 0, 255).astype(np.uint8)
    return y_table, (384 if full_range else 326) + _TABLE_HEADROOM, tuple(coeffs)


def yuv420p10_to_rgb24(
    y: NDArray[np.uint16],
    u: NDArray[np.uint16],
    v: NDArray[np.uint16],
    *,
    colorspace: int,
    full_range: bool,
    bits: int = 10,
) -> NDArray[np.uint8]:
    """``Y [H, W]``, ``U, V [ceil(H/2) or H, ceil(W/2)]`` of ``bits``-bit samples ->
    ``[H, W, 3]`` RGB as FFmpeg 4.1 makes it."""
    to_15 = 15 - bits  # hScale16To15: (x << 14) >> (bits - 1)
    height, width = y.shape
    c_height = u.shape[0]
    positions, weights = _bilinear_filter(c_height, height, 1 << 12, 2)
    second = weights[:, 1] if weights.shape[1] > 1 else np.zeros(height, np.int64)
    row0, row1 = positions, np.minimum(positions + 1, c_height - 1)
    one_line = (second < 2048)[:, None]

    def chroma(plane: NDArray[np.uint16]) -> NDArray[np.int64]:  # -> [H, W] 8-bit indices
        p15 = np.minimum(plane.astype(np.int64) << to_15, 32767)
        line = np.where(one_line, (p15[row0] + 64) >> 7, (p15[row0] + p15[row1] + 128) >> 8)
        return np.repeat(line, 2, axis=1)[:, :width]

    y_table, base, (crv, cbu, cgu, cgv) = _rgb_tables(colorspace, full_range)

    def offset(coeff: int, index: NDArray[np.int64]) -> NDArray[np.int64]:  # fill_table
        return -(coeff >> 9) + ((np.clip(index, 0, 255) * coeff) >> 16)

    luma = base + ((np.minimum(y.astype(np.int64) << to_15, 32767) + 64) >> 7)
    cu, cv = chroma(u), chroma(v)
    return np.stack(
        [
            y_table[luma + offset(crv, cv)],
            y_table[luma + offset(cgu, cu) + offset(cgv, cv)],
            y_table[luma + offset(cbu, cu)],
        ],
        axis=-1,
    )


def bit_depth(pix_fmt: str) -> int:
    return _HIGH_DEPTH[pix_fmt]

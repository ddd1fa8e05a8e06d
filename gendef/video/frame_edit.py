"""Edits made on a frame, carried to the canonical image through the grid.

Frame t shows canonical position ``grid[t, y, x]`` at pixel (x, y). An edit painted on
frame t belongs, in canonical space, at the canonical pixels that frame shows: for each
such canonical pixel c we find the frame position p with grid[t](p) = c (the same
sub-pixel Newton inversion that point tracking uses) and sample the edit there, bilinearly
and premultiplied by alpha. Canonical pixels the frame never shows get alpha 0, so the
canonical image stays untouched there. Inverse sampling (rather than splatting frame
pixels forward) leaves no holes where the frame magnifies or shrinks the canonical image.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..imageutil import to_float01
from .grid import invert_grid

CHUNK = 16384  # canonical points inverted at once (bounds the coarse-search memory to ~16 MB)


def _footprint(grid_t: np.ndarray, painted: np.ndarray, canvas_hw) -> tuple:
    """Canonical bounding box (y0, y1, x0, x1) of what the painted frame pixels sample, one pixel wider."""
    ker = np.ones((3, 3), np.uint8)
    near = cv2.dilate(painted.astype(np.uint8), ker).astype(bool)  # bilinear reach of the paint
    pos = grid_t[near]
    hc, wc = canvas_hw
    x0 = max(int(np.floor(pos[:, 0].min())) - 1, 0)
    y0 = max(int(np.floor(pos[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(pos[:, 0].max())) + 2, wc)
    y1 = min(int(np.ceil(pos[:, 1].max())) + 2, hc)
    return y0, y1, x0, x1


def frame_positions(grid_t: np.ndarray, points: np.ndarray) -> tuple:
    """Canonical points [N, 2] -> (frame positions [N, 2] float32, shown [N] bool) in this frame."""
    h, w = grid_t.shape[:2]
    pos = np.zeros((len(points), 2), np.float32)
    shown = np.zeros(len(points), bool)
    for s in range(0, len(points), CHUNK):
        p, ok = invert_grid(grid_t[None], points[s : s + CHUNK])
        p = p[0]
        inside = (p[:, 0] >= -0.5) & (p[:, 0] <= w - 0.5) & (p[:, 1] >= -0.5) & (p[:, 1] <= h - 0.5)
        pos[s : s + CHUNK] = p
        shown[s : s + CHUNK] = ok[0] & inside
    return pos, shown


def frame_layer_to_canonical(grid_t: np.ndarray, layer, canvas_hw) -> np.ndarray:
    """A frame-space layer [H, W, C] (RGBA, or a soft mask [H, W]) -> the same layer in canonical space.

    RGBA is resampled premultiplied (so transparent pixels do not darken stroke edges) and
    returned with straight alpha; a mask is resampled as is. Float32 in [0, 1].
    """
    f = to_float01(layer)
    is_mask = f.ndim == 2
    f = f[..., None] if is_mask else f
    hc, wc = canvas_hw
    out = np.zeros((hc, wc, f.shape[2]), np.float32)
    weight = f[..., -1] if not is_mask else f[..., 0]
    if not (weight > 0).any():
        return out[..., 0] if is_mask else out
    src = f if is_mask else np.concatenate([f[..., :-1] * f[..., -1:], f[..., -1:]], -1)
    y0, y1, x0, x1 = _footprint(grid_t, weight > 0, canvas_hw)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    pts = np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float64)
    pos, shown = frame_positions(grid_t, pts)
    maps = pos.reshape(y1 - y0, x1 - x0, 2)
    sampled = cv2.remap(np.ascontiguousarray(src), maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    sampled = sampled.reshape(y1 - y0, x1 - x0, -1)
    out[y0:y1, x0:x1] = sampled * shown.reshape(y1 - y0, x1 - x0, 1)
    if not is_mask:
        a = out[..., -1:]
        out[..., :-1] = np.where(a > 1e-6, out[..., :-1] / np.maximum(a, 1e-6), 0.0)
    return np.clip(out[..., 0] if is_mask else out, 0.0, 1.0)

"""Geometry of a CanonicalVideo: point tracking (inverse look-up), frame -> canonical look-up, flows.

Every function takes the video (anything with CanonicalVideo's ``grid``, ``size``, ``canvas_size``,
``num_frames``, ``to_grid_coords``/``to_output_coords``) and speaks output pixels, as the data
model's rule says (see :mod:`gendef.video.canonical_video`). CanonicalVideo's ``track``,
``frame_to_canonical`` and ``flows`` delegate here.
"""
from __future__ import annotations

import numpy as np

from ..errors import CanonicalVideoError
from .grid import bilinear_with_jacobian, continuous_at, identity_grid, invert_grid, nearest_samples, upsample_grid

__all__ = ["validate_points", "track", "frame_to_canonical", "flows"]


def validate_points(points) -> np.ndarray:
    """Points as float64 [N, 2] (x, y); a single (x, y) becomes [1, 2]."""
    try:
        p = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise CanonicalVideoError("points must be numbers shaped [N, 2] (x, y)") from None
    if p.ndim == 1 and p.shape[0] == 2:
        p = p[None]
    if p.ndim != 2 or p.shape[1] != 2:
        raise CanonicalVideoError(f"points must be shaped [N, 2] (x, y), got {tuple(p.shape)}")
    if not np.all(np.isfinite(p)):
        raise CanonicalVideoError("points contain NaN or inf")
    return p


def track(video, points, start=None) -> tuple:
    """Canonical points [N, 2] (x, y) -> output-pixel positions [T, N, 2] and visibility [T, N].

    ``start``: optional output-pixel positions [N, 2] near which every frame shows each point (a
    neighbouring segment's hand-over); Newton starts there instead of a coarse search of every
    frame, and only the frames where it does not converge are searched.

    Sub-pixel inverse look-up of the grid (on its working lattice, then mapped to output
    pixels). A point is not visible in frame t when it falls outside the frame, lies outside
    the canonical image, or no pixel of that frame samples it: the inversion finds no
    pre-image, or finds one only in a cell that the grid tears apart (a layer's edge: the
    pixels around show another layer, so the point is covered there).
    """
    grid = video.grid
    pts = validate_points(points)
    if start is None:
        pos_g, ok = invert_grid(grid, pts)
    else:
        init = np.broadcast_to(video.to_grid_coords(start)[None], (len(grid), len(pts), 2))
        pos_g, ok = invert_grid(grid, pts, init=init)
        if not ok.all():
            pos_s, ok_s = invert_grid(grid, pts)
            pos_g, ok = np.where(ok[..., None], pos_g, pos_s), ok | ok_s
    good = ok & continuous_at(grid, pos_g)
    if not good.all():  # Newton can stall at a torn cell: start again from the nearest sample
        pos2, ok2 = invert_grid(grid, pts, init=nearest_samples(grid, pts, pos_g, ~good))
        good2 = ok2 & continuous_at(grid, pos2)
        retry = ~good & good2
        pos_g = np.where(retry[..., None], pos2, pos_g)
        good = good | good2
    pos = video.to_output_coords(pos_g)
    h, w = video.size
    hc, wc = video.canvas_size
    inside = (pos[..., 0] >= -0.5) & (pos[..., 0] <= w - 0.5) & (pos[..., 1] >= -0.5) & (pos[..., 1] <= h - 0.5)
    in_canvas = (pts[:, 0] >= -0.5) & (pts[:, 0] <= wc - 0.5) & (pts[:, 1] >= -0.5) & (pts[:, 1] <= hc - 0.5)
    visible = good & inside & in_canvas[None]
    return pos.astype(np.float32), visible


def frame_to_canonical(video, points, frame: int = 0) -> np.ndarray:
    """Points given on frame ``frame`` (output pixels) -> canonical coordinates (bilinear grid look-up)."""
    pts = validate_points(points)
    if not 0 <= frame < video.num_frames:
        raise CanonicalVideoError(f"frame {frame} out of range 0..{video.num_frames - 1}")
    h, w = video.size
    if np.any((pts[:, 0] < 0) | (pts[:, 0] > w - 1) | (pts[:, 1] < 0) | (pts[:, 1] > h - 1)):
        raise CanonicalVideoError(f"points must lie inside the {w}x{h} frame")
    q = video.to_grid_coords(pts)
    fidx = np.full(len(pts), frame)
    val, _, _ = bilinear_with_jacobian(video.grid, fidx, q[:, 0], q[:, 1])
    return val.astype(np.float32)


def _frame_flow_on_grid(grid: np.ndarray, t: int) -> np.ndarray:
    """Exact frame-space flow t -> t+1 at the grid's pixels, in grid-lattice pixels [Hg, Wg, 2]."""
    hg, wg = grid.shape[1:3]
    base = identity_grid(hg, wg)[0].reshape(-1, 2).astype(np.float64)
    p, _ = invert_grid(grid[t + 1 : t + 2], grid[t].reshape(-1, 2), init=base[None])
    return (p[0] - base).reshape(hg, wg, 2).astype(np.float32)


def flows(video, space: str = "frame") -> np.ndarray:
    """Forward flow between consecutive frames, [T-1, H, W, 2] at output size.

    ``space="canonical"``: grid[t+1] - grid[t] (upsampled), the paper's F_{t->t+1} (eq. 4), in
    canonical pixels. ``space="frame"``: for each output pixel of frame t, where the content it
    shows is found in frame t+1 minus its position, in output pixels (solved exactly at the
    grid's pixels, then upsampled and scaled to output pixels).
    """
    if space not in ("frame", "canonical"):
        raise CanonicalVideoError(f"space must be 'frame' or 'canonical', got {space!r}")
    if video.num_frames < 2:
        return np.zeros((0,) + tuple(video.size) + (2,), dtype=np.float32)
    video.check_alloc(2, 4, "flows", frames=video.num_frames - 1)
    grid = video.grid
    (hg, wg), (h, w) = grid.shape[1:3], video.size
    scale = np.array([w / wg, h / hg], np.float32)
    out = np.empty((video.num_frames - 1, h, w, 2), dtype=np.float32)
    for t in range(video.num_frames - 1):
        if space == "canonical":
            out[t] = upsample_grid(grid[t + 1] - grid[t], video.size)
        else:
            out[t] = upsample_grid(_frame_flow_on_grid(grid, t), video.size) * scale
    return out

"""The grid conventions of the data model: pixel units, identity, upsampling, inversion.

A grid [T, H, W, 2] holds, for every output pixel of every frame, the (x, y) position
it samples in the canonical image, in canonical pixel units with pixel centres at
integer coordinates. The networks work in normalised [-1, 1] coordinates
(align_corners=True); :func:`normalized_to_pixels` and :func:`pixels_to_normalized`
are the one place that converts.

Output size versus grid size: output pixel (x, y) of an (H, W) frame sits at grid
position ``u = (x + 0.5) * Wg / W - 0.5``, ``v = (y + 0.5) * Hg / H - 0.5``
(cv2.resize's INTER_LINEAR convention), edge cells extrapolated linearly, so an
affine motion is upsampled exactly. :func:`upsample_grid` is the one implementation.
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

__all__ = ["normalized_to_pixels", "pixels_to_normalized", "identity_grid", "upsample_grid", "invert_grid",
           "bilinear_with_jacobian", "continuous_at", "nearest_samples"]

# --------------------------------------------------------------------------------------
# Coordinate conventions (the one place where normalised <-> pixel conversion happens)
# --------------------------------------------------------------------------------------
def normalized_to_pixels(grid_norm, canvas_hw: Sequence[int]):
    """[-1, 1] (align_corners=True) -> canonical pixel units.

    -1 is the centre of the first pixel and +1 the centre of the last one, which
    is exactly torch's ``grid_sample(..., align_corners=True)`` convention, so
    sampling with either convention gives the same frame.
    Works for numpy arrays and torch tensors alike (last dim = (x, y)).
    """
    hc, wc = int(canvas_hw[0]), int(canvas_hw[1])
    sx = (wc - 1) / 2.0
    sy = (hc - 1) / 2.0
    x = (grid_norm[..., 0] + 1.0) * sx
    y = (grid_norm[..., 1] + 1.0) * sy
    return _stack_xy(grid_norm, x, y)


def pixels_to_normalized(grid_px, canvas_hw: Sequence[int]):
    """Canonical pixel units -> [-1, 1] (align_corners=True); inverse of the above."""
    hc, wc = int(canvas_hw[0]), int(canvas_hw[1])
    x = grid_px[..., 0] * (2.0 / max(wc - 1, 1)) - 1.0
    y = grid_px[..., 1] * (2.0 / max(hc - 1, 1)) - 1.0
    return _stack_xy(grid_px, x, y)


def _stack_xy(like, x, y):
    if isinstance(like, np.ndarray):
        return np.stack([x, y], axis=-1).astype(like.dtype, copy=False)
    import torch  # only when called with tensors

    return torch.stack([x, y], dim=-1)


def identity_grid(height: int, width: int, num_frames: int = 1, offset=(0.0, 0.0)) -> np.ndarray:
    """Grid where frame pixel (x, y) samples canonical (x + ox, y + oy)."""
    ys, xs = np.meshgrid(np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32), indexing="ij")
    g = np.stack([xs + offset[0], ys + offset[1]], axis=-1)
    return np.repeat(g[None], num_frames, axis=0)


def _lattice_positions(n_out: int, n_grid: int) -> np.ndarray:
    """Grid coordinates of the centres of ``n_out`` output pixels spanning ``n_grid`` grid pixels."""
    return (np.arange(n_out, dtype=np.float64) + 0.5) * (n_grid / n_out) - 0.5


def _resize_axis(field: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Bilinear resize of [H, W, C] along one axis, edge cells extrapolated linearly.

    cv2.resize (INTER_LINEAR, float weights for float32) uses the same pixel-centre
    convention but clamps at the border; the few output rows/columns that fall
    outside the outermost grid centres are recomputed by linear extrapolation.
    """
    n_in = field.shape[axis]
    if n_out == n_in:
        return field
    h, w = field.shape[:2]
    dsize = (w, n_out) if axis == 0 else (n_out, h)
    out = cv2.resize(field, dsize, interpolation=cv2.INTER_LINEAR)
    if out.ndim == 2:
        out = out[..., None]
    pos = _lattice_positions(n_out, n_in)
    take = (lambda a, i: a[i]) if axis == 0 else (lambda a, i: a[:, i])
    for idx in np.flatnonzero((pos < 0) | (pos > n_in - 1)):
        lo = 0 if pos[idx] < 0 else n_in - 2
        f = pos[idx] - lo
        val = take(field, lo) * (1.0 - f) + take(field, lo + 1) * f
        if axis == 0:
            out[idx] = val
        else:
            out[:, idx] = val
    return out


def upsample_grid(grid_t: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """One frame's grid [Hg, Wg, 2] -> [H, W, 2] at output size (the rule in the module docstring).

    Values are unchanged (they are canonical pixels); only the lattice is resampled.
    Works for any 2-D field of the grid's shape (e.g. grid differences).
    """
    g = np.asarray(grid_t, dtype=np.float32)
    h, w = int(size[0]), int(size[1])
    if g.shape[:2] == (h, w):
        return g
    return _resize_axis(_resize_axis(g, h, 0), w, 1)


# --------------------------------------------------------------------------------------
# Inverse look-up: where in a frame does a canonical point appear?
# --------------------------------------------------------------------------------------
def bilinear_with_jacobian(grid: np.ndarray, fidx: np.ndarray, px: np.ndarray, py: np.ndarray):
    """Evaluate the piecewise-bilinear map grid[f] at (px, py) and its Jacobian.

    Outside the frame the edge cells are extrapolated linearly, so Newton steps can
    leave the frame and report where an invisible point would be. Gathers from the
    flattened grid keep its dtype (no full float64 copy of a [T,H,W,2] grid); ``np.take`` gathers
    rows many times faster than fancy indexing, with the same values.
    """
    _, h, w, _ = grid.shape
    flat = grid.reshape(-1, 2)
    x0 = np.clip(np.floor(px), 0, max(w - 2, 0)).astype(np.int64)
    y0 = np.clip(np.floor(py), 0, max(h - 2, 0)).astype(np.int64)
    dx = 1 if w > 1 else 0
    dy = w if h > 1 else 0
    i00 = (fidx * h + y0) * w + x0
    g00, g10, g01, g11 = (np.take(flat, i, axis=0).astype(np.float64) for i in (i00, i00 + dx, i00 + dy, i00 + dx + dy))
    u = (px - x0)[:, None]
    v = (py - y0)[:, None]
    a = g10 - g00
    b = g01 - g00
    c = g11 - g10 - g01 + g00
    val = g00 + u * a + v * b + (u * v) * c
    du = a + v * c
    dv = b + u * c
    return val, du, dv


_FAR_POINT = 1e7  # canonical coordinates beyond this are never sampled by any allowed grid


def invert_grid(
    grid: np.ndarray,
    points: np.ndarray,
    init: Optional[np.ndarray] = None,
    iters: int = 12,
    tol: float = 1e-2,
):
    """Solve grid[t](p) = c for p, for every frame t and canonical point c.

    grid: [T, H, W, 2]; points: [N, 2] canonical (x, y) or [T, N, 2] per frame.
    init: optional [T, N, 2] starting positions (else a coarse nearest search).
    Returns (positions [T, N, 2] float64, converged [T, N] bool).

    Newton's method on the piecewise-bilinear grid converges in a few steps for
    smooth deformations; the coarse search only has to land in the right basin.
    """
    grid = np.asarray(grid)
    if grid.dtype not in (np.float32, np.float64):
        grid = grid.astype(np.float32)
    t, h, w, _ = grid.shape
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 2:
        pts = np.broadcast_to(pts[None], (t,) + pts.shape)
    n = pts.shape[1]
    if n == 0:
        return np.zeros((t, 0, 2)), np.zeros((t, 0), dtype=bool)
    target = pts.reshape(t * n, 2)
    # Points far outside any grid cannot be found; clamping keeps Newton's arithmetic finite
    # (1e308 would overflow to inf/nan), and the final error check still marks them not found.
    pts = np.clip(pts, -_FAR_POINT, _FAR_POINT)
    if init is None:
        init = _coarse_search(grid, pts)
    p = np.array(np.broadcast_to(init, (t, n, 2)), dtype=np.float64).reshape(t * n, 2)
    c = pts.reshape(t * n, 2)
    fidx = np.repeat(np.arange(t), n)
    lim = max(h, w) * 4.0
    active = np.arange(t * n)
    for _ in range(iters):
        val, du, dv = bilinear_with_jacobian(grid, fidx[active], p[active, 0], p[active, 1])
        r = c[active] - val
        a, b = du[:, 0], dv[:, 0]
        cc, d = du[:, 1], dv[:, 1]
        det = a * d - b * cc
        safe = np.abs(det) > 1e-9
        det = np.where(safe, det, 1.0)
        sx = np.where(safe, (d * r[:, 0] - b * r[:, 1]) / det, 0.0)
        sy = np.where(safe, (-cc * r[:, 0] + a * r[:, 1]) / det, 0.0)
        step = np.stack([sx, sy], axis=-1)
        # damp huge steps (folds, near-singular cells) to keep iterations stable
        norm = np.sqrt(sx * sx + sy * sy)[:, None]
        step = np.where(norm > 8.0, step * (8.0 / np.maximum(norm, 1e-12)), step)
        p[active] = np.clip(p[active] + step, -lim, lim)
        moving = norm[:, 0] > 1e-7
        active = active[moving]
        if active.size == 0:
            break
    val, _, _ = bilinear_with_jacobian(grid, fidx, p[:, 0], p[:, 1])
    err = np.linalg.norm(np.clip(target - val, -_FAR_POINT, _FAR_POINT), axis=-1)
    err[np.any(target != c, axis=-1)] = np.inf
    return p.reshape(t, n, 2), (err < tol).reshape(t, n)


def continuous_at(grid: np.ndarray, pos: np.ndarray, factor: float = 4.0) -> np.ndarray:
    """[T, N] bool: the grid cell holding each (grid-lattice) position is not torn: no
    two neighbouring corners differ by more than ``factor`` times the grid's median
    step plus one canonical pixel."""
    t, h, w, _ = grid.shape
    # the median step from a sample (<= 16 frames, every 8th row): the whole grid cost 80 ms at 128 x 256^2
    rows = grid[np.unique(np.linspace(0, t - 1, min(t, 16)).round().astype(np.int64)), ::8] if t else grid[:, ::8]
    step = _max_xy(np.abs(rows[:, :, 1:, :] - rows[:, :, :-1, :]))
    lim = factor * float(np.median(step)) + 1.0 if step.size else np.inf
    fidx = np.repeat(np.arange(t), pos.shape[1])
    px, py = pos[..., 0].ravel(), pos[..., 1].ravel()
    x0 = np.clip(np.floor(px), 0, max(w - 2, 0)).astype(np.int64)
    y0 = np.clip(np.floor(py), 0, max(h - 2, 0)).astype(np.int64)
    flat = grid.reshape(-1, 2)
    i00 = (fidx * h + y0) * w + x0
    dx, dy = (1 if w > 1 else 0), (w if h > 1 else 0)
    corners = [np.take(flat, i, axis=0) for i in (i00, i00 + dx, i00 + dy, i00 + dx + dy)]
    spread = np.zeros(len(i00))
    for a, b in ((0, 1), (0, 2), (1, 3), (2, 3)):
        spread = np.maximum(spread, _max_xy(np.abs(corners[a] - corners[b])))
    return (spread <= lim).reshape(pos.shape[:2])


def _max_xy(a: np.ndarray) -> np.ndarray:
    """``a.max(-1)`` over an (x, y) axis: the same values, without numpy's slow length-2 reduction."""
    return np.maximum(a[..., 0], a[..., 1])


def nearest_samples(grid: np.ndarray, pts: np.ndarray, init: np.ndarray, which: np.ndarray) -> np.ndarray:
    """``init`` [T, N, 2] with the entries ``which`` [T, N] replaced by the frame pixel
    whose grid value is nearest to the canonical point (exhaustive, per frame)."""
    out = np.array(init, dtype=np.float64)
    h, w = grid.shape[1:3]
    for t in np.nonzero(which.any(1))[0]:
        idx = np.nonzero(which[t])[0]
        g = grid[t].reshape(-1, 2).astype(np.float32)
        q = pts[idx].astype(np.float32)
        d2 = (g * g).sum(-1)[None, :] - 2.0 * q @ g.T
        iy, ix = np.divmod(d2.argmin(-1), w)
        out[t, idx] = np.stack([ix, iy], -1)
    return out


def _coarse_search(grid: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Nearest grid sample on a ~16x16 sub-lattice of each frame (Newton's start)."""
    t, h, w, _ = grid.shape
    sy = max(1, h // 16)
    sx = max(1, w // 16)
    ys = np.arange(0, h, sy)
    xs = np.arange(0, w, sx)
    sub = grid[:, ys][:, :, xs].reshape(t, -1, 2).astype(np.float32)  # [T, M, 2]
    q = pts.astype(np.float32)
    # |q - s|^2 = |q|^2 - 2 q.s + |s|^2; the |q|^2 term does not change the argmin
    d2 = (sub * sub).sum(-1)[:, None, :] - 2.0 * np.einsum("tnc,tmc->tnm", q, sub)
    k = d2.argmin(-1)
    iy, ix = np.divmod(k, len(xs))
    return np.stack([xs[ix], ys[iy]], axis=-1).astype(np.float64)

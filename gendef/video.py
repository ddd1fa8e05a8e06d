"""CanonicalVideo: the one data model of the project.

A video is a canonical image plus, for every output pixel of every frame, the
position it samples in the canonical image (``grid``, canonical pixel units,
pixel centres at integer coordinates). Everything the studio does -- editing,
segmentation, tracking, export -- is an operation on this object, so sampled
GAN videos and decomposed real videos are treated identically.

The conversion between these pixel units and the normalised [-1, 1]
coordinates used by the networks lives here and nowhere else
(:func:`normalized_to_pixels`, :func:`pixels_to_normalized`).
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import cv2
import numpy as np

__all__ = [
    "CanonicalVideo",
    "CanonicalVideoError",
    "identity_grid",
    "normalized_to_pixels",
    "pixels_to_normalized",
    "invert_grid",
]

FORMAT_VERSION = 1


class CanonicalVideoError(ValueError):
    """Raised for malformed CanonicalVideo data or files (message is user-facing)."""


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


# --------------------------------------------------------------------------------------
# Inverse look-up: where in a frame does a canonical point appear?
# --------------------------------------------------------------------------------------
def _bilinear_with_jacobian(grid: np.ndarray, fidx: np.ndarray, px: np.ndarray, py: np.ndarray):
    """Evaluate the piecewise-bilinear map grid[f] at (px, py) and its Jacobian.

    Outside the frame the edge cells are extrapolated linearly, so Newton steps can
    leave the frame and report where an invisible point would be. Gathers from the
    flattened grid keep its dtype (no full float64 copy of a [T,H,W,2] grid).
    """
    _, h, w, _ = grid.shape
    flat = grid.reshape(-1, 2)
    x0 = np.clip(np.floor(px), 0, max(w - 2, 0)).astype(np.int64)
    y0 = np.clip(np.floor(py), 0, max(h - 2, 0)).astype(np.int64)
    dx = 1 if w > 1 else 0
    dy = w if h > 1 else 0
    i00 = (fidx * h + y0) * w + x0
    g00 = flat[i00].astype(np.float64)
    g10 = flat[i00 + dx].astype(np.float64)
    g01 = flat[i00 + dy].astype(np.float64)
    g11 = flat[i00 + dx + dy].astype(np.float64)
    u = (px - x0)[:, None]
    v = (py - y0)[:, None]
    a = g10 - g00
    b = g01 - g00
    c = g11 - g10 - g01 + g00
    val = g00 + u * a + v * b + (u * v) * c
    du = a + v * c
    dv = b + u * c
    return val, du, dv


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
    if init is None:
        init = _coarse_search(grid, pts)
    p = np.array(np.broadcast_to(init, (t, n, 2)), dtype=np.float64).reshape(t * n, 2)
    c = pts.reshape(t * n, 2)
    fidx = np.repeat(np.arange(t), n)
    lim = max(h, w) * 4.0
    active = np.arange(t * n)
    for _ in range(iters):
        val, du, dv = _bilinear_with_jacobian(grid, fidx[active], p[active, 0], p[active, 1])
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
    val, _, _ = _bilinear_with_jacobian(grid, fidx, p[:, 0], p[:, 1])
    err = np.linalg.norm(c - val, axis=-1)
    return p.reshape(t, n, 2), (err < tol).reshape(t, n)


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


# --------------------------------------------------------------------------------------
# The data model
# --------------------------------------------------------------------------------------
@dataclass(eq=False)
class CanonicalVideo:
    """Canonical image [Hc, Wc, 3] float32 in [0, 1] + grid [T, H, W, 2] + fps."""

    canonical: np.ndarray
    grid: np.ndarray
    fps: float = 16.0
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.canonical = _validate_canonical(self.canonical)
        self.grid = _validate_grid(self.grid)
        try:
            self.fps = float(self.fps)
        except (TypeError, ValueError):
            raise CanonicalVideoError(f"fps must be a number, got {self.fps!r}") from None
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise CanonicalVideoError(f"fps must be a positive finite number, got {self.fps}")
        if not isinstance(self.metadata, dict):
            raise CanonicalVideoError("metadata must be a dict")
        self._frames_cache = None

    # ---- shape helpers ---------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return int(self.grid.shape[0])

    @property
    def frame_size(self) -> tuple:
        """(H, W) of the output frames."""
        return int(self.grid.shape[1]), int(self.grid.shape[2])

    @property
    def canvas_size(self) -> tuple:
        """(Hc, Wc) of the canonical image."""
        return int(self.canonical.shape[0]), int(self.canonical.shape[1])

    def __repr__(self) -> str:
        return (
            f"CanonicalVideo(canonical={self.canvas_size}, frames={self.num_frames}, "
            f"frame_size={self.frame_size}, fps={self.fps:g})"
        )

    # ---- rendering ---------------------------------------------------------------------
    def _remap(self, image: np.ndarray, t: int, border_value=0.0) -> np.ndarray:
        g = self.grid[t]
        return cv2.remap(
            image,
            g[..., 0],
            g[..., 1],
            interpolation=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=border_value,
        )

    def warp(self, image: np.ndarray) -> np.ndarray:
        """Warp any image living in canonical space (any channel count) through every frame.

        Returns [T, H, W] for a 2-D input and [T, H, W, C] otherwise, float32.
        """
        img = np.asarray(image)
        if img.ndim not in (2, 3) or img.shape[:2] != self.canvas_size:
            raise CanonicalVideoError(
                f"image must be {self.canvas_size[0]}x{self.canvas_size[1]} (the canonical size), "
                f"got shape {tuple(img.shape)}"
            )
        img = _to_float01(img)
        chans = 1 if img.ndim == 2 else img.shape[2]
        out_shape = (self.num_frames,) + self.frame_size + (() if img.ndim == 2 else (chans,))
        out = np.empty(out_shape, dtype=np.float32)
        # cv2.remap handles at most 4 channels per call
        if img.ndim == 3 and chans > 4:
            for s in range(0, chans, 4):
                sl = np.ascontiguousarray(img[..., s : s + 4])
                for t in range(self.num_frames):
                    r = self._remap(sl, t)
                    out[t, ..., s : s + 4] = r if r.ndim == 3 else r[..., None]
            return out
        img = np.ascontiguousarray(img)
        for t in range(self.num_frames):
            r = self._remap(img, t)
            if img.ndim == 3 and r.ndim == 2:
                r = r[..., None]
            out[t] = r
        return out

    def frames(self) -> np.ndarray:
        """The video: [T, H, W, 3] float32 (cached; the object is treated as immutable)."""
        if self._frames_cache is None:
            self._frames_cache = self.warp(self.canonical)
        return self._frames_cache

    def render(self, image: Optional[np.ndarray] = None) -> np.ndarray:
        """Frames of the canonical image, or of an edit living in canonical space.

        * ``None``: the video itself.
        * RGB [Hc, Wc, 3]: a replacement canonical image (e.g. stylised).
        * RGBA [Hc, Wc, 4]: an overlay (scribble), alpha-composited over the original frames.
        * mask [Hc, Wc] or [Hc, Wc, 1]: warped soft mask [T, H, W].
        """
        if image is None:
            return self.frames().copy()
        img = np.asarray(image)
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[..., 0]
        if img.ndim == 2:
            return self.warp(img)
        if img.ndim == 3 and img.shape[2] == 3:
            return self.warp(img)
        if img.ndim == 3 and img.shape[2] == 4:
            f = _to_float01(img)
            alpha = f[..., 3:4]
            premult = np.concatenate([f[..., :3] * alpha, alpha], axis=-1)
            w = self.warp(premult)
            a = np.clip(w[..., 3:4], 0.0, 1.0)
            return np.clip(w[..., :3] + self.frames() * (1.0 - a), 0.0, 1.0).astype(np.float32)
        raise CanonicalVideoError(
            f"edit must be RGB, RGBA or a single-channel mask, got shape {tuple(img.shape)}"
        )

    def propagate_mask(self, mask: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """Canonical mask -> per-frame boolean masks [T, H, W]."""
        m = np.asarray(mask)
        if m.ndim == 3 and m.shape[2] == 1:
            m = m[..., 0]
        if m.ndim != 2:
            raise CanonicalVideoError(f"mask must be 2-D, got shape {tuple(m.shape)}")
        if m.dtype == bool:
            m = m.astype(np.float32)
        return self.warp(m) >= threshold

    # ---- geometry ---------------------------------------------------------------------
    def track(self, points) -> tuple:
        """Canonical points [N, 2] (x, y) -> positions [T, N, 2] and visibility [T, N].

        Sub-pixel inverse look-up of the grid. A point is not visible in frame t when
        it falls outside the frame, lies outside the canonical image, or no pixel of
        that frame samples it (the inversion finds no pre-image).
        """
        pts = _validate_points(points)
        pos, ok = invert_grid(self.grid, pts)
        h, w = self.frame_size
        hc, wc = self.canvas_size
        inside = (
            (pos[..., 0] >= -0.5) & (pos[..., 0] <= w - 0.5) & (pos[..., 1] >= -0.5) & (pos[..., 1] <= h - 0.5)
        )
        in_canvas = (
            (pts[:, 0] >= -0.5) & (pts[:, 0] <= wc - 0.5) & (pts[:, 1] >= -0.5) & (pts[:, 1] <= hc - 0.5)
        )
        visible = ok & inside & in_canvas[None]
        return pos.astype(np.float32), visible

    def frame_to_canonical(self, points, frame: int = 0) -> np.ndarray:
        """Points given on frame ``frame`` -> canonical coordinates (bilinear grid look-up)."""
        pts = _validate_points(points)
        if not 0 <= frame < self.num_frames:
            raise CanonicalVideoError(f"frame {frame} out of range 0..{self.num_frames - 1}")
        h, w = self.frame_size
        if np.any((pts[:, 0] < 0) | (pts[:, 0] > w - 1) | (pts[:, 1] < 0) | (pts[:, 1] > h - 1)):
            raise CanonicalVideoError(f"points must lie inside the {w}x{h} frame")
        fidx = np.full(len(pts), frame)
        val, _, _ = _bilinear_with_jacobian(self.grid, fidx, pts[:, 0], pts[:, 1])
        return val.astype(np.float32)

    def flows(self, space: str = "frame") -> np.ndarray:
        """Forward flow between consecutive frames, [T-1, H, W, 2].

        ``space="canonical"``: grid[t+1] - grid[t], the paper's F_{t->t+1} (eq. 4).
        ``space="frame"``: for each pixel of frame t, where the content it shows is
        found in frame t+1 minus its position (optical flow in frame pixels).
        """
        if self.num_frames < 2:
            return np.zeros((0,) + self.frame_size + (2,), dtype=np.float32)
        if space == "canonical":
            return (self.grid[1:] - self.grid[:-1]).astype(np.float32)
        if space != "frame":
            raise CanonicalVideoError(f"space must be 'frame' or 'canonical', got {space!r}")
        h, w = self.frame_size
        base = identity_grid(h, w)[0].reshape(-1, 2).astype(np.float64)
        out = np.empty((self.num_frames - 1, h, w, 2), dtype=np.float32)
        for t in range(self.num_frames - 1):
            c = self.grid[t].reshape(-1, 2)
            p, _ = invert_grid(self.grid[t + 1 : t + 2], c, init=base[None])
            out[t] = (p[0] - base).reshape(h, w, 2)
        return out

    # ---- persistence ------------------------------------------------------------------
    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write an ``.npz`` (no pickles). Written atomically: a crash leaves the old file."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
        meta = dict(self.metadata)
        meta.setdefault("format_version", FORMAT_VERSION)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                canonical=self.canonical,
                grid=self.grid,
                fps=np.array(self.fps, dtype=np.float64),
                metadata=np.array(json.dumps(meta)),
            )
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: Union[str, os.PathLike, io.IOBase]) -> "CanonicalVideo":
        """Read an ``.npz`` written by :meth:`save`; any damage gives a CanonicalVideoError."""
        name = getattr(path, "name", path)
        if isinstance(path, (str, os.PathLike)) and Path(path).is_file():
            with open(path, "rb") as fh:
                if fh.read(4) != b"PK\x03\x04":
                    raise CanonicalVideoError(f"{name}: not a CanonicalVideo .npz file (wrong file type or corrupt)")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in ("canonical", "grid", "fps") if k not in data.files]
                if missing:
                    raise CanonicalVideoError(f"{name}: not a CanonicalVideo file (missing {', '.join(missing)})")
                canonical = data["canonical"]
                grid = data["grid"]
                fps = float(data["fps"])
                meta = {}
                if "metadata" in data.files:
                    try:
                        meta = json.loads(str(data["metadata"]))
                    except json.JSONDecodeError:
                        meta = {}
        except CanonicalVideoError:
            raise
        except FileNotFoundError:
            raise CanonicalVideoError(f"{name}: file not found") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, TypeError) as e:
            raise CanonicalVideoError(f"{name}: corrupt or truncated CanonicalVideo file ({e.__class__.__name__}: {e})") from None
        except Exception as e:  # zlib.error and friends from a damaged archive
            raise CanonicalVideoError(f"{name}: corrupt or truncated CanonicalVideo file ({e.__class__.__name__}: {e})") from None
        return cls(canonical=canonical, grid=grid, fps=fps, metadata=meta if isinstance(meta, dict) else {})

    def to_video(self, path: Union[str, os.PathLike], image: Optional[np.ndarray] = None, fps: Optional[float] = None) -> Path:
        """Export frames (of the video or of an edit) as .mp4 or .gif."""
        from .videoio import write_video

        frames = self.render(image)
        if frames.ndim == 3:
            frames = np.repeat(frames[..., None], 3, axis=-1)
        return write_video(frames, path, fps=fps or self.fps)

    def with_canonical(self, canonical: np.ndarray) -> "CanonicalVideo":
        """Same motion, another canonical image (an edit baked in)."""
        return CanonicalVideo(canonical=canonical, grid=self.grid, fps=self.fps, metadata=dict(self.metadata))


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------
def _to_float01(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    if img.dtype == bool:
        return img.astype(np.float32)
    return img.astype(np.float32, copy=False)


def _validate_canonical(c) -> np.ndarray:
    c = np.asarray(c)
    if c.ndim != 3 or c.shape[2] != 3:
        raise CanonicalVideoError(f"canonical must have shape [Hc, Wc, 3], got {tuple(c.shape)}")
    if c.shape[0] < 2 or c.shape[1] < 2:
        raise CanonicalVideoError(f"canonical must be at least 2x2, got {c.shape[0]}x{c.shape[1]}")
    if c.dtype == np.uint8:
        c = c.astype(np.float32) / 255.0
    elif not np.issubdtype(c.dtype, np.floating):
        raise CanonicalVideoError(f"canonical must be float32 in [0, 1] (or uint8), got dtype {c.dtype}")
    c = np.ascontiguousarray(c, dtype=np.float32)
    if not np.all(np.isfinite(c)):
        raise CanonicalVideoError("canonical contains NaN or inf")
    if c.min() < -1e-3 or c.max() > 1 + 1e-3:
        raise CanonicalVideoError(f"canonical values must be in [0, 1], got [{c.min():.3g}, {c.max():.3g}]")
    return np.clip(c, 0.0, 1.0)


def _validate_grid(g) -> np.ndarray:
    g = np.asarray(g)
    if g.ndim != 4 or g.shape[3] != 2:
        raise CanonicalVideoError(f"grid must have shape [T, H, W, 2], got {tuple(g.shape)}")
    if g.shape[0] < 1 or g.shape[1] < 2 or g.shape[2] < 2:
        raise CanonicalVideoError(f"grid needs at least 1 frame of 2x2 pixels, got {tuple(g.shape)}")
    if not np.issubdtype(g.dtype, np.floating):
        raise CanonicalVideoError(f"grid must be float32 (canonical pixel units), got dtype {g.dtype}")
    g = np.ascontiguousarray(g, dtype=np.float32)
    if not np.all(np.isfinite(g)):
        raise CanonicalVideoError("grid contains NaN or inf")
    return g


def _validate_points(points) -> np.ndarray:
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

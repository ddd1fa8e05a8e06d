"""Is a deformation field moving content, or faking texture? Four statistics, coverage and a healthy band.

With ``m = grid - identity`` (canonical pixels; grid [T, H, W, 2] as in CanonicalVideo):

- ``mean``: mean over pixels and frames of |m| (Euclidean), how far frames sample from their own place;
- ``max``: the largest |m|;
- ``hf``: the high-frequency part, mean |m - GaussianBlur(m, sigma=2)| (per component): a rough field
  rearranges neighbouring pixels, which adds texture the canonical image does not have;
- ``speed``: mean |grid[t+1] - grid[t]| (per component), in pixels per frame: does anything move;
- ``coverage``: the fraction of canonical pixels that some frame samples (nearest pixel).

Each is also given in % of the frame side (``*_pct``). A stage 2 started from an unconverged stage 1
can turn the field into a large, rough and static scramble: the sky128 GPU sitting of 2026-12-04
measured mean 38.8 px (30% of 128), hf 1.99 px, speed 0.0077 px/frame on seed 1, 64 frames, where
the healthy 32 px default model has 3.97 px (12% of 32), 0.30 px and 0.333 px/frame.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import cv2
import numpy as np

__all__ = ["field_stats", "health_warnings", "BANDS"]

# The healthy band, in % of the frame side (hf: 0.5 px at 128 px; mean: 10%; speed: within 30% of
# the data's when known, else not static).
BANDS = {
    "mean_pct": 10.0,
    "hf_pct": 100.0 * 0.5 / 128,
    "speed_rel": 0.3,
    "static_speed_pct": 0.02,  # below this, with a large field, nothing moves
    "coverage": 0.5,
}


def _blur(m: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(np.ascontiguousarray(m[..., c]), (0, 0), sigma) for c in range(2)], axis=-1)


def _coverage(grid: np.ndarray, canvas_hw) -> float:
    hc, wc = int(canvas_hw[0]), int(canvas_hw[1])
    seen = np.zeros((hc, wc), dtype=bool)
    for g in grid:
        x, y = np.rint(g[..., 0]).astype(np.int64), np.rint(g[..., 1]).astype(np.int64)
        ok = (x >= 0) & (x < wc) & (y >= 0) & (y < hc)
        seen[y[ok], x[ok]] = True
    return float(seen.mean())


def field_stats(grid, canvas_hw=None, sigma: float = 2.0) -> Dict[str, float]:
    """The statistics above for one video's grid [T, H, W, 2] (canonical pixels, pixel centres at integers).

    ``canvas_hw``: the canonical image's (H, W) for coverage (default: the frame size).
    """
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 4 or g.shape[-1] != 2:
        raise ValueError(f"grid must be [T, H, W, 2], got shape {g.shape}")
    t, h, w, _ = g.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    m = g - np.stack([xs, ys], axis=-1)[None]
    norm = np.sqrt((m * m).sum(-1))
    hf = np.mean([np.abs(m[i] - _blur(m[i], sigma)).mean() for i in range(t)])
    speed = float(np.abs(g[1:] - g[:-1]).mean()) if t > 1 else 0.0
    side = float(max(h, w))
    out = {"mean": float(norm.mean()), "max": float(norm.max()), "hf": float(hf), "speed": speed,
           "coverage": _coverage(g, canvas_hw or (h, w))}
    for k in ("mean", "max", "hf", "speed"):
        out[f"{k}_pct"] = 100.0 * out[k] / side
    return out


def health_warnings(stats: Dict[str, float], data_speed_pct: Optional[float] = None) -> List[str]:
    """One line per statistic outside the healthy band, naming it and the likely cause."""
    out = []
    if stats["mean_pct"] > BANDS["mean_pct"]:
        out.append(f"field/mean {stats['mean_pct']:.1f}% of the side (healthy <= {BANDS['mean_pct']:.0f}%): the field "
                   "moves content far from where G_c put it, doing G_c's job; stage 1 is likely unconverged")
    if stats["hf_pct"] > BANDS["hf_pct"]:
        out.append(f"field/hf {stats['hf_pct']:.2f}% of the side (healthy <= {BANDS['hf_pct']:.2f}%): the field is "
                   "rough, rearranging pixels to fake texture the canonical image lacks")
    if data_speed_pct is not None and data_speed_pct > 0:
        rel = stats["speed_pct"] / data_speed_pct - 1.0
        if abs(rel) > BANDS["speed_rel"]:
            out.append(f"field/speed {stats['speed_pct']:.3f}% of the side per frame, {rel:+.0%} against the data's "
                       f"{data_speed_pct:.3f}% (healthy within {BANDS['speed_rel']:.0%}): "
                       + ("the field is nearly static" if rel < 0 else "the field moves faster than the data"))
    elif stats["speed_pct"] < BANDS["static_speed_pct"] and stats["mean_pct"] > BANDS["mean_pct"] / 2:
        out.append(f"field/speed {stats['speed_pct']:.4f}% of the side per frame with a large field: a static "
                   "scramble, nothing moves")
    if stats["coverage"] < BANDS["coverage"]:
        out.append(f"field/coverage {stats['coverage']:.0%} of the canonical image is ever shown (healthy >= "
                   f"{BANDS['coverage']:.0%}): frames draw on a small part of it")
    return out

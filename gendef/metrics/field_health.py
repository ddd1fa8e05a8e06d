"""Is a deformation field moving content, or faking texture? Four statistics, coverage and a healthy band.

With ``m = grid - identity`` (canonical pixels; grid [T, H, W, 2] as in CanonicalVideo):

- ``mean``: mean over pixels and frames of |m| (Euclidean), how far frames sample from their own place;
- ``max``: the largest |m|;
- ``hf``: the high-frequency part, mean |m - GaussianBlur(m, sigma=2)| (per component): a rough field
  rearranges neighbouring pixels, which adds texture the canonical image does not have;
- ``speed``: mean |grid[t+1] - grid[t]| (per component), in pixels per frame: does anything move;
- ``coverage``: the fraction of canonical pixels that some frame samples (nearest pixel);
- ``flow_speed`` (when the frames are given): the same speed measured on the frames themselves,
  mean per-component |Farneback flow| between consecutive frames (``gendef.metrics.motion_stats``,
  frames resized to 128 px). :func:`clip_speed_pct` measures the data with this same estimator, so
  the speed band compares like with like; a field that does not move has ~0 here.

Each is also given in % of the frame side (``*_pct``). A stage 2 started from an unconverged stage 1
can turn the field into a large, rough and static scramble: the sky128 GPU sitting of 2026-12-04
measured mean 38.8 px (30% of 128), hf 1.99 px, speed 0.0077 px/frame on seed 1, 64 frames, where
the healthy 32 px default model has 3.97 px (12% of 32), 0.30 px and 0.333 px/frame.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional

import cv2
import numpy as np

from .motion_stats import FLOW_SIZE, estimate_flows

__all__ = ["field_stats", "health_warnings", "BANDS", "clip_speed_pct", "data_speed_pct", "dataset_clips",
           "synthetic_clips", "SPEED_CLIPS"]

SPEED_CLIPS = (16, 16)  # clips x frames on which the data's speed is measured

# The healthy band, in % of the frame side (hf: 0.5 px at 128 px; mean: 10%; speed: within 30% of
# the data's, measured with the same estimator; without a data speed, not static).
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


def clip_speed_pct(clip: np.ndarray, size: int = FLOW_SIZE) -> float:
    """Mean per-component |Farneback flow| between consecutive frames of a uint8 clip [T, H, W, 3],
    in % of the side per frame (flows at ``size`` px, so any resolution is measured alike)."""
    return float(100.0 * np.abs(estimate_flows(np.asarray(clip), size)).mean() / size)


def data_speed_pct(clips: Iterable[np.ndarray], size: int = FLOW_SIZE) -> float:
    """:func:`clip_speed_pct` averaged over clips (uint8 [T, H, W, 3], T >= 2 each)."""
    speeds = [clip_speed_pct(c, size) for c in clips if len(c) >= 2]
    if not speeds:
        raise ValueError("no clip of 2 or more frames to measure the data's speed on")
    return float(np.mean(speeds))


def synthetic_clips(resolution: int, num: int = SPEED_CLIPS[0], frames: int = SPEED_CLIPS[1], seed: int = 0):
    """The procedural sky generator's clips (``gendef.data.synthetic``, the sky configs' data) at ``resolution``."""
    from ..data.synthetic import clip_seed, render_clip

    for i in range(int(num)):
        yield render_clip(clip_seed(seed, i), int(frames), int(resolution))


def dataset_clips(dataset, num: int = SPEED_CLIPS[0], frames: int = SPEED_CLIPS[1], seed: int = 0):
    """``num`` clips of up to ``frames`` consecutive frames from random videos of a ClipDataset (uint8)."""
    rng = np.random.default_rng(seed)
    videos = [i for i, v in enumerate(dataset.videos) if v.length >= 2]
    for _ in range(int(num) if videos else 0):
        vi = videos[int(rng.integers(len(videos)))]
        start = int(rng.integers(0, max(dataset.videos[vi].length - int(frames), 0) + 1))
        yield dataset.read_clip(vi, start, int(frames))


def field_stats(grid, canvas_hw=None, sigma: float = 2.0, frames=None) -> Dict[str, float]:
    """The statistics above for one video's grid [T, H, W, 2] (canonical pixels, pixel centres at integers).

    ``canvas_hw``: the canonical image's (H, W) for coverage (default: the frame size).
    ``frames``: the video's uint8 frames [T, H, W, 3]; adds ``flow_speed`` and ``flow_speed_pct``.
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
    if frames is not None and len(frames) >= 2:
        out["flow_speed_pct"] = clip_speed_pct(frames)
        out["flow_speed"] = out["flow_speed_pct"] * side / 100.0
    return out


def health_warnings(stats: Dict[str, float], data_speed_pct: Optional[float] = None,
                    speed_band: Optional[float] = None) -> List[str]:
    """One line per statistic outside the healthy band, naming it and the likely cause.

    Speed: the frames' ``flow_speed_pct`` when measured (else the grid's ``speed_pct``) against
    ``data_speed_pct`` (% of the side per frame, the same estimator), healthy within +-``speed_band``
    (default ``BANDS["speed_rel"]``, 30 %). Without a data speed only a large static field is flagged.
    """
    out = []
    band = BANDS["speed_rel"] if speed_band is None else float(speed_band)
    if stats["mean_pct"] > BANDS["mean_pct"]:
        out.append(f"field/mean {stats['mean_pct']:.1f}% of the side (healthy <= {BANDS['mean_pct']:.0f}%): the field "
                   "moves content far from where G_c put it, doing G_c's job; stage 1 is likely unconverged")
    if stats["hf_pct"] > BANDS["hf_pct"]:
        out.append(f"field/hf {stats['hf_pct']:.2f}% of the side (healthy <= {BANDS['hf_pct']:.2f}%): the field is "
                   "rough, rearranging pixels to fake texture the canonical image lacks")
    if data_speed_pct is not None and data_speed_pct > 0:
        speed = stats.get("flow_speed_pct", stats["speed_pct"])
        rel = speed / data_speed_pct - 1.0
        if abs(rel) > band:
            out.append(f"field/speed {speed:.3f}% of the side per frame, {rel:+.0%} against the data's "
                       f"{data_speed_pct:.3f}% (healthy within {band:.0%}): "
                       + ("the field is nearly static" if rel < 0 else "the field moves faster than the data"))
    elif stats["speed_pct"] < BANDS["static_speed_pct"] and stats["mean_pct"] > BANDS["mean_pct"] / 2:
        out.append(f"field/speed {stats['speed_pct']:.4f}% of the side per frame with a large field: a static "
                   "scramble, nothing moves")
    if stats["coverage"] < BANDS["coverage"]:
        out.append(f"field/coverage {stats['coverage']:.0%} of the canonical image is ever shown (healthy >= "
                   f"{BANDS['coverage']:.0%}): frames draw on a small part of it")
    return out

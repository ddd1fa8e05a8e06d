"""Motion statistics of videos, measured the same way on generated and real clips.

Dense optical flow (OpenCV's Farnebäck) between consecutive frames, all clips resized to one
common size first (128 px by default) so that models of different resolutions and the data are
measured with the same estimator, in the same unit (pixels at that size per frame):

- ``speed``: mean |f_t| over pixels and frame pairs;
- ``jerk``: mean |f_{t+1} - f_t| (how abruptly the motion changes);
- ``drift``: per video, sum over pixels of |sum_t f_t| (net displacement) divided by the sum over
  pixels of sum_t |f_t| (path length), averaged over videos: 1 = steady drift in one direction,
  0 = swaying back and forth. Static pixels (no path) do not count.
"""
from __future__ import annotations

from typing import Dict, Iterable

import cv2
import numpy as np

from ..threads import opencv_threads

__all__ = ["estimate_flows", "flow_stats", "clip_motion"]

FLOW_SIZE = 128


def _grey(frame: np.ndarray, size: int) -> np.ndarray:
    g = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    if g.shape != (size, size):
        interp = cv2.INTER_AREA if g.shape[0] > size else cv2.INTER_CUBIC
        g = cv2.resize(g, (size, size), interpolation=interp)
    return g


def estimate_flows(clip: np.ndarray, size: int = FLOW_SIZE) -> np.ndarray:
    """uint8 clip [T, H, W, 3] -> forward flows [T-1, size, size, 2] (x, y) in pixels at ``size``."""
    if clip.ndim != 4 or clip.shape[0] < 2 or clip.shape[-1] != 3:
        raise ValueError(f"need a clip [T>=2, H, W, 3], got {clip.shape}")
    with opencv_threads(1):
        grey = [_grey(f, size) for f in clip]
        return np.stack([cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0) for a, b in zip(grey[:-1], grey[1:])])


def flow_stats(flows: np.ndarray) -> Dict[str, float]:
    """Speed, jerk and drift/sway ratio of flows [N, T-1, H, W, 2] (or one video [T-1, H, W, 2])."""
    f = np.asarray(flows, np.float64)
    if f.ndim == 4:
        f = f[None]
    if f.ndim != 5 or f.shape[-1] != 2 or f.shape[1] < 2:
        raise ValueError(f"need flows [N, T-1>=2, H, W, 2], got {np.shape(flows)}")
    mag = np.linalg.norm(f, axis=-1)
    jerk = np.linalg.norm(np.diff(f, axis=1), axis=-1).mean()
    net = np.linalg.norm(f.sum(axis=1), axis=-1).sum(axis=(1, 2))  # [N]
    path = mag.sum(axis=(1, 3, 2))
    moving = path > 1e-9
    drift = float((net[moving] / path[moving]).mean()) if moving.any() else float("nan")
    return {"speed": float(mag.mean()), "jerk": float(jerk), "drift": drift}


def clip_motion(clips: Iterable[np.ndarray], size: int = FLOW_SIZE) -> Dict[str, float]:
    """Mean statistics over clips (uint8 [T, H, W, 3] each), one video at a time (bounded memory)."""
    rows = [flow_stats(estimate_flows(c, size)) for c in clips]
    if not rows:
        raise ValueError("no clips")
    return {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}

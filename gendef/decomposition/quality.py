"""How clean a decomposition is: reconstruction PSNR and the canonical image's stipple index."""
from __future__ import annotations

import math

import cv2
import numpy as np

from ..video.canonical_video import CanonicalVideo


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two float images/videos in [0, 1]."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 99.0 if mse <= 1e-10 else 10.0 * math.log10(1.0 / mse)


def stipple_index(vid: CanonicalVideo, frames: np.ndarray) -> float:
    """Issue 13's stipple index: mean |I - GaussianBlur(I, 1)| of the grey canonical over the
    canonical pixels some frame samples, over the same on the frames resized (cubic) to the
    canonical scale. ``frames``: float [T, H, W, 3] at the grid's frame size."""
    scale = float(vid.metadata.get("canvas_scale", 1.0))
    canon = cv2.cvtColor(vid.canonical.astype(np.float32), cv2.COLOR_RGB2GRAY)
    hc, wc = canon.shape
    seen = np.zeros((hc, wc), bool)
    g = np.rint(vid.grid.reshape(-1, 2)).astype(np.int64)
    ok = (g[:, 0] >= 0) & (g[:, 0] < wc) & (g[:, 1] >= 0) & (g[:, 1] < hc)
    seen[g[ok, 1], g[ok, 0]] = True
    detail = np.abs(canon - cv2.GaussianBlur(canon, (0, 0), 1.0))[seen].mean()
    h, w = frames.shape[1:3]
    ref = []
    for f in frames:
        big = cv2.resize(f.astype(np.float32), (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_CUBIC)
        grey = cv2.cvtColor(big, cv2.COLOR_RGB2GRAY)
        ref.append(np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 1.0)).mean())
    return float(detail / max(np.mean(ref), 1e-8))

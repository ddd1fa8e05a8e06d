"""Stage 1, initial motion: chained optical flow -> per-frame homography + residual."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..imageutil import to_uint8


@dataclass
class InitialMotion:
    """What the flow tells before any optimisation (all in working-resolution frame pixels).

    ref: the reference frame; hmats [T, 3, 3]: frame pixel -> reference pixel;
    residual [T, 2, H, W]: the flow's map minus the homography's; lo, hi: bounding box
    (x, y) of every frame pixel mapped into the reference frame.
    """

    ref: int
    hmats: np.ndarray
    residual: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def gray_frames(frames: np.ndarray) -> np.ndarray:
    return np.stack([cv2.cvtColor(to_uint8(f), cv2.COLOR_RGB2GRAY) for f in frames])


def _sample_field(field: np.ndarray, mx: np.ndarray, my: np.ndarray) -> np.ndarray:
    return cv2.remap(field, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def chained_maps(gray: np.ndarray, ref: int) -> np.ndarray:
    """Dense maps [T, H, W, 2]: pixel of frame t -> position in frame ``ref``.

    Neighbouring-frame DIS flows are composed outwards from the reference; the
    displacement (not the position) is extrapolated past the border so that
    content leaving the view keeps moving with its neighbours.
    """
    t_count, h, w = gray.shape
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    disp = np.zeros((t_count, h, w, 2), np.float32)
    order = [(t, t + 1) for t in range(ref - 1, -1, -1)] + [(t, t - 1) for t in range(ref + 1, t_count)]
    for t, nb in order:
        flow = dis.calc(gray[t], gray[nb], None)
        disp[t] = flow + _sample_field(disp[nb], xs + flow[..., 0], ys + flow[..., 1])
    return disp + np.stack([xs, ys], axis=-1)[None]


def fit_homographies(maps: np.ndarray, step: int = 8) -> np.ndarray:
    """Robust per-frame homography [T, 3, 3] from frame pixels to reference pixels."""
    t_count, h, w, _ = maps.shape
    ys, xs = np.mgrid[step // 2 : h : step, step // 2 : w : step]
    src = np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float32)
    out = np.empty((t_count, 3, 3), np.float64)
    for t in range(t_count):
        dst = maps[t, ys.ravel(), xs.ravel()].astype(np.float32)
        hmat = None
        if len(src) >= 8:
            hmat, _ = cv2.findHomography(src, dst, cv2.RANSAC, 1.0, maxIters=500)
        if hmat is None:
            shift = np.median(dst - src, axis=0)
            hmat = np.array([[1, 0, shift[0]], [0, 1, shift[1]], [0, 0, 1]], np.float64)
        out[t] = hmat
    return out


def apply_homographies(hmats: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Homographies [T, 3, 3] at the lattice xs x ys -> channel-first maps [T, 2, len(ys), len(xs)]."""
    gx, gy = np.meshgrid(xs.astype(np.float64), ys.astype(np.float64))
    pts = np.stack([gx, gy, np.ones_like(gx)], -1)
    out = np.einsum("hwk,tjk->tjhw", pts, hmats)
    den = out[:, 2:3]
    den = np.where(np.abs(den) < 1e-8, 1e-8, den)
    return (out[:, :2] / den).astype(np.float32)


def confident_smooth(residual: np.ndarray, gray: np.ndarray, sigma: float) -> np.ndarray:
    """Blur each [2, H, W] residual weighted by local texture (structure-tensor eigenvalue).

    Optical flow is only measured where there is texture; elsewhere it is noise, so the
    initial residual there is filled in from textured neighbours (normalised convolution).
    """
    out = np.empty_like(residual)
    for t in range(residual.shape[0]):
        conf = cv2.cornerMinEigenVal(gray[t], blockSize=5, ksize=3)
        conf = conf / (conf + max(float(np.median(conf)), 1e-6))
        den = cv2.GaussianBlur(conf, (0, 0), sigma * 2.0) + 1e-6
        for k in range(2):
            num = cv2.GaussianBlur(residual[t, k] * conf, (0, 0), sigma * 2.0)
            out[t, k] = conf * residual[t, k] + (1 - conf) * num / den
    return out


def initial_motion(video: np.ndarray, stride: int) -> InitialMotion:
    """Flow chained to the middle frame, summarised as homography + smoothed residual."""
    t_count, h, w, _ = video.shape
    ref = t_count // 2
    gray = gray_frames(video)
    maps = chained_maps(gray, ref)
    hmats = fit_homographies(maps)
    xs, ys = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    residual = maps.transpose(0, 3, 1, 2) - apply_homographies(hmats, xs, ys)
    flat = maps.reshape(-1, 2)
    lo, hi = flat.min(0), flat.max(0)
    del maps, flat
    residual = confident_smooth(residual, gray, sigma=stride)
    return InitialMotion(ref=ref, hmats=hmats, residual=residual, lo=lo, hi=hi)

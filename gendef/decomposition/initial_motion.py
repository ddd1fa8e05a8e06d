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
    flows: tuple = ()


def gray_frames(frames: np.ndarray) -> np.ndarray:
    return np.stack([cv2.cvtColor(to_uint8(f), cv2.COLOR_RGB2GRAY) for f in frames])


def _sample_field(field: np.ndarray, mx: np.ndarray, my: np.ndarray) -> np.ndarray:
    return cv2.remap(field, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def pair_flows(gray: np.ndarray) -> tuple:
    """DIS flows between neighbours: (forward [T-1] t -> t+1, backward [T-1] t+1 -> t), [.., H, W, 2]."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    fwd = np.stack([dis.calc(gray[t], gray[t + 1], None) for t in range(len(gray) - 1)])
    bwd = np.stack([dis.calc(gray[t + 1], gray[t], None) for t in range(len(gray) - 1)])
    return fwd, bwd


def chained_maps(flows: tuple, ref: int) -> np.ndarray:
    """Dense maps [T, H, W, 2]: pixel of frame t -> position in frame ``ref``.

    Neighbouring-frame flows are composed outwards from the reference; the
    displacement (not the position) is extrapolated past the border so that
    content leaving the view keeps moving with its neighbours.
    """
    fwd, bwd = flows
    t_count, h, w = fwd.shape[0] + 1, fwd.shape[1], fwd.shape[2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    disp = np.zeros((t_count, h, w, 2), np.float32)
    order = [(t, t + 1, fwd[t]) for t in range(ref - 1, -1, -1)] + [(t, t - 1, bwd[t - 1]) for t in range(ref + 1, t_count)]
    for t, nb, flow in order:
        disp[t] = flow + _sample_field(disp[nb], xs + flow[..., 0], ys + flow[..., 1])
    return disp + np.stack([xs, ys], axis=-1)[None]


def fit_homographies(maps: np.ndarray, step: int = 8, keep=None) -> np.ndarray:
    """Robust per-frame homography [T, 3, 3] from frame pixels to reference pixels
    (from the pixels ``keep`` [T, H, W] bool only, when given)."""
    t_count, h, w, _ = maps.shape
    ys, xs = np.mgrid[step // 2 : h : step, step // 2 : w : step]
    ys, xs = ys.ravel(), xs.ravel()
    out = np.empty((t_count, 3, 3), np.float64)
    for t in range(t_count):
        sel = np.ones(len(xs), bool) if keep is None or keep[t, ys, xs].sum() < 16 else keep[t, ys, xs]
        src = np.stack([xs[sel], ys[sel]], -1).astype(np.float32)
        dst = maps[t, ys[sel], xs[sel]].astype(np.float32)
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


def confident_smooth(residual: np.ndarray, gray: np.ndarray, sigma: float, weight=None) -> np.ndarray:
    """Blur each [2, H, W] residual weighted by local texture (structure-tensor eigenvalue).

    Optical flow is only measured where there is texture; elsewhere it is noise, so the
    initial residual there is filled in from textured neighbours (normalised convolution).
    """
    out = np.empty_like(residual)
    for t in range(residual.shape[0]):
        conf = cv2.cornerMinEigenVal(gray[t], blockSize=5, ksize=3)
        conf = conf / (conf + max(float(np.median(conf)), 1e-6))
        if weight is not None:  # e.g. a layer's mask: only its own pixels are measurements
            conf = conf * weight[t]
        den = cv2.GaussianBlur(conf, (0, 0), sigma * 2.0) + 1e-6
        for k in range(2):
            num = cv2.GaussianBlur(residual[t, k] * conf, (0, 0), sigma * 2.0)
            out[t, k] = conf * residual[t, k] + (1 - conf) * num / den
    return out


def initial_motion(video: np.ndarray, stride: int, flows: tuple = (), movers=None, robust: bool = False) -> InitialMotion:
    """Flow chained to the middle frame, summarised as homography + smoothed residual.

    ``flows``: neighbour flows already computed; ``movers`` [T, H, W] bool: pixels of
    other layers, left out of the homography and of the residual's measurements.
    """
    t_count, h, w, _ = video.shape
    ref = t_count // 2
    gray = gray_frames(video)
    flows = flows or pair_flows(gray)
    maps = chained_maps(flows, ref)
    hmats = fit_homographies(maps, keep=None if movers is None else ~movers)
    xs, ys = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    residual = maps.transpose(0, 3, 1, 2) - apply_homographies(hmats, xs, ys)
    flat = maps.reshape(-1, 2)
    lo, hi = flat.min(0), flat.max(0)
    del maps, flat
    # flow far from the camera's motion is most likely an independent mover, or a chain
    # of flows that crossed one: not a measurement of the scene's residual
    # (``robust``: when movers get layers of their own; one canvas has to follow them)
    mag = np.linalg.norm(residual, axis=1)
    outliers = mag > max(2.0, 3.0 * float(np.median(mag))) if robust else np.zeros(mag.shape, bool)
    if movers is not None:
        outliers |= movers
    residual = confident_smooth(residual, gray, sigma=stride, weight=(~outliers).astype(np.float32))
    return InitialMotion(ref=ref, hmats=hmats, residual=residual, lo=lo, hi=hi, flows=flows)


def layer_motion(video: np.ndarray, flows: tuple, mask: np.ndarray, stride: int) -> InitialMotion:
    """Motion of one independently moving layer, given its pixels ``mask`` [T, H, W] bool.

    A per-frame translation into the frame where the layer is largest (its reference):
    the median flow over the layer's pixels between neighbours, chained. The residual
    starts at zero (the fit's lattices add the non-rigid part).
    """
    t_count, h, w, _ = video.shape
    fwd, bwd = flows
    ref = int(np.argmax(mask.reshape(t_count, -1).sum(1)))
    shift = np.zeros((t_count, 2))
    for t in range(ref - 1, -1, -1):
        m = mask[t] if mask[t].any() else mask[t + 1]
        shift[t] = shift[t + 1] + (np.median(fwd[t][m], axis=0) if m.any() else 0.0)
    for t in range(ref + 1, t_count):
        m = mask[t] if mask[t].any() else mask[t - 1]
        shift[t] = shift[t - 1] + (np.median(bwd[t - 1][m], axis=0) if m.any() else 0.0)
    hmats = np.repeat(np.eye(3)[None], t_count, 0)
    hmats[:, :2, 2] = shift
    seen = np.concatenate([np.stack(np.nonzero(mask[t])[::-1], -1) + shift[t] for t in range(t_count)])
    residual = np.zeros((t_count, 2, h, w), np.float32)
    return InitialMotion(ref=ref, hmats=hmats, residual=residual, lo=seen.min(0), hi=seen.max(0))

"""Layered test scenes with exact ground truth: a panning photo and textured sprites
crossing it on their own paths (occlusion and disocclusion).

Every layer is a scikit-image photo; frames are rendered at twice the size and
area-downscaled (like a camera). Ground truth per query point (picked on frame 0):
its exact position in every frame and whether it is visible (inside the frame and
not covered by a layer above it). Used by ``benchmarks/decompose.py --layers`` and
the decomposition tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class LayeredScene:
    frames: np.ndarray  # [T, S, S, 3] uint8
    queries: np.ndarray  # [N, 2] (x, y) on frame 0
    tracks: np.ndarray  # [T, N, 2] exact positions
    visible: np.ndarray  # [T, N] bool
    layer: np.ndarray  # [N] layer index of each query (0 = background)


def _photo(name: str, side: int) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, -1)
    img = img[..., :3]
    s = side / min(img.shape[:2])
    return cv2.resize(img, (max(side, int(round(img.shape[1] * s))), max(side, int(round(img.shape[0] * s)))), interpolation=cv2.INTER_AREA)


def _paths(kind: int, num_frames: int, size: int):
    """Background offset [T, 2] and sprite centres [K, T, 2] (frame pixels) for scene ``kind``."""
    tau = np.linspace(0.0, 1.0, num_frames)
    bg = np.stack([0.12 * size * tau + 0.02 * size * np.sin(2 * np.pi * tau), -0.06 * size * tau], -1)
    a = np.stack([size * (0.15 + 0.7 * tau), size * (0.5 + 0.12 * np.sin(2 * np.pi * tau))], -1)
    if kind == 2:
        return bg, a[None]
    b = np.stack([size * (0.8 - 0.55 * tau), size * (0.3 + 0.4 * tau)], -1)
    return bg, np.stack([a, b])


def layered_scene(layers: int = 2, num_frames: int = 32, size: int = 128, points: int = 12, share: float = None) -> LayeredScene:
    """``layers`` = 2 (photo + one disc) or 3 (photo + a disc + a rounded square over it).

    ``share``: the disc's area as a fraction of the frame (default 0.08, radius 0.16 of
    the side; 0.025 is the small mover of issue 28); the square keeps its size.
    """
    if layers not in (2, 3):
        raise ValueError("layers must be 2 or 3")
    if share is not None and not 0.001 <= share <= 0.2:
        raise ValueError(f"share must be between 0.001 and 0.2, got {share}")
    big, f = 2 * size, 2.0
    bg_path, centres = _paths(layers, num_frames, size)
    radius = np.array([0.16 if share is None else float(np.sqrt(share / np.pi)), 0.13])[: layers - 1] * size
    bg_img = _photo("astronaut", int(1.4 * big))
    sprites = [_photo(n, int(2 * radius[k] * f) + 8) for k, n in enumerate(["coffee", "chelsea"][: layers - 1])]
    ys, xs = np.mgrid[0:big, 0:big].astype(np.float32)
    frames = []
    for t in range(num_frames):
        ox, oy = (bg_path[t] * f).astype(np.float32)
        img = cv2.remap(bg_img, xs + ox + big * 0.15, ys + oy + big * 0.3, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        img = img.astype(np.float32)
        for k, spr in enumerate(sprites):
            cx, cy = centres[k, t] * f
            sx = xs - np.float32(cx) + spr.shape[1] / 2.0
            sy = ys - np.float32(cy) + spr.shape[0] / 2.0
            tex = cv2.remap(spr, sx, sy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT).astype(np.float32)
            alpha = _shape_mask(k, xs - np.float32(cx), ys - np.float32(cy), radius[k] * f)
            img = img * (1 - alpha[..., None]) + tex * alpha[..., None]
        frames.append(cv2.resize(np.clip(img + 0.5, 0, 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_AREA))
    queries, layer = _queries(bg_path, centres, radius, size, points)
    tracks, visible = _truth(queries, layer, bg_path, centres, radius, size)
    return LayeredScene(np.stack(frames), queries, tracks, visible, layer)


def _shape_mask(k: int, dx, dy, r: float):
    """Anti-aliased coverage: a disc (k = 0) or a rounded square (k = 1)."""
    if k == 0:
        d = np.sqrt(dx * dx + dy * dy) - r
    else:
        q = np.maximum(np.abs(dx) - 0.6 * r, 0), np.maximum(np.abs(dy) - 0.6 * r, 0)
        d = np.sqrt(q[0] ** 2 + q[1] ** 2) - 0.4 * r
    return np.clip(0.5 - d, 0.0, 1.0).astype(np.float32)


def _inside(k: int, dx, dy, r: float, pad: float = 0.0):
    if k == 0:
        return np.sqrt(dx * dx + dy * dy) < r + pad
    q = np.maximum(np.abs(dx) - 0.6 * r, 0), np.maximum(np.abs(dy) - 0.6 * r, 0)
    return np.sqrt(q[0] ** 2 + q[1] ** 2) < 0.4 * r + pad


def _queries(bg_path, centres, radius, size, points):
    """A lattice of frame-0 points per layer, at least 3 px from any layer's edge."""
    g = np.linspace(6, size - 7, points)
    cand = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    qs, ls = [], []
    top = np.zeros(len(cand), int)
    near_edge = np.zeros(len(cand), bool)
    for k in range(len(radius)):
        dx, dy = cand[:, 0] - centres[k, 0, 0], cand[:, 1] - centres[k, 0, 1]
        inside = _inside(k, dx, dy, radius[k])
        near_edge |= _inside(k, dx, dy, radius[k], 3.0) & ~_inside(k, dx, dy, radius[k], -3.0)
        top[inside] = k + 1
    keep = ~near_edge
    qs.append(cand[keep])
    ls.append(top[keep])
    for k in range(len(radius)):  # a denser lattice on each sprite, so movers weigh in the scores
        r = radius[k] * 0.75
        h = np.linspace(-r, r, 5)
        local = np.stack(np.meshgrid(h, h), -1).reshape(-1, 2) + centres[k, 0]
        ok = _inside(k, local[:, 0] - centres[k, 0, 0], local[:, 1] - centres[k, 0, 1], radius[k], -3.0)
        for j in range(k + 1, len(radius)):
            ok &= ~_inside(j, local[:, 0] - centres[j, 0, 0], local[:, 1] - centres[j, 0, 1], radius[j], 3.0)
        ok &= (local >= 2).all(-1) & (local <= size - 3).all(-1)
        qs.append(local[ok])
        ls.append(np.full(int(ok.sum()), k + 1))
    return np.concatenate(qs).astype(np.float64), np.concatenate(ls)


def _truth(queries, layer, bg_path, centres, radius, size):
    t_count = len(bg_path)
    tracks = np.empty((t_count, len(queries), 2))
    for n, (q, k) in enumerate(zip(queries, layer)):
        if k == 0:
            tracks[:, n] = q + bg_path[0] - bg_path
        else:
            tracks[:, n] = q - centres[k - 1, 0] + centres[k - 1]
    vis = (tracks >= -0.5).all(-1) & (tracks <= size - 0.5).all(-1)
    for j in range(len(radius)):
        dx = tracks[..., 0] - centres[j, :, 0][:, None]
        dy = tracks[..., 1] - centres[j, :, 1][:, None]
        covered = _inside(j, dx, dy, radius[j]) & (layer[None] < j + 1)
        vis &= ~covered
    return tracks, vis


def tapvid_scores(pred: np.ndarray, pred_vis: np.ndarray, truth: np.ndarray, truth_vis: np.ndarray) -> dict:
    """TAP-Vid metrics over every frame but the query frame (0): average Jaccard and
    delta_avg over thresholds 1, 2, 4, 8, 16 px, occlusion accuracy, median error (visible points)."""
    pred, pred_vis, truth, truth_vis = pred[1:], pred_vis[1:], truth[1:], truth_vis[1:]
    err = np.linalg.norm(pred - truth, axis=-1)
    jac, delta = [], []
    for thr in (1, 2, 4, 8, 16):
        close = err < thr
        tp = np.sum(truth_vis & pred_vis & close)
        fp = np.sum(pred_vis & ~(truth_vis & close))
        fn = np.sum(truth_vis & ~(pred_vis & close))
        jac.append(tp / max(tp + fp + fn, 1))
        delta.append(np.sum(close & truth_vis) / max(np.sum(truth_vis), 1))
    return {
        "aj": float(np.mean(jac)),
        "delta_avg": float(np.mean(delta)),
        "oa": float(np.mean(pred_vis == truth_vis)),
        "median": float(np.median(err[truth_vis])) if truth_vis.any() else float("nan"),
    }

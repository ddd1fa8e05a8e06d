"""Finding independent movers: what one smooth canvas cannot explain, split by motion."""
from __future__ import annotations

import cv2
import numpy as np

_K3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
_K7 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))


def fill_holes(m: np.ndarray) -> np.ndarray:
    """Binary uint8 mask with enclosed holes filled (flood fill of the outside from the border)."""
    pad = np.pad(m, 1)
    flood = pad.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    return (pad | (1 - flood))[1:-1, 1:-1].astype(np.uint8)


def _clean(m: np.ndarray, min_area: int) -> np.ndarray:
    """Open, close, drop small blobs, fill holes: uint8 in, uint8 out."""
    m = cv2.morphologyEx(cv2.morphologyEx(m, cv2.MORPH_OPEN, _K3), cv2.MORPH_CLOSE, _K7)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return fill_holes(keep[lab].astype(np.uint8))


def mover_mask(err: np.ndarray, floor: float = 0.08) -> np.ndarray:
    """Pixels [T, H, W] the current layers do not explain: large, blob-like colour errors."""
    tau = max(floor, 3.0 * float(np.median(err)))
    min_area = max(16, int(0.002 * err[0].size))
    out = np.zeros(err.shape, bool)
    for t in range(err.shape[0]):
        m = _clean((cv2.GaussianBlur(err[t], (0, 0), 1.5) > tau).astype(np.uint8), min_area)
        out[t] = cv2.dilate(m, _K3) > 0
    return out


def _mode(vectors: np.ndarray, prior=None, bin_px: float = 0.5) -> np.ndarray:
    """The most common 2-D displacement (histogram peak, refined by a local mean); with a
    ``prior`` the votes are weighted towards it (a mover keeps its speed)."""
    if len(vectors) == 0:
        return np.zeros(2) if prior is None else prior
    lo = np.floor(vectors.min(0) / bin_px) * bin_px
    idx = np.floor((vectors - lo) / bin_px).astype(int)
    shape = idx.max(0) + 1
    if shape.prod() > 1_000_000:
        return np.median(vectors, 0)
    weight = np.ones(len(vectors)) if prior is None else np.exp(-np.sum((vectors - prior) ** 2, -1) / (2 * 1.5**2)) + 1e-4
    hist = np.zeros((shape[1], shape[0]))
    np.add.at(hist, (idx[:, 1], idx[:, 0]), weight)
    hist = cv2.GaussianBlur(hist, (0, 0), 1.0)
    iy, ix = np.unravel_index(hist.argmax(), hist.shape)
    peak = lo + (np.array([ix, iy]) + 0.5) * bin_px
    near = np.sum((vectors - peak) ** 2, -1) < 1.0
    return vectors[near].mean(0) if near.any() else peak


def _shift(m: np.ndarray, d) -> np.ndarray:
    """Bool mask moved by d = (dx, dy) frame pixels (nearest), for predicting where a group goes."""
    mat = np.float32([[1, 0, d[0]], [0, 1, d[1]]])
    return cv2.warpAffine(m.astype(np.uint8), mat, (m.shape[1], m.shape[0]), flags=cv2.INTER_NEAREST) > 0


def _step(remaining, flows, t, prior, prev, tol, min_area, member, direction=1):
    """Frame t's share of one group: pixels moving like the group's dominant motion, near
    where the group's previous region (``prev``) goes when moved by its own motion (so a
    mover crossing another keeps its identity). Returns the motion."""
    fwd, bwd = flows
    t_count = remaining.shape[0]
    flow, sign = (fwd[t], 1.0) if t < t_count - 1 else (bwd[t - 1], -1.0)
    cand = remaining[t]
    if prev is not None:
        cand = cand & (cv2.dilate(_shift(prev, direction * prior).astype(np.uint8), _K7) > 0)
    vec = flow[cand] * sign
    if len(vec) < min_area:
        return prior
    if prior is not None and np.sum(np.sum((vec - prior) ** 2, -1) < tol**2) < min_area:
        return prior  # hidden, or only things moving otherwise nearby: coast at its own speed
    prior = _mode(vec, prior)
    close = cand & (np.sum((flow * sign - prior) ** 2, -1) < tol**2)
    member[t] = (cv2.dilate(_clean(close.astype(np.uint8), min_area), _K3) > 0) & remaining[t]
    return prior


def split_movers(mask: np.ndarray, flows: tuple, most: int, tol: float = 1.5) -> list:
    """Split the movers' pixels [T, H, W] into at most ``most`` groups that each move
    as one (the flow to the next frame within ``tol`` px of the group's dominant one)."""
    fwd, bwd = flows
    t_count = mask.shape[0]
    min_area = max(16, int(0.002 * mask[0].size))
    remaining, groups = mask.copy(), []
    for _ in range(most):
        if remaining.mean() < 0.002:
            break
        member = np.zeros_like(mask)
        anchor = int(np.argmax(remaining.reshape(t_count, -1).sum(1)))
        start = _step(remaining, flows, anchor, None, None, tol, min_area, member)
        for order, direction in ((range(anchor + 1, t_count), 1), (range(anchor - 1, -1, -1), -1)):
            prior, prev = start, member[anchor]
            for t in order:
                moved = _shift(prev, direction * prior)
                prior = _step(remaining, flows, t, prior, prev, tol, min_area, member, direction)
                # a mover hidden behind another coasts on its own motion until it shows again
                prev = member[t] if member[t].sum() >= 0.5 * prev.sum() else moved
        if member.mean() < 0.002:
            break
        groups.append(member)
        remaining &= ~(cv2.dilate(member.reshape(-1, member.shape[2]).astype(np.uint8), _K3) > 0).reshape(member.shape)
        remaining = np.stack([_clean(r.astype(np.uint8), min_area) > 0 for r in remaining])
    return groups or [mask]


def relative_motion(group: np.ndarray, mask: np.ndarray, flows: tuple) -> float:
    """How far (px per frame, median over frames) a group's dominant flow differs from the
    flow of the scene around it (a ring outside every mover): about 0 for regions one
    canvas merely fits badly, the speed relative to the background for a real mover."""
    fwd = flows[0]
    ring_kernel = np.ones((15, 15), np.uint8)
    diffs = []
    for t in range(len(fwd)):
        if group[t].sum() < 16:
            continue
        ring = (cv2.dilate(group[t].astype(np.uint8), ring_kernel) > 0) & ~mask[t]
        if ring.sum() < 16:
            continue
        diffs.append(np.linalg.norm(np.median(fwd[t][group[t]], 0) - np.median(fwd[t][ring], 0)))
    return float(np.median(diffs)) if diffs else 0.0

"""Decompose a real clip into a canonical image and a per-frame deformation field.

The paper only edits generated videos; users want to edit their own clips. This
module fits the same representation (``CanonicalVideo``) to any short clip so every
editor works on it unchanged.

Recipe, chosen to run in well under a minute on two CPU cores:

1. DIS optical flow between neighbouring frames, chained to the middle frame,
   gives every frame's map into the reference frame; a robust (RANSAC) per-frame
   homography plus a residual field summarise it. The residual lives on control
   lattices every 4, 16 and 64 pixels (smooth by construction) and starts from
   the flow blurred where the image has no texture (there flow is only noise).
2. The canonical image lives on a canvas larger than the frames (a margin plus
   everything the motion reveals) and, by default, at twice the frame
   resolution so that bilinear sampling does not blur sub-pixel motion. It
   starts in closed form: the frames splatted back through the grid (the
   adjoint of bilinear sampling), normalised.
3. A short coarse-to-fine Adam optimisation (half, then full resolution) of
   (canonical, residual lattices) against the frames: Charbonnier photometric
   loss, spatial smoothness of the finest lattice and the paper's temporal
   regulariser L_reg (eq. 4: edge-aware smoothness of the change of flow over
   three adjacent frames).

The grid saved is the working-resolution frame size, in canonical pixels, so
``cv2.remap(canonical, grid[t, ..., 0], grid[t, ..., 1], INTER_LINEAR)`` renders
frame t. Occlusions and lighting changes are outside this model (one canonical
image, no layers): they cost PSNR, never a crash.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
import types
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from .video import CanonicalVideo, pixels_to_normalized

__all__ = [
    "DecomposeError",
    "decompose",
    "decompose_file",
    "add_decompose_arguments",
    "run_decompose_command",
    "psnr",
]

ProgressFn = Callable[[float, str], None]

# Bytes per working-resolution frame pixel (frames, flows, grids, optimiser state):
# the measured peak is about 180 (1.5 GB for 128 frames at 256x256); the rest is head-room.
_BYTES_PER_PIXEL = 240
_CHUNK_PIXELS = 32 * 256 * 256
DEFAULT_STEPS = 140


class DecomposeError(ValueError):
    """Bad input for the decomposer (message is user-facing, one line)."""


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two float images/videos in [0, 1]."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 99.0 if mse <= 1e-10 else 10.0 * math.log10(1.0 / mse)


# --------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------
def _as_float_frames(frames) -> np.ndarray:
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] not in (3, 4):
        raise DecomposeError(f"frames must be shaped [T, H, W, 3], got {tuple(a.shape)}")
    a = a[..., :3]
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if not np.issubdtype(a.dtype, np.floating):
        raise DecomposeError(f"frames must be uint8 or float in [0, 1], got dtype {a.dtype}")
    a = a.astype(np.float32)
    if not np.all(np.isfinite(a)):
        raise DecomposeError("frames contain NaN or inf")
    return np.clip(a, 0.0, 1.0)


def working_size(height: int, width: int, size: Optional[int]) -> tuple:
    """(H, W) with the long side equal to ``size`` (aspect kept); None keeps the input."""
    if size is None:
        return int(height), int(width)
    if size < 16:
        raise DecomposeError(f"size must be at least 16, got {size}")
    s = size / max(height, width)
    return max(2, int(round(height * s))), max(2, int(round(width * s)))


def resize_frames(frames: np.ndarray, hw: tuple) -> np.ndarray:
    """Resize [T, H, W, C] with INTER_AREA (the reference the PSNR target is defined against)."""
    h, w = hw
    if frames.shape[1:3] == (h, w):
        return frames
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])


def _available_memory() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return 8 << 30


def _check_memory(num_frames: int, height: int, width: int, canvas_scale: float) -> None:
    need = num_frames * height * width * _BYTES_PER_PIXEL + int(
        (height + width) ** 2 * canvas_scale**2 * 3 * 4 * 8
    )
    have = _available_memory()
    if need > 0.6 * have:
        raise DecomposeError(
            f"clip too large for memory: {num_frames} frames at {width}x{height} need about "
            f"{need / 2**30:.1f} GiB, {have / 2**30:.1f} GiB free; use fewer frames (--frames) or a smaller --size"
        )


# --------------------------------------------------------------------------------------
# 1. initial motion from optical flow
# --------------------------------------------------------------------------------------
def _gray(frames: np.ndarray) -> np.ndarray:
    return np.stack([cv2.cvtColor((f * 255.0 + 0.5).astype(np.uint8), cv2.COLOR_RGB2GRAY) for f in frames])


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
        mx = xs + flow[..., 0]
        my = ys + flow[..., 1]
        disp[t] = flow + _sample_field(disp[nb], mx, my)
    return disp + np.stack([xs, ys], axis=-1)[None]


def _fit_homographies(maps: np.ndarray, step: int = 8) -> np.ndarray:
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


def _apply_homographies(hmats: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Homographies [T, 3, 3] at the lattice xs x ys -> channel-first maps [T, 2, len(ys), len(xs)]."""
    gx, gy = np.meshgrid(xs.astype(np.float64), ys.astype(np.float64))
    pts = np.stack([gx, gy, np.ones_like(gx)], -1)
    out = np.einsum("hwk,tjk->tjhw", pts, hmats)
    den = out[:, 2:3]
    den = np.where(np.abs(den) < 1e-8, 1e-8, den)
    return (out[:, :2] / den).astype(np.float32)


def _confident_smooth(residual: np.ndarray, gray: np.ndarray, sigma: float) -> np.ndarray:
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


# --------------------------------------------------------------------------------------
# 2./3. canvas, canonical and the optimisation (torch)
# --------------------------------------------------------------------------------------
def _coarse_shape(h: int, w: int, stride: int) -> tuple:
    return int(math.ceil((h - 1) / stride)) + 1, int(math.ceil((w - 1) / stride)) + 1


def _level_positions(n_out: int, factor: int) -> np.ndarray:
    """Full-resolution coordinates of the pixel centres of a ``factor``-times smaller level."""
    return (np.arange(n_out, dtype=np.float64) + 0.5) * factor - 0.5


def _interp_matrix(positions: np.ndarray, stride: int, n_ctrl: int):
    """Matrix [len(positions), n_ctrl] of the piecewise-linear interpolation of control points.

    Two small matrix products upsample the residual field; on a CPU this is several
    times faster than ``F.interpolate`` on permuted tensors and needs no cropping.
    """
    import torch

    u = positions / stride
    i = np.clip(np.floor(u), 0, n_ctrl - 2).astype(np.int64)
    f = u - i
    m = np.zeros((len(positions), n_ctrl), np.float32)
    rows = np.arange(len(positions))
    m[rows, i] = 1.0 - f
    m[rows, i + 1] += f
    return torch.from_numpy(m)


def _splat_canonical(frames_t, grid_px, canvas_hw: tuple, chunk: int, init=None):
    """Closed-form canonical: frames splatted back through the grid, normalised.

    The splat is the adjoint of bilinear sampling (obtained by autograd), so this is
    one Jacobi step of the least-squares canonical (from ``init`` when given, e.g.
    the coarser level's canonical, so only its residual is splatted); holes are
    filled by normalised convolution and far regions no frame sees by the mean colour.
    """
    import torch
    import torch.nn.functional as F

    hc, wc = canvas_hw
    t_count, _, h, w = frames_t.shape
    num = torch.zeros(1, 4, hc, wc)
    for s in range(0, t_count, chunk):
        e = min(t_count, s + chunk)
        fr = frames_t[s:e].permute(1, 0, 2, 3).reshape(1, 3, (e - s) * h, w)
        g = pixels_to_normalized(grid_px[s:e].detach(), canvas_hw).reshape(1, (e - s) * h, w, 2)
        if init is not None:
            fr = fr - F.grid_sample(init, g, mode="bilinear", padding_mode="border", align_corners=True)
        with torch.enable_grad():
            probe = torch.zeros(1, 4, hc, wc, requires_grad=True)
            out = F.grid_sample(probe, g, mode="bilinear", padding_mode="zeros", align_corners=True)
            target = torch.cat([fr, torch.ones_like(fr[:, :1])], 1)
            (grad,) = torch.autograd.grad((out * target).sum(), probe)
        num += grad
    num = num[0].permute(1, 2, 0).numpy()
    blurred = cv2.GaussianBlur(num, (0, 0), 1.0)
    weight = num[..., 3:4]
    direct = num[..., :3] / np.maximum(weight, 1e-6)
    smooth = blurred[..., :3] / np.maximum(blurred[..., 3:4], 1e-6)
    alpha = np.clip(weight / 0.5, 0.0, 1.0)
    canon = alpha * direct + (1 - alpha) * smooth
    far = blurred[..., 3:4] < 1e-3
    if init is not None:
        canon = init[0].permute(1, 2, 0).numpy() + np.where(far, 0.0, canon)
    else:
        mean = num[..., :3].reshape(-1, 3).sum(0) / max(float(weight.sum()), 1e-6)
        wide = cv2.GaussianBlur(num, (0, 0), 8.0)
        fill = np.where(wide[..., 3:4] > 1e-4, wide[..., :3] / np.maximum(wide[..., 3:4], 1e-6), mean)
        canon = np.where(far, fill, canon)
    return torch.from_numpy(np.clip(canon, 0.0, 1.0).astype(np.float32)).permute(2, 0, 1)[None].contiguous()


def decompose(
    frames,
    *,
    size: Optional[int] = None,
    steps: Optional[int] = None,
    canvas_scale: int = 2,
    margin: Optional[int] = None,
    stride: int = 4,
    fps: float = 16.0,
    smooth_weight: float = 0.02,
    reg_weight: float = 1.0,
    canonical_weight: float = 0.2,
    progress: Optional[ProgressFn] = None,
    threads: Optional[int] = 1,
) -> CanonicalVideo:
    """Fit a CanonicalVideo to frames ([T, H, W, 3], uint8 or float in [0, 1]).

    size: long side of the working resolution (None keeps the input size);
    steps: optimisation steps in total over the two scales (default 140);
    canvas_scale: canonical pixels per frame pixel (2 keeps sub-pixel detail);
    margin: extra canvas border in frame pixels around everything the motion
    shows (default 6% of the long side); stride: spacing in frame pixels of the
    residual field's control points; canonical_weight: curvature prior on the
    canonical (higher = cleaner canonical, lower PSNR; 0.2 costs ~0.3 dB on real
    footage and removes a third of the striping); progress(fraction, message) is called as
    work advances, with the current reconstruction PSNR in the message.
    threads: torch threads during the fit (None keeps torch's setting). One is
    the default because the work is many small memory-bound ops: on a shared
    2-core machine two OpenMP threads spin against each other and took 113 s
    where one thread took 21 s (same 32-frame clip).
    """
    import torch
    import torch.nn.functional as F

    start_time = time.perf_counter()
    report = progress or (lambda f, m: None)
    video = _as_float_frames(frames)
    t_count = video.shape[0]
    if t_count < 2:
        raise DecomposeError(f"need at least 2 frames to decompose, got {t_count}")
    if steps is None:
        steps = DEFAULT_STEPS
    if steps < 0:
        raise DecomposeError(f"steps must be >= 0, got {steps}")
    if canvas_scale not in (1, 2, 3, 4):
        raise DecomposeError(f"canvas_scale must be 1, 2, 3 or 4, got {canvas_scale}")
    if stride < 1:
        raise DecomposeError(f"stride must be >= 1, got {stride}")
    h, w = working_size(video.shape[1], video.shape[2], size)
    if min(h, w) < 8:
        raise DecomposeError(f"frames are too small ({w}x{h}); need at least 8x8 pixels")
    _check_memory(t_count, h, w, canvas_scale)
    video = resize_frames(video, (h, w))
    if margin is None:
        margin = max(4, int(round(0.06 * max(h, w))))

    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        report(0.0, "optical flow")
        ref = t_count // 2
        gray = _gray(video)
        maps = chained_maps(gray, ref)
        hmats = _fit_homographies(maps)
        xs_full, ys_full = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
        residual = maps.transpose(0, 3, 1, 2) - _apply_homographies(hmats, xs_full, ys_full)
        report(0.1, "motion initialised")

        # canvas: bounding box of everything seen, plus the margin, in reference-frame pixels
        lim = 2.0 * max(h, w)
        lo = np.clip(maps.reshape(-1, 2).min(0), -lim, None) - margin
        hi = np.clip(maps.reshape(-1, 2).max(0), None, max(h, w) + lim) + margin
        lo = np.minimum(np.floor(lo), [-margin, -margin])
        hi = np.maximum(np.ceil(hi), [w - 1 + margin, h - 1 + margin])
        del maps
        s = float(canvas_scale)
        # reference pixel q -> canvas pixel s * q + offset (pixel centres aligned)
        offset = (s * (-lo + 0.5) - 0.5).astype(np.float32)
        wc = int(math.ceil(s * (hi[0] - lo[0] + 1)))
        hc = int(math.ceil(s * (hi[1] - lo[1] + 1)))
        off_t = torch.from_numpy(offset).view(1, 2, 1, 1)

        nh, nw = _coarse_shape(h, w, stride)
        residual = _confident_smooth(residual, gray, sigma=stride)
        res0 = np.stack([cv2.resize(r.transpose(1, 2, 0), (nw, nh), interpolation=cv2.INTER_AREA) for r in residual])
        del residual
        # the residual is a sum of control lattices every stride, 4 and 16 strides: Adam moves
        # the coarse ones with gradients pooled over large areas, so flat regions follow
        # their textured surroundings instead of keeping the flow's noise
        strides = [stride * m for m in (1, 4, 16)]
        shapes = [_coarse_shape(h, w, st) for st in strides]
        fields = [torch.from_numpy((res0 * s).astype(np.float32)).permute(0, 3, 1, 2).contiguous()]
        fields += [torch.zeros(t_count, 2, a, b) for a, b in shapes[1:]]
        for f in fields:
            f.requires_grad_(True)
        ctrl_x = np.arange(nw, dtype=np.float64) * stride
        ctrl_y = np.arange(nh, dtype=np.float64) * stride
        ctrl_mats = [(_interp_matrix(ctrl_y, st, a), _interp_matrix(ctrl_x, st, b)) for st, (a, b) in zip(strides, shapes)]

        def lattice_sum(fs):
            """All lattices on the finest one: exact, as coarse knots are a subset of fine knots."""
            total = fs[0]
            for (my, mx), f in zip(ctrl_mats[1:], fs[1:]):
                total = total + torch.matmul(torch.matmul(my, f), mx.t())
            return total
        base_ctrl = torch.from_numpy(
            _apply_homographies(hmats, ctrl_x, ctrl_y)
        ) * s + off_t
        gray_ctrl = torch.from_numpy(
            np.stack([cv2.resize(f.mean(-1), (nw, nh), interpolation=cv2.INTER_AREA) for f in video])
        )[:, None]
        ex = torch.exp(-10.0 * (gray_ctrl[..., :, 1:] - gray_ctrl[..., :, :-1]).abs())
        ey = torch.exp(-10.0 * (gray_ctrl[..., 1:, :] - gray_ctrl[..., :-1, :]).abs())

        levels = [2, 1] if min(h, w) >= 32 else [1]
        split = [0.6, 0.4] if len(levels) == 2 else [1.0]
        level_steps = [int(round(steps * f)) for f in split]
        done = 0
        canonical = None
        last_psnr = float("nan")
        for factor, n_steps in zip(levels, level_steps):
            hl, wl = -(-h // factor), -(-w // factor)
            frames_l = torch.from_numpy(resize_frames(video, (hl, wl))).permute(0, 3, 1, 2).contiguous()
            canvas_l = (-(-hc // factor), -(-wc // factor))
            chunk = max(1, _CHUNK_PIXELS // (hl * wl))
            # all frames stacked vertically: one sampled image, so the canonical's gradient
            # is accumulated in place instead of once per frame
            frames_stack = frames_l.permute(1, 0, 2, 3).reshape(1, 3, t_count * hl, wl)
            npix = float(frames_l.numel())
            px, py = _level_positions(wl, factor), _level_positions(hl, factor)
            my_l, mx_l = _interp_matrix(py, stride, nh), _interp_matrix(px, stride, nw)
            base_l = torch.from_numpy(_apply_homographies(hmats, px, py)) * s + off_t

            def grid_of(fs):
                """Channel-first grid [T, 2, hl, wl] in this level's canvas pixels."""
                full = base_l + torch.matmul(torch.matmul(my_l, lattice_sum(fs)), mx_l.t())
                return (full + 0.5) / factor - 0.5

            with torch.no_grad():
                init = None
                if canonical is not None:
                    prev = canonical.detach()[0].permute(1, 2, 0).numpy()
                    up = cv2.resize(prev, (canvas_l[1], canvas_l[0]), interpolation=cv2.INTER_LINEAR)
                    init = torch.from_numpy(up).permute(2, 0, 1)[None].contiguous()
                canonical = _splat_canonical(frames_l, grid_of(fields).permute(0, 2, 3, 1), canvas_l, chunk, init)
            canonical.requires_grad_(True)
            opt = torch.optim.Adam([{"params": [canonical]}, {"params": fields}], betas=(0.9, 0.99))
            for it in range(n_steps):
                frac = it / max(n_steps - 1, 1)
                # warm-up: Adam's first steps move every parameter by a full lr whatever the
                # gradient, which would first undo a good closed-form start
                decay = 0.5 * (1 + math.cos(math.pi * frac)) * min(1.0, (it + 1) / max(3.0, 0.15 * n_steps))
                # the finer level starts from an already good canonical: a smaller step keeps it
                opt.param_groups[0]["lr"] = (0.002 + 0.018 * decay) * (1.0 if factor == levels[0] else 0.3)
                opt.param_groups[1]["lr"] = s * (0.005 + 0.095 * decay) * factor
                opt.zero_grad(set_to_none=True)
                grid = grid_of(fields)
                # photometric term chunk by chunk against a detached copy of the grid, so the
                # field upsampling is back-propagated once per step, not once per chunk
                leaf = grid.detach().requires_grad_(True)
                sq_err = 0.0
                for a in range(0, t_count, chunk):
                    b = min(t_count, a + chunk)
                    g = pixels_to_normalized(leaf[a:b].permute(0, 2, 3, 1), canvas_l).reshape(1, (b - a) * hl, wl, 2)
                    out = F.grid_sample(canonical, g, mode="bilinear", padding_mode="border", align_corners=True)
                    with torch.no_grad():
                        diff = out - frames_stack[:, :, a * hl : b * hl]
                        sq = diff * diff
                        sq_err += float(sq.sum())
                        # d/dx of the Charbonnier penalty sqrt(x^2 + eps^2), written out: fewer passes over memory
                        diff /= sq.add_(1e-6).sqrt_().mul_(npix)
                    out.backward(diff)
                fine = fields[0]
                # faint curvature prior on the canonical: bilinear samples near half-pixel phase
                # barely see the canvas's finest (Nyquist) pattern, which the fit would otherwise
                # fill with noise that shows as stripes when the canonical is edited
                lap_y = canonical[..., 2:, :] - 2 * canonical[..., 1:-1, :] + canonical[..., :-2, :]
                lap_x = canonical[..., :, 2:] - 2 * canonical[..., :, 1:-1] + canonical[..., :, :-2]
                reg_c = canonical_weight * (lap_y.pow(2).mean() + lap_x.pow(2).mean())
                reg = smooth_weight * (
                    (fine[..., 1:, :] - fine[..., :-1, :]).pow(2).mean()
                    + (fine[..., :, 1:] - fine[..., :, :-1]).pow(2).mean()
                    + 0.1 * fine.pow(2).mean()
                ) / s
                if t_count >= 3 and reg_weight > 0:
                    # L_reg (eq. 4) on the finest control lattice, in frame pixels
                    ctrl = (base_ctrl + lattice_sum(fields)) / s
                    acc = ctrl[2:] - 2 * ctrl[1:-1] + ctrl[:-2]
                    lreg = ((acc[..., :, 1:] - acc[..., :, :-1]).abs() * ex[1:-1]).mean() + (
                        (acc[..., 1:, :] - acc[..., :-1, :]).abs() * ey[1:-1]
                    ).mean()
                    reg = reg + reg_weight * 0.01 * lreg
                torch.autograd.backward([grid, reg + reg_c], [leaf.grad, None])
                opt.step()
                with torch.no_grad():
                    canonical.clamp_(0.0, 1.0)
                last_psnr = 10 * math.log10(1.0 / max(sq_err / frames_l.numel(), 1e-10))
                done += 1
                if it % 10 == 0 or it == n_steps - 1:
                    report(0.1 + 0.85 * done / max(steps, 1), f"scale 1/{factor}: step {it + 1}/{n_steps}, PSNR {last_psnr:.2f} dB")

        with torch.no_grad():
            grid = grid_of(fields).permute(0, 2, 3, 1).contiguous()
            canon = canonical.detach()[0].permute(1, 2, 0).numpy()
            grid = grid.numpy()
    finally:
        torch.set_num_threads(old_threads)

    vid = CanonicalVideo(
        canonical=np.clip(canon, 0.0, 1.0),
        grid=grid.astype(np.float32),
        fps=fps,
        metadata={
            "source": "decompose",
            "reference_frame": int(ref),
            "canvas_scale": int(canvas_scale),
            "steps": int(steps),
        },
    )
    final = psnr(vid.frames(), video)
    vid.metadata["psnr"] = round(final, 3)
    vid.metadata["seconds"] = round(time.perf_counter() - start_time, 2)
    report(1.0, f"done: PSNR {final:.2f} dB")
    return vid


# --------------------------------------------------------------------------------------
# files and the command line
# --------------------------------------------------------------------------------------
def _probe_pixels(path: Path, start: int, frames: Optional[int]) -> Optional[int]:
    """Decoded size in bytes of the requested clip, from the header only (None if unknown)."""
    from .videoio import IMAGE_EXTS

    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_EXTS)[start:]
        if not files:
            return None
        try:
            from PIL import Image

            with Image.open(files[0]) as im:
                w, h = im.size
        except Exception:
            return None
        n = len(files) if frames is None else min(frames, len(files))
        return n * w * h * 3
    if path.suffix.lower() == ".gif":
        return None
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    if w <= 0 or h <= 0 or count <= 0:
        return None
    n = max(count - start, 0) if frames is None else min(frames, max(count - start, 0))
    return n * w * h * 3


def decompose_file(
    path,
    start: int = 0,
    frames: Optional[int] = None,
    size: int = 256,
    steps: Optional[int] = None,
    progress: Optional[ProgressFn] = None,
    **kwargs,
) -> CanonicalVideo:
    """Read a clip (video file, gif or folder of frames) and decompose it.

    ``start``/``frames`` pick the clip, ``size`` is the long side of the working
    resolution; the source fps is kept.
    """
    from .videoio import VideoIOError, read_video

    p = Path(path)
    if start < 0:
        raise DecomposeError(f"start must be >= 0, got {start}")
    if frames is not None and frames < 2:
        raise DecomposeError(f"need at least 2 frames to decompose, got --frames {frames}")
    if p.exists():
        raw = _probe_pixels(p, start, frames)
        if raw is not None and raw > 0.5 * _available_memory():
            raise DecomposeError(
                f"{path}: clip too large for memory ({raw / 2**30:.1f} GiB decoded); pick fewer frames with --frames"
            )
    try:
        video, fps = read_video(p, start=start, num_frames=frames)
    except VideoIOError as e:
        raise DecomposeError(str(e)) from None
    vid = decompose(video, size=size, steps=steps, fps=fps, progress=progress, **kwargs)
    vid.metadata.update({"source_path": str(path), "start": int(start)})
    return vid


def add_decompose_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``python -m gendef decompose`` (shared by the CLI and the tests)."""
    parser.add_argument("input", metavar="INPUT", help="video file (mp4, avi, mov, webm, gif) or folder of png/jpg frames")
    parser.add_argument("--out", required=True, help="output .npz (canonical image + grid)")
    parser.add_argument("--start", type=int, default=0, help="first frame of the clip (default 0)")
    parser.add_argument("--frames", type=int, default=None, help="number of frames (default: all from --start)")
    parser.add_argument("--size", type=int, default=256, help="long side of the working resolution (default 256)")
    parser.add_argument("--steps", type=int, default=None, help=f"optimisation steps (default {DEFAULT_STEPS}; fewer is faster)")
    parser.add_argument("--canvas-scale", type=int, default=2, help="canonical pixels per frame pixel (default 2)")
    parser.add_argument("--video", default=None, help="also write the reconstruction as .mp4/.gif")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run_decompose_command(args) -> int:
    """Run the ``decompose`` sub-command; raises DecomposeError (one line) on bad input."""
    out = Path(args.out)
    if out.suffix.lower() != ".npz":
        raise DecomposeError(f"--out must end in .npz, got {args.out}")
    if args.size is not None and args.size < 16:
        raise DecomposeError(f"--size must be at least 16, got {args.size}")
    if args.steps is not None and args.steps < 0:
        raise DecomposeError(f"--steps must be >= 0, got {args.steps}")
    bars = []
    progress = None
    if not getattr(args, "quiet", False):
        from tqdm import tqdm

        def progress(fraction: float, message: str) -> None:
            if not bars:  # created on first use, so bad input fails before any bar is drawn
                bars.append(tqdm(total=100, desc="decompose", bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"))
            bars[0].n = int(round(100 * min(max(fraction, 0.0), 1.0)))
            bars[0].set_postfix_str(message, refresh=False)
            bars[0].refresh()

    try:
        vid = decompose_file(
            args.input,
            start=args.start,
            frames=args.frames,
            size=args.size,
            steps=args.steps,
            progress=progress,
            canvas_scale=getattr(args, "canvas_scale", 2),
        )
    finally:
        for bar in bars:
            bar.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    path = vid.save(out)
    if getattr(args, "video", None):
        vid.to_video(args.video)
    h, w = vid.frame_size
    print(
        f"wrote {path}: {vid.num_frames} frames {w}x{h}, canonical {vid.canvas_size[1]}x{vid.canvas_size[0]}, "
        f"PSNR {vid.metadata['psnr']:.2f} dB in {vid.metadata['seconds']:.1f} s"
    )
    return 0


class _CallableModule(types.ModuleType):
    """``gendef.decompose(frames)`` must keep working after ``import gendef.decompose``.

    Importing the submodule rebinds the package attribute from the function to this
    module, so the module forwards calls to :func:`decompose`.
    """

    def __call__(self, *args, **kwargs):
        return decompose(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

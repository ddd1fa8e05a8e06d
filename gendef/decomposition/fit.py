"""Stage 3, the fit: coarse-to-fine Adam on (canonical, residual lattices) at working size.

``fit_working_size`` is the stage boundary: frames at working resolution in, a
``CanonicalVideo`` whose grid has the working frame size out. Later steps (a
full-size canonical from the source frames, metadata) build on its result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import cv2
import numpy as np
import torch

from ..video import CanonicalVideo
from . import losses
from .canvas import Canvas, plan_canvas, splat_canonical
from .field import ResidualField
from .inputs import resize_frames
from .motion import initial_motion

ProgressFn = Callable[[float, str], None]
CHUNK_PIXELS = 32 * 256 * 256


@dataclass(frozen=True)
class FitSettings:
    """Knobs of the fit (see ``decompose`` for their meaning)."""

    steps: int = 140
    canvas_scale: int = 2
    margin: int = 8
    stride: int = 4
    smooth_weight: float = 0.02
    reg_weight: float = 1.0
    canonical_weight: float = 0.2
    device: str = "cpu"


def _levels(h: int, w: int, steps: int) -> list:
    """[(factor, steps)]: half then full resolution (60/40) unless the frames are tiny."""
    if min(h, w) < 32:
        return [(1, steps)]
    return [(2, int(round(steps * 0.6))), (1, int(round(steps * 0.4)))]


def _learning_rates(it: int, n_steps: int, factor: int, first_level: bool, scale: float) -> tuple:
    """(canonical lr, lattice lr): cosine decay after a warm-up.

    Adam's first steps move every parameter by a full lr whatever the gradient, which
    would first undo a good closed-form start; the finer level starts from an already
    good canonical, so a smaller step keeps it.
    """
    frac = it / max(n_steps - 1, 1)
    decay = 0.5 * (1 + math.cos(math.pi * frac)) * min(1.0, (it + 1) / max(3.0, 0.15 * n_steps))
    lr_c = (0.002 + 0.018 * decay) * (1.0 if first_level else 0.3)
    return lr_c, scale * (0.005 + 0.095 * decay) * factor


def _start_canonical(prev, frames_l, grid, canvas_l: tuple, chunk: int):
    """Closed-form canonical at this level (splatted residual on the upsampled coarser one)."""
    with torch.no_grad():
        init = None
        if prev is not None:
            up = cv2.resize(prev.detach()[0].permute(1, 2, 0).cpu().numpy(), (canvas_l[1], canvas_l[0]), interpolation=cv2.INTER_LINEAR)
            init = torch.from_numpy(up).permute(2, 0, 1)[None].contiguous().to(frames_l.device)
        canonical = splat_canonical(frames_l, grid.permute(0, 2, 3, 1), canvas_l, chunk, init)
    return canonical.requires_grad_(True)


class Fit:
    """One decomposition in progress: frames, canvas, field, priors' fixed inputs."""

    def __init__(self, video: np.ndarray, settings: FitSettings, report: ProgressFn):
        self.video, self.settings, self.report = video, settings, report
        self.device = torch.device(settings.device)
        t_count, h, w, _ = video.shape
        report(0.0, "optical flow")
        motion = initial_motion(video, settings.stride)
        report(0.1, "motion initialised")
        self.ref = motion.ref
        self.canvas: Canvas = plan_canvas(motion.lo, motion.hi, (h, w), settings.margin, settings.canvas_scale)
        self.field = ResidualField(motion, (h, w), self.canvas, settings.stride, self.device)
        nh, nw = len(self.field.ctrl_y), len(self.field.ctrl_x)
        gray = np.stack([cv2.resize(f.mean(-1), (nw, nh), interpolation=cv2.INTER_AREA) for f in video])
        self.ex, self.ey = losses.edge_weights(torch.from_numpy(gray)[:, None].to(self.device))
        self.canonical = None
        self.done = 0

    def regularisers(self, canonical) -> torch.Tensor:
        st, s = self.settings, self.canvas.scale
        reg = st.canonical_weight * losses.canonical_curvature(canonical)
        reg = reg + st.smooth_weight * losses.lattice_smoothness(self.field.lattices[0]) / s
        if self.video.shape[0] >= 3 and st.reg_weight > 0:
            ctrl = self.field.control_grid() / s  # in frame pixels
            reg = reg + st.reg_weight * 0.01 * losses.temporal_regulariser(ctrl, self.ex, self.ey)
        return reg

    def fit_level(self, factor: int, n_steps: int, first_level: bool) -> None:
        """Adam at one level; updates ``self.canonical`` (this level's canvas) and the field."""
        t_count = self.video.shape[0]
        sampler = self.field.sampler(factor)
        hl, wl = sampler.hw
        frames_l = torch.from_numpy(resize_frames(self.video, (hl, wl))).permute(0, 3, 1, 2).contiguous().to(self.device)
        canvas_l = self.canvas.at_level(factor)
        chunk = max(1, CHUNK_PIXELS // (hl * wl))
        frames_stack = frames_l.permute(1, 0, 2, 3).reshape(1, 3, t_count * hl, wl)
        canonical = _start_canonical(self.canonical, frames_l, sampler.grid(), canvas_l, chunk)
        opt = torch.optim.Adam([{"params": [canonical]}, {"params": self.field.lattices}], betas=(0.9, 0.99))
        total = max(self.settings.steps, 1)
        for it in range(n_steps):
            lrs = _learning_rates(it, n_steps, factor, first_level, self.canvas.scale)
            for group, lr in zip(opt.param_groups, lrs):
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            grid = sampler.grid()
            sq_err, leaf = losses.photometric_backward(canonical, grid, frames_stack, canvas_l, chunk)
            torch.autograd.backward([grid, self.regularisers(canonical)], [leaf.grad, None])
            opt.step()
            with torch.no_grad():
                canonical.clamp_(0.0, 1.0)
            self.done += 1
            if it % 10 == 0 or it == n_steps - 1:
                level_psnr = 10 * math.log10(1.0 / max(sq_err / frames_l.numel(), 1e-10))
                self.report(0.1 + 0.85 * self.done / total, f"scale 1/{factor}: step {it + 1}/{n_steps}, PSNR {level_psnr:.2f} dB")
        self.canonical = canonical

    def result(self, fps: float) -> CanonicalVideo:
        with torch.no_grad():
            grid = self.field.sampler(1).grid().permute(0, 2, 3, 1).contiguous().cpu().numpy()
            canon = self.canonical.detach()[0].permute(1, 2, 0).cpu().numpy()
        return CanonicalVideo(
            canonical=np.clip(canon, 0.0, 1.0),
            grid=grid.astype(np.float32),
            fps=fps,
            metadata={"source": "decompose", "reference_frame": int(self.ref), "canvas_scale": int(self.settings.canvas_scale), "steps": int(self.settings.steps)},
        )


def fit_working_size(video: np.ndarray, settings: FitSettings, fps: float = 16.0, progress: Optional[ProgressFn] = None) -> CanonicalVideo:
    """Frames [T, H, W, 3] float in [0, 1] at working size -> CanonicalVideo (grid [T, H, W, 2])."""
    fit = Fit(video, settings, progress or (lambda f, m: None))
    levels = _levels(video.shape[1], video.shape[2], settings.steps)
    for i, (factor, n_steps) in enumerate(levels):
        fit.fit_level(factor, n_steps, first_level=(i == 0))
    return fit.result(fps)

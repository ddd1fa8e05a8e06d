"""Stage 3, the fit: coarse-to-fine Adam on (canonical, residual lattices) at working size.

``Fit`` and ``fit_levels`` fit one canvas, ``fit_layered`` up to ``settings.layers`` layers;
``layer_choice.fit_working_size`` (the stage boundary) picks between them and ``--layers auto``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import cv2
import numpy as np
import torch

from ..video.canonical_video import CanonicalVideo
from . import fit_losses
from .adam import adam
from .canvas import Canvas, plan_canvas, splat_canonical, stack_below
from .field import ResidualField
from .inputs import resize_frames
from .initial_motion import initial_motion, layer_motion
from .movers import fill_holes, mover_mask, split_movers

ProgressFn = Callable[[float, str], None]
CHUNK_PIXELS = 32 * 256 * 256


@dataclass(frozen=True)
class FitSettings:
    """Knobs of the fit (see ``decompose`` for their meaning)."""

    steps: int = 140
    canvas_scale: Optional[float] = None  # None: from the motion (auto_canvas_scale)
    margin: int = 8
    stride: int = 4
    smooth_weight: float = 0.02
    reg_weight: float = 1.0
    canonical_weight: float = 0.2
    device: str = "cpu"
    robust: float = 0.1  # colour error at which a pixel's weight halves (occluders, movers); 0 = off
    layers: int = 1  # most layers (1 = one smooth canvas; more = independent movers packed in the atlas)
    auto_layers: bool = False  # choose 1..layers from the clip, keeping one canvas unless layers beat it
    layered_robust: float = 0.1  # robust for auto's layered try (``robust`` is the single canvas's)
    gain_db: float = 0.5  # PSNR a layered fit must gain over one canvas to be kept (auto)


def auto_canvas_scale(hmats: np.ndarray, frame_hw: tuple, most: float = 2.0) -> float:
    """Canonical pixels per reference pixel so that no frame is sampled coarser than its
    own pixels: the largest local magnification of the frames relative to the reference
    (1 for pans and shakes, more when the camera zooms in), in quarter steps up to ``most``.

    A finer canvas than the frames need leaves canonical pixels that few samples pin
    down, and the fit fills them with a dotted (stipple) texture on real footage.
    """
    h, w = frame_hw
    p = np.array([(w - 1) / 2.0, (h - 1) / 2.0, 1.0])
    worst = 1.0
    for hm in hmats:
        q = hm @ p
        if abs(q[2]) < 1e-8:
            continue
        f = q[:2] / q[2]
        jac = (hm[:2, :2] - np.outer(f, hm[2, :2])) / q[2]
        smallest = np.linalg.svd(jac, compute_uv=False)[-1]
        if smallest > 1e-3:
            worst = max(worst, 1.0 / smallest)
    return float(min(most, math.ceil(worst * 4.0 - 0.2) / 4.0))


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
    """One decomposition in progress: frames, atlas canvas, one field per layer, labels.

    Layer 0 is the scene (camera motion + smooth residual); each further layer is an
    independently moving object with its own field and its own region of the atlas
    (packed under the scene's canvas), so one canonical image and one grid still
    describe the video. ``labels`` [T, H, W] says which layer each frame pixel shows.
    """

    def __init__(self, video: np.ndarray, settings: FitSettings, report: ProgressFn, flows: tuple = (), movers=None):
        self.video, self.settings, self.report = video, settings, report
        self.device = torch.device(settings.device)
        t_count, h, w, _ = video.shape
        report(0.0, "optical flow")
        motion = initial_motion(video, settings.stride, flows, movers, robust=settings.layers > 1)
        report(0.1, "motion initialised")
        self.ref, self.flows = motion.ref, motion.flows
        scale = settings.canvas_scale or auto_canvas_scale(motion.hmats, (h, w))
        self.canvas: Canvas = plan_canvas(motion.lo, motion.hi, (h, w), settings.margin, scale)
        self.fields = [ResidualField(motion, (h, w), self.canvas, settings.stride, self.device)]
        self.boxes = [(0, 0, self.canvas.width, self.canvas.height)]
        self.labels = None
        nh, nw = len(self.fields[0].ctrl_y), len(self.fields[0].ctrl_x)
        gray = np.stack([cv2.resize(f.mean(-1), (nw, nh), interpolation=cv2.INTER_AREA) for f in video])
        self.ex, self.ey = fit_losses.edge_weights(torch.from_numpy(gray)[:, None].to(self.device))
        self.canonical = None
        self.level_psnr = None  # PSNR of the last step of the last level fitted (at that level's size)
        self.history = []  # per finished level: (factor, [PSNR of each step at that level's size])
        self.done = 0
        self.total_steps = max(settings.steps, 1)

    # ---- the composite grid -------------------------------------------------------
    def _level_labels(self, hw: tuple):
        if self.labels is None:
            return None
        lab = self.labels if self.labels.shape[1:] == hw else np.stack([cv2.resize(m, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST) for m in self.labels])
        return torch.from_numpy(lab.astype(np.int64))[:, None].to(self.device)

    def level_grid(self, samplers, labels_l) -> torch.Tensor:
        """[T, 2, hl, wl]: each pixel's grid from the field of the layer it shows."""
        grid = samplers[0].grid()
        for k in range(1, len(samplers)):
            grid = torch.where(labels_l == k, samplers[k].grid(), grid)
        return grid

    def regularisers(self, canonical) -> torch.Tensor:
        st, s = self.settings, self.canvas.scale
        reg = st.canonical_weight * fit_losses.canonical_curvature(canonical)
        for field in self.fields:
            reg = reg + st.smooth_weight * fit_losses.lattice_smoothness(field.lattices[0]) / s
            if self.video.shape[0] >= 3 and st.reg_weight > 0:
                ctrl = field.control_grid() / s  # in frame pixels
                reg = reg + st.reg_weight * 0.01 * fit_losses.temporal_regulariser(ctrl, self.ex, self.ey)
        return reg

    # ---- stages ---------------------------------------------------------------------
    def fit_level(self, factor: int, n_steps: int, first_level: bool) -> None:
        """Adam at one level; updates ``self.canonical`` (this level's canvas) and the fields."""
        self.start_level(factor, n_steps, first_level).advance(n_steps).finish()

    def start_level(self, factor: int, n_steps: int, first_level: bool) -> "LevelRun":
        """A level's optimisation, to be run in parts (``LevelRun.advance``) and then ``finish``ed:
        the same steps, in the same order, as ``fit_level``."""
        return LevelRun(self, factor, n_steps, first_level)

    def errors(self, layer: int = None) -> np.ndarray:
        """Mean absolute colour error [T, H, W] of the current fit (of one layer's field if given).
        While only a coarser level is fitted, the error at that level, upsampled: the level's own
        canonical against the frames at its size, so what it cannot yet resolve is not an error."""
        factor = self.history[-1][0] if self.history else 1
        with torch.no_grad():
            samplers = [f.sampler(factor) for f in self.fields]
            hl, wl = samplers[0].hw
            if layer is None:
                grid = self.level_grid(samplers, self._level_labels((hl, wl)))
            else:
                grid = samplers[layer].grid()
            canon = self.canonical.detach()[0].permute(1, 2, 0).cpu().numpy()
            vid = CanonicalVideo(canonical=np.clip(canon, 0.0, 1.0), grid=grid.permute(0, 2, 3, 1).contiguous().cpu().numpy().astype(np.float32))
        if factor == 1:
            return np.abs(vid.frames() - self.video).mean(-1)
        err = np.abs(vid.frames() - resize_frames(self.video, (hl, wl))).mean(-1)
        h, w = self.video.shape[1:3]
        return np.stack([cv2.resize(e, (w, h), interpolation=cv2.INTER_LINEAR) for e in err])

    def add_layer(self, mask: np.ndarray) -> None:
        """A new independently moving layer showing the pixels ``mask`` [T, H, W] bool."""
        h, w = self.video.shape[1:3]
        motion = layer_motion(self.video, self.flows, mask, self.settings.stride)
        sprite = plan_canvas(motion.lo, motion.hi, (h, w), 4, self.canvas.scale, cover_frame=False)
        self.canvas, sprite = stack_below(self.canvas, sprite)
        self.fields.append(ResidualField(motion, (h, w), sprite, self.settings.stride, self.device))
        y0 = self.canvas.height - sprite.height
        self.boxes.append((0, y0, sprite.width, self.canvas.height))
        if self.labels is None:
            self.labels = np.zeros(mask.shape, np.uint8)
        self.labels[mask] = len(self.fields) - 1
        if self.canonical is None:
            return
        old = self.canonical.detach()
        grown = torch.zeros(1, 3, *self.canvas.hw, device=self.device)
        grown[..., : old.shape[2], : old.shape[3]] = old
        grown[..., y0:, :] = old.mean(dim=(2, 3), keepdim=True)
        self.canonical = grown

    def refine_labels(self) -> None:
        """Near each layer's edge, every pixel goes to the layer that explains it best."""
        k7 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
        errs = np.stack([self.errors(k) for k in range(len(self.fields))])
        errs = np.stack([[cv2.GaussianBlur(e, (0, 0), 1.0) for e in layer] for layer in errs])
        best = errs.argmin(0).astype(np.uint8)
        for t in range(len(self.labels)):
            band = cv2.dilate((self.labels[t] > 0).astype(np.uint8), k7) > 0
            lab = np.where(band, best[t], 0).astype(np.uint8)
            for k in range(1, len(self.fields)):
                m = fill_holes(cv2.morphologyEx((lab == k).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)))
                lab[m > 0] = k
                lab[(m == 0) & (lab == k)] = 0
            self.labels[t] = lab

    def _full_canonical(self) -> np.ndarray:
        """The canonical [Hc, Wc, 3] at full size (upsampled while only a coarser level is fitted)."""
        canon = self.canonical.detach()[0].permute(1, 2, 0).cpu().numpy()
        if canon.shape[:2] != self.canvas.hw:
            canon = cv2.resize(canon, (self.canvas.width, self.canvas.height), interpolation=cv2.INTER_LINEAR)
        return canon

    def _video(self, grid) -> CanonicalVideo:
        canon = self._full_canonical()
        return CanonicalVideo(canonical=np.clip(canon, 0.0, 1.0), grid=grid.permute(0, 2, 3, 1).contiguous().cpu().numpy().astype(np.float32))

    def result(self, fps: float) -> CanonicalVideo:
        with torch.no_grad():
            samplers = [f.sampler(1) for f in self.fields]
            vid = self._video(self.level_grid(samplers, self._level_labels(samplers[0].hw)))
        vid.fps = float(fps)
        vid.metadata = {
            "source": "decompose",
            "reference_frame": int(self.ref),
            "canvas_scale": float(self.canvas.scale),
            "steps": int(self.settings.steps),
            "layers": [list(map(int, b)) for b in self.boxes],
        }
        return vid


class LevelRun:
    """Adam at one level of a ``Fit``, resumable: ``advance(k)`` takes the next k of its
    ``n_steps`` steps (learning rates follow the whole level's schedule), ``finish`` hands the
    canonical to the fit. ``psnrs``: the PSNR of every step taken (at this level's size)."""

    def __init__(self, fit: Fit, factor: int, n_steps: int, first_level: bool):
        self.fit, self.factor, self.n_steps, self.first_level = fit, factor, n_steps, first_level
        t_count = fit.video.shape[0]
        self.samplers = [f.sampler(factor) for f in fit.fields]
        hl, wl = self.samplers[0].hw
        self.labels_l = fit._level_labels((hl, wl))
        frames_l = torch.from_numpy(resize_frames(fit.video, (hl, wl))).permute(0, 3, 1, 2).contiguous().to(fit.device)
        self.canvas_l = fit.canvas.at_level(factor)
        self.chunk = max(1, CHUNK_PIXELS // (hl * wl))
        self.frames_stack = frames_l.permute(1, 0, 2, 3).reshape(1, 3, t_count * hl, wl)
        self.numel = frames_l.numel()
        self.canonical = _start_canonical(fit.canonical, frames_l, fit.level_grid(self.samplers, self.labels_l), self.canvas_l, self.chunk)
        lattices = [lat for f in fit.fields for lat in f.lattices]
        self.opt = adam([{"params": [self.canonical]}, {"params": lattices}], (0.9, 0.99), fit.device)
        self.it, self.psnrs = 0, []

    def advance(self, k: int) -> "LevelRun":
        fit, opt = self.fit, self.opt
        for it in range(self.it, min(self.it + k, self.n_steps)):
            lrs = _learning_rates(it, self.n_steps, self.factor, self.first_level, fit.canvas.scale)
            for group, lr in zip(opt.param_groups, lrs):
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            grid = fit.level_grid(self.samplers, self.labels_l)
            sq_err, leaf = fit_losses.photometric_backward(self.canonical, grid, self.frames_stack, self.canvas_l, self.chunk, fit.settings.robust)
            torch.autograd.backward([grid, fit.regularisers(self.canonical)], [leaf.grad, None])
            opt.step()
            with torch.no_grad():
                self.canonical.clamp_(0.0, 1.0)
            fit.done += 1
            fit.level_psnr = 10 * math.log10(1.0 / max(sq_err / self.numel, 1e-10))
            self.psnrs.append(fit.level_psnr)
            if it % 10 == 0 or it == self.n_steps - 1:
                fit.report(0.1 + 0.85 * fit.done / fit.total_steps, f"scale 1/{self.factor}: step {it + 1}/{self.n_steps}, PSNR {fit.level_psnr:.2f} dB")
            self.it = it + 1
        return self

    def finish(self) -> None:
        self.fit.canonical = self.canonical
        self.fit.history.append((self.factor, self.psnrs))


def fit_layered(video: np.ndarray, settings: FitSettings, fps: float, report: ProgressFn, flows: tuple = ()) -> CanonicalVideo:
    """Up to ``settings.layers`` layers: a shorter robust one-canvas fit shows where one canvas
    fails; its movers get layers and the fit starts again (``flows``: already computed)."""
    fit = Fit(video, settings, report, flows=flows)
    fit.total_steps = settings.steps // 2 + settings.steps + settings.steps // 4
    fit_levels(fit, settings.steps // 2)
    mask = mover_mask(fit.errors())
    if mask.mean() < 0.002:  # one canvas explains the clip: finish its fit
        fit.fit_level(1, settings.steps - settings.steps // 2, first_level=False)
        return fit.result(fps)
    report(0.5, f"{mask.mean():.1%} of the pixels move on their own: a second layer")
    layered = Fit(video, settings, report, flows=fit.flows, movers=mask)
    for group in split_movers(mask, fit.flows, settings.layers - 1):
        layered.add_layer(group)
    layered.done, layered.total_steps = fit.done, fit.total_steps
    fit_levels(layered, settings.steps)
    layered.refine_labels()
    layered.fit_level(1, settings.steps // 4, first_level=False)
    return layered.result(fps)


def fit_levels(fit: "Fit", steps: int) -> "Fit":
    for i, (factor, n_steps) in enumerate(_levels(fit.video.shape[1], fit.video.shape[2], steps)):
        fit.fit_level(factor, n_steps, first_level=(i == 0))
    return fit

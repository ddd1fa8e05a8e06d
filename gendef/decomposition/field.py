"""The deformation being fitted: per-frame homography + residual on control lattices."""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from .canvas import Canvas
from .initial_motion import InitialMotion, apply_homographies


def coarse_shape(h: int, w: int, stride: int) -> tuple:
    return int(math.ceil((h - 1) / stride)) + 1, int(math.ceil((w - 1) / stride)) + 1


def level_positions(n_out: int, factor: int) -> np.ndarray:
    """Full-resolution coordinates of the pixel centres of a ``factor``-times smaller level."""
    return (np.arange(n_out, dtype=np.float64) + 0.5) * factor - 0.5


def interp_matrix(positions: np.ndarray, stride: int, n_ctrl: int) -> torch.Tensor:
    """Matrix [len(positions), n_ctrl] of the piecewise-linear interpolation of control points.

    Two small matrix products upsample the residual field; on a CPU this is several
    times faster than ``F.interpolate`` on permuted tensors and needs no cropping.
    """
    u = positions / stride
    i = np.clip(np.floor(u), 0, n_ctrl - 2).astype(np.int64)
    f = u - i
    m = np.zeros((len(positions), n_ctrl), np.float32)
    rows = np.arange(len(positions))
    m[rows, i] = 1.0 - f
    m[rows, i + 1] += f
    return torch.from_numpy(m)


class ResidualField:
    """grid = canvas scale * homography + offset + sum of residual control lattices.

    The residual is a sum of lattices every ``stride``, 4 and 16 strides (canvas
    pixels): Adam moves the coarse ones with gradients pooled over large areas, so
    flat regions follow their textured surroundings instead of keeping the flow's noise.
    The finest lattice starts from the flow's residual; all are trainable leaves.
    """

    def __init__(self, motion: InitialMotion, frame_hw: tuple, canvas: Canvas, stride: int, device="cpu"):
        h, w = frame_hw
        t_count = motion.hmats.shape[0]
        self.frame_hw, self.stride, self.canvas, self.device = (h, w), stride, canvas, torch.device(device)
        self.hmats = motion.hmats
        self.offset = torch.tensor(canvas.offset, dtype=torch.float32, device=self.device).view(1, 2, 1, 1)
        nh, nw = coarse_shape(h, w, stride)
        res0 = np.stack([cv2.resize(r.transpose(1, 2, 0), (nw, nh), interpolation=cv2.INTER_AREA) for r in motion.residual])
        strides = [stride * m for m in (1, 4, 16)]
        shapes = [coarse_shape(h, w, st) for st in strides]
        fine = torch.from_numpy((res0 * canvas.scale).astype(np.float32)).permute(0, 3, 1, 2).contiguous()
        self.lattices = [fine.to(self.device)] + [torch.zeros(t_count, 2, a, b, device=self.device) for a, b in shapes[1:]]
        for f in self.lattices:
            f.requires_grad_(True)
        self.ctrl_x = np.arange(nw, dtype=np.float64) * stride
        self.ctrl_y = np.arange(nh, dtype=np.float64) * stride
        self.ctrl_mats = [
            (interp_matrix(self.ctrl_y, st, a).to(self.device), interp_matrix(self.ctrl_x, st, b).to(self.device))
            for st, (a, b) in zip(strides, shapes)
        ]
        self.base_ctrl = self._base(self.ctrl_x, self.ctrl_y)

    def _base(self, xs: np.ndarray, ys: np.ndarray) -> torch.Tensor:
        """The homography part at frame positions xs x ys, in canvas pixels [T, 2, len(ys), len(xs)]."""
        base = torch.from_numpy(apply_homographies(self.hmats, xs, ys)).to(self.device)
        return base * self.canvas.scale + self.offset

    def lattice_sum(self) -> torch.Tensor:
        """All lattices on the finest one: exact, as coarse knots are a subset of fine knots."""
        total = self.lattices[0]
        for (my, mx), f in zip(self.ctrl_mats[1:], self.lattices[1:]):
            total = total + torch.matmul(torch.matmul(my, f), mx.t())
        return total

    def control_grid(self) -> torch.Tensor:
        """Grid at the finest control points, in canvas pixels [T, 2, nh, nw]."""
        return self.base_ctrl + self.lattice_sum()

    def sampler(self, factor: int) -> "LevelSampler":
        return LevelSampler(self, factor)


class LevelSampler:
    """Dense grid of a ``factor``-times smaller level of frames and canvas."""

    def __init__(self, field: ResidualField, factor: int):
        h, w = field.frame_hw
        self.field, self.factor = field, factor
        self.hw = (-(-h // factor), -(-w // factor))
        px, py = level_positions(self.hw[1], factor), level_positions(self.hw[0], factor)
        nh, nw = len(field.ctrl_y), len(field.ctrl_x)
        self.my = interp_matrix(py, field.stride, nh).to(field.device)
        self.mx = interp_matrix(px, field.stride, nw).to(field.device)
        self.base = field._base(px, py)

    def grid(self) -> torch.Tensor:
        """Channel-first grid [T, 2, hl, wl] in this level's canvas pixels."""
        full = self.base + torch.matmul(torch.matmul(self.my, self.field.lattice_sum()), self.mx.t())
        return (full + 0.5) / self.factor - 0.5

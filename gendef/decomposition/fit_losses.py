"""Stage 4, the losses of the fit (each a small function of the current tensors)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..video.grid import pixels_to_normalized


def photometric_backward(canonical, grid, frames_stack, canvas_hw: tuple, chunk: int, robust: float = 0.0) -> tuple:
    """Charbonnier loss of the rendered frames, back-propagated chunk by chunk.

    ``grid`` [T, 2, h, w] is the level's grid; the loss is evaluated against a detached
    copy so the field upsampling is back-propagated once per step, not once per chunk.
    Returns (sum of squared errors, the grid leaf whose .grad holds dLoss/dgrid).
    ``robust`` > 0 down-weights pixels whose colour error is far above it (Cauchy
    weights 1 / (1 + e^2 / robust^2)): what the model cannot explain (an occluder, a
    mover) then does not drag the canonical image.
    Frames are stacked vertically in ``frames_stack`` [1, 3, T*h, w]: one sampled image
    per chunk, so the canonical's gradient is accumulated in place.
    """
    t_count, _, h, w = grid.shape
    leaf = grid.detach().requires_grad_(True)
    npix = float(t_count * 3 * h * w)
    sq_err = 0.0
    for a in range(0, t_count, chunk):
        b = min(t_count, a + chunk)
        g = pixels_to_normalized(leaf[a:b].permute(0, 2, 3, 1), canvas_hw).reshape(1, (b - a) * h, w, 2)
        out = F.grid_sample(canonical, g, mode="bilinear", padding_mode="border", align_corners=True)
        with torch.no_grad():
            diff = out - frames_stack[:, :, a * h : b * h]
            sq = diff * diff
            sq_err += float(sq.sum())
            # d/dx of the Charbonnier penalty sqrt(x^2 + eps^2), written out: fewer passes over memory
            if robust > 0:
                weight = 1.0 / (1.0 + sq.mean(1, keepdim=True) / robust**2)
            diff /= sq.add_(1e-6).sqrt_().mul_(npix)
            if robust > 0:
                diff *= weight
        out.backward(diff)
    return sq_err, leaf


def canonical_curvature(canonical: torch.Tensor) -> torch.Tensor:
    """Faint curvature prior: bilinear samples near half-pixel phase barely see the canvas's
    finest (Nyquist) pattern, which the fit would otherwise fill with noise."""
    lap_y = canonical[..., 2:, :] - 2 * canonical[..., 1:-1, :] + canonical[..., :-2, :]
    lap_x = canonical[..., :, 2:] - 2 * canonical[..., :, 1:-1] + canonical[..., :, :-2]
    return lap_y.pow(2).mean() + lap_x.pow(2).mean()


def lattice_smoothness(fine: torch.Tensor) -> torch.Tensor:
    """First differences of the finest residual lattice plus a faint pull to zero."""
    return (
        (fine[..., 1:, :] - fine[..., :-1, :]).pow(2).mean()
        + (fine[..., :, 1:] - fine[..., :, :-1]).pow(2).mean()
        + 0.1 * fine.pow(2).mean()
    )


def edge_weights(gray_ctrl: torch.Tensor) -> tuple:
    """Edge-aware weights exp(-10 |grad I|) along x and y of frames at the control lattice."""
    ex = torch.exp(-10.0 * (gray_ctrl[..., :, 1:] - gray_ctrl[..., :, :-1]).abs())
    ey = torch.exp(-10.0 * (gray_ctrl[..., 1:, :] - gray_ctrl[..., :-1, :]).abs())
    return ex, ey


def temporal_regulariser(ctrl: torch.Tensor, ex: torch.Tensor, ey: torch.Tensor) -> torch.Tensor:
    """The paper's L_reg (eq. 4): edge-aware smoothness of the change of flow over t-1, t, t+1."""
    acc = ctrl[2:] - 2 * ctrl[1:-1] + ctrl[:-2]
    return ((acc[..., :, 1:] - acc[..., :, :-1]).abs() * ex[1:-1]).mean() + (
        (acc[..., 1:, :] - acc[..., :-1, :]).abs() * ey[1:-1]
    ).mean()

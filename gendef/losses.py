"""Training objectives: non-saturating GAN loss, R1, and the paper's L_reg (eq. 4)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["d_logistic", "g_nonsaturating", "r1_penalty", "flow_regularization", "flow_jerk"]


def d_logistic(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """E[-log D(v)] + E[-log(1 - D(v~))] with D = sigmoid(logits) (eq. 5)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)): the non-saturating generator loss (stronger early gradients)."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_inputs: torch.Tensor) -> torch.Tensor:
    """Mean squared gradient norm of D on reals; multiply by gamma/2 (and the lazy interval)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_inputs, create_graph=True)
    return grad.float().pow(2).reshape(grad.shape[0], -1).sum(1).mean()


def _edge_weights(image: Optional[torch.Tensor], alpha: float):
    if image is None:
        return 1.0, 1.0
    img = image.float()
    wx = torch.exp(-alpha * (img[..., :, 1:] - img[..., :, :-1]).abs().mean(1, keepdim=True))
    wy = torch.exp(-alpha * (img[..., 1:, :] - img[..., :-1, :]).abs().mean(1, keepdim=True))
    return wx, wy


def flow_regularization(
    grid_prev: torch.Tensor,
    grid_cur: torch.Tensor,
    grid_next: torch.Tensor,
    image: Optional[torch.Tensor] = None,
    edge_alpha: float = 10.0,
) -> torch.Tensor:
    """L_reg = Sim(F_{t-1->t}, F_{t->t+1}) as an edge-aware smoothness (eq. 4).

    grids: [B, H, W, 2] sampling positions of three adjacent frames (pixel units
    recommended so lambda_reg is resolution independent). The change of flow
    dF = F_{t->t+1} - F_{t-1->t} should vanish (constant-velocity motion is free);
    it is penalised by its magnitude and its spatial gradients, both down-weighted
    across edges of ``image`` ([B, 3, H, W], frame t) where motion boundaries live.
    """
    d = (grid_next - grid_cur) - (grid_cur - grid_prev)  # [B,H,W,2]
    d = d.float().permute(0, 3, 1, 2)  # [B,2,H,W]
    wx, wy = _edge_weights(image, edge_alpha)
    gx = (d[..., :, 1:] - d[..., :, :-1]).abs() * wx
    gy = (d[..., 1:, :] - d[..., :-1, :]).abs() * wy
    if image is not None:
        img = image.float()
        gm = (img[..., :, 1:] - img[..., :, :-1]).abs().mean(1, keepdim=True)
        w0 = torch.exp(-edge_alpha * F.pad(gm, (0, 1, 0, 0), mode="replicate"))
    else:
        w0 = 1.0
    return (d.abs() * w0).mean() + gx.mean() + gy.mean()


def flow_jerk(grid: torch.Tensor) -> torch.Tensor:
    """Mean |F_{t->t+1} - F_{t+1->t+2}| over a clip grid [B, T, H, W, 2] (an evaluation number)."""
    f = grid[:, 1:] - grid[:, :-1]
    return (f[:, 1:] - f[:, :-1]).norm(dim=-1).mean()

"""Training objectives: non-saturating GAN loss, R1, and the paper's L_reg (eq. 4).

L_reg has three forms (``REG_FORMS``), all fed normalised sampling grids
(``grid_norm``: [-1, 1], align_corners=True, i.e. m + dm_t) and frames in [-1, 1]:

- "official": the official GenDeF code's default (``near_frame_smooth_loss_type
  = 2to3_deform2img``): the constant-velocity prediction of the next grid,
  2 m_t - m_{t-1} = m_t + F_{t-1->t}, must be spatially smooth except across
  edges of frame t+1 (monodepth2's edge-aware smoothness, weights exp(-|dI|)).
  Normalised units: a per-pixel difference of a smooth field halves when the
  resolution doubles, exactly as in the official code.
- "flow_change" (the default): eq. 4 read literally: the same edge-aware
  smoothness applied to the change of flow F_{t->t+1} - F_{t-1->t} (same units).
  The identity grid cancels in it; in "official" it does not, and its slope
  2/(R-1) is a constant pull towards zooming in (measured: train/README.md, 10).
- "legacy": our first version (pixel units, edge alpha 10, plus |dF| itself,
  i.e. a constant-velocity prior): about 100x stronger at the same lambda.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["d_logistic", "g_nonsaturating", "r1_penalty", "flow_regularization", "edge_aware_smoothness", "flow_jerk", "REG_FORMS"]

REG_FORMS = ("official", "flow_change", "legacy")


def d_logistic(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """E[-log D(v)] + E[-log(1 - D(v~))] with D = sigmoid(logits) (eq. 5)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)): the non-saturating generator loss (stronger early gradients)."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_inputs: torch.Tensor) -> torch.Tensor:
    """Squared gradient norm of D on reals, per image; multiply by gamma/2 (and the lazy interval).

    Images [B, 3, H, W]: mean over the batch. Clips [B, K, 3, H, W]: the per-frame
    squared norms are averaged over the K frames, then over clips (StyleGAN-V /
    official GenDeF), so gamma means the same in stage 1 and stage 2.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_inputs, create_graph=True)
    g = grad.float().pow(2)
    per_image = g.flatten(2).sum(-1) if g.ndim == 5 else g.flatten(1).sum(1)  # [B, K] or [B]
    return per_image.mean()


def _edge_weights(image: Optional[torch.Tensor], alpha: float):
    if image is None:
        return 1.0, 1.0
    img = image.float()
    wx = torch.exp(-alpha * (img[..., :, 1:] - img[..., :, :-1]).abs().mean(1, keepdim=True))
    wy = torch.exp(-alpha * (img[..., 1:, :] - img[..., :-1, :]).abs().mean(1, keepdim=True))
    return wx, wy


def edge_aware_smoothness(field: torch.Tensor, image: Optional[torch.Tensor] = None, alpha: float = 1.0) -> torch.Tensor:
    """monodepth2's smoothness: mean |dx field| exp(-alpha |dx I|) + mean |dy field| exp(-alpha |dy I|).

    field [B, C, H, W]; image [B, 3, H, W] (channel-mean absolute gradients) or None (weights 1).
    """
    f = field.float()
    gx = (f[..., :, :-1] - f[..., :, 1:]).abs()
    gy = (f[..., :-1, :] - f[..., 1:, :]).abs()
    if image is not None:
        wx, wy = _edge_weights(image, alpha)
        gx, gy = gx * wx, gy * wy
    return gx.mean() + gy.mean()


def flow_regularization(
    grid_prev: torch.Tensor,
    grid_cur: torch.Tensor,
    grid_next: torch.Tensor,
    image: Optional[torch.Tensor] = None,
    form: str = "flow_change",
) -> torch.Tensor:
    """L_reg on the normalised grids [B, H, W, 2] of frames t-1, t, t+1 and frame t+1 [B, 3, H, W] in [-1, 1].

    See the module docstring for the forms; "official" ignores ``grid_next``
    except through ``image`` (as the official code does).
    """
    if form == "official":
        field = 2 * grid_cur - grid_prev
    elif form == "flow_change":
        field = (grid_next - grid_cur) - (grid_cur - grid_prev)
    elif form == "legacy":
        h, w = grid_cur.shape[1:3]
        scale = torch.tensor([(w - 1) / 2.0, (h - 1) / 2.0], device=grid_cur.device)
        px = [(g.float() + 1) * scale for g in (grid_prev, grid_cur, grid_next)]
        return _legacy_regularization(*px, image=None if image is None else (image.float() + 1) / 2)
    else:
        raise ValueError(f"L_reg form must be one of {REG_FORMS}, got {form!r}")
    return edge_aware_smoothness(field.float().permute(0, 3, 1, 2), image, alpha=1.0)


def _legacy_regularization(
    grid_prev: torch.Tensor,
    grid_cur: torch.Tensor,
    grid_next: torch.Tensor,
    image: Optional[torch.Tensor] = None,
    edge_alpha: float = 10.0,
) -> torch.Tensor:
    """Our first L_reg (form "legacy"): pixel-unit grids, image in [0, 1].

    grids: [B, H, W, 2] sampling positions of three adjacent frames. The change of flow
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

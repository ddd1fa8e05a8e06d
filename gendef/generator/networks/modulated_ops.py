"""Style-modulated (optionally deformable) convolution that keeps no modulated copy for backward.

``conv2d(x * s, weight)`` the plain way keeps ``x * s`` (a second full-size tensor next to
x) for the weight gradient. ``modulated_conv`` keeps x and the style s and recomputes the
product in backward. With offsets (MTM) it is a deformable convolution computed tap by
tap: bilinear sampling of the modulated input (``grid_sample``) followed by a 1x1
convolution per kernel tap, so no im2col buffer is held either; backward resamples.

Sampling positions are exact: the input is zero-padded to 2**k + 1 samples so that the
pixel -> normalised -> pixel round trip of ``grid_sample(align_corners=True)`` is a
power-of-two scaling, so integer positions (zero offsets) give exactly the value and
one-sided gradient of torchvision's ``deform_conv2d`` (the reference).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = ["modulated_conv"]


def _no_autocast(device: torch.device):
    return torch.autocast(device_type=device.type, enabled=False)


class _ModulatedConv(torch.autograd.Function):
    """conv2d(x * s, weight, padding), computed in x's dtype; differentiable backward."""

    @staticmethod
    def forward(ctx, x, s, weight, padding: int):
        ctx.padding = padding
        ctx.save_for_backward(x, s, weight)
        with _no_autocast(x.device):
            return F.conv2d(x * s.to(x.dtype)[:, :, None, None], weight.to(x.dtype), padding=padding)

    @staticmethod
    def backward(ctx, grad):
        x, s, weight = ctx.saved_tensors
        p, dt = ctx.padding, x.dtype
        with _no_autocast(x.device):
            grad, sd, wd = grad.to(dt), s.to(dt)[:, :, None, None], weight.to(dt)
            g_xs = torch.nn.grad.conv2d_input(x.shape, wd, grad, padding=p) if ctx.needs_input_grad[0] or ctx.needs_input_grad[1] else None
            g_w = torch.nn.grad.conv2d_weight(x * sd, wd.shape, grad, padding=p) if ctx.needs_input_grad[2] else None
            g_x = g_xs * sd if ctx.needs_input_grad[0] else None
            g_s = (g_xs * x).sum(dim=(2, 3)) if ctx.needs_input_grad[1] else None
        return g_x, g_s, g_w, None


def _pow2_plus_one(n: int) -> int:
    return 2 ** max(1, math.ceil(math.log2(max(n - 1, 1)))) + 1


def _tap_grid(offset: torch.Tensor, tap: int, i: int, j: int, padding: int, scale: float) -> torch.Tensor:
    """grid_sample grid [B, Ho, Wo, 2] (x, y) of kernel tap (i, j): output pixel + tap - padding + offset."""
    b, _, ho, wo = offset.shape
    ys = torch.arange(ho, device=offset.device, dtype=offset.dtype)[:, None] + (i - padding)
    xs = torch.arange(wo, device=offset.device, dtype=offset.dtype)[None, :] + (j - padding)
    gy = (ys + offset[:, 2 * tap]) * scale - 1
    gx = (xs + offset[:, 2 * tap + 1]) * scale - 1
    return torch.stack([gx, gy], dim=-1)


def _padded(xs: torch.Tensor):
    """Zero-pad H and W to 2**k + 1 so that grid coordinates are exact; returns it and its scale."""
    h, w = xs.shape[2], xs.shape[3]
    n = _pow2_plus_one(max(h, w))
    return F.pad(xs, [0, n - w, 0, n - h]), 2.0 / (n - 1)


class _DeformConv(torch.autograd.Function):
    """Deformable conv2d(x * s, weight, offset[, mask]), float32 inside (as torchvision's kernel), tap by tap.

    ``mask`` [B, k*k, Ho, Wo] (MTM's modulation mask, official GenDeF) scales each tap's samples.
    """

    @staticmethod
    def forward(ctx, x, s, weight, offset, mask, padding: int):
        ctx.padding = padding
        ctx.save_for_backward(x, s, weight, offset, mask)
        with _no_autocast(x.device), torch.no_grad():
            src, scale = _padded(x.float() * s.float()[:, :, None, None])
            wt, off = weight.float(), offset.float()
            kh, kw = wt.shape[2], wt.shape[3]
            out = None
            for tap in range(kh * kw):
                i, j = divmod(tap, kw)
                samp = F.grid_sample(src, _tap_grid(off, tap, i, j, padding, scale), mode="bilinear", padding_mode="zeros", align_corners=True)
                if mask is not None:
                    samp = samp * mask[:, tap : tap + 1].float()
                y = F.conv2d(samp, wt[:, :, i : i + 1, j : j + 1])
                out = y if out is None else out.add_(y)
        return out.to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, s, weight, offset, mask = ctx.saved_tensors
        p = ctx.padding
        with _no_autocast(x.device):
            xf, sf = x.float(), s.float()[:, :, None, None]
            src, scale = _padded(xf * sf)
            wt, off, g = weight.float(), offset.float(), grad.float()
            kh, kw = wt.shape[2], wt.shape[3]
            g_src, g_w, g_off = torch.zeros_like(src), torch.zeros_like(wt), torch.zeros_like(off)
            g_mask = torch.zeros_like(mask, dtype=torch.float32) if mask is not None else None
            for tap in range(kh * kw):
                i, j = divmod(tap, kw)
                grid = _tap_grid(off, tap, i, j, p, scale)
                samp = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
                g_samp = F.conv2d(g, wt[:, :, i, j].t()[:, :, None, None])
                if mask is not None:
                    m = mask[:, tap : tap + 1].float()
                    g_mask[:, tap] = (g_samp * samp).sum(1)
                    samp, g_samp = samp * m, g_samp * m
                g_w[:, :, i, j] = torch.einsum("bop,bcp->oc", g.flatten(2), samp.flatten(2))
                gi, gg = torch.ops.aten.grid_sampler_2d_backward(g_samp, src, grid, 0, 0, True, [True, True])
                g_src += gi
                g_off[:, 2 * tap] = gg[..., 1] * scale
                g_off[:, 2 * tap + 1] = gg[..., 0] * scale
            g_xs = g_src[:, :, : x.shape[2], : x.shape[3]]
            g_x = (g_xs * sf).to(x.dtype)
            g_s = (g_xs * xf).sum(dim=(2, 3)).to(s.dtype)
        g_m = g_mask.to(mask.dtype) if mask is not None else None
        return g_x, g_s, g_w.to(weight.dtype), g_off.to(offset.dtype), g_m, None


def modulated_conv(
    x: torch.Tensor, s: torch.Tensor, weight: torch.Tensor, padding: int,
    offset: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """conv2d(x * s[:, :, None, None], weight, padding) (deformable when offset is given, each tap
    scaled by ``mask`` [B, k*k, Ho, Wo] when given), keeping x, not x * s."""
    if offset is None:
        return _ModulatedConv.apply(x, s, weight, int(padding))
    return _DeformConv.apply(x, s, weight, offset, mask, int(padding))

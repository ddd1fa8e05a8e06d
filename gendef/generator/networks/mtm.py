"""Modulated transformation module (MTM, Yang et al. 2023; GenDeF §4.1 uses it in G_c and G_d).

A modulated convolution whose kernel taps are moved per sample and per pixel by
offsets that a small style-modulated conv predicts from the layer input, so the
latent code can bend geometry instead of only re-weighting channels. The offset
branch is zero-initialised: a fresh MTM layer is exactly the plain modulated
convolution, so switching MTM on never changes what a new model starts from.

With ``mask`` (official GenDeF, ``model.mtm_mask``) the branch also predicts one
modulation scalar per kernel tap, 2 * sigmoid(logit) in (0, 2): 3k^2 outputs instead
of 2k^2. Zero-initialised, the mask is 2 * sigmoid(0) = 1, so a fresh layer is still
the plain convolution.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import torch
import torch.nn as nn

from .layers import EqualLinear, ModulatedConv2d, resize_bilinear
from .modulated_ops import modulated_conv

__all__ = ["OffsetPredictor", "ModulatedDeformConv2d", "styled_conv_to_mtm", "in_mtm_range"]


class OffsetPredictor(nn.Module):
    """Style-modulated conv -> (dy, dx) for every kernel tap at every output pixel; zero at init."""

    def __init__(self, in_ch: int, kernel: int, style_dim: int, padding: int, mask: bool = False):
        super().__init__()
        self.kernel = kernel
        self.padding = padding
        self.mask = bool(mask)
        n = (3 if mask else 2) * kernel * kernel
        self.weight = nn.Parameter(torch.zeros(n, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(n))
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.affine = EqualLinear(style_dim, in_ch, bias_init=1.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor, input_gain: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Offsets from x * input_gain (a scalar the caller would otherwise multiply in first)."""
        s = self.affine(w)
        weight = (self.weight * self.scale).to(x.dtype)
        y = modulated_conv(x, s * input_gain if input_gain is not None else s, weight, self.padding)
        return y + self.bias.to(y.dtype)[None, :, None, None]

    def split(self, y: torch.Tensor):
        """forward's output -> (offsets [B, 2k^2, H, W], mask [B, k^2, H, W] = 2 sigmoid(.) or None)."""
        if not self.mask:
            return y, None
        n = 2 * self.kernel * self.kernel
        return y[:, :n], 2 * torch.sigmoid(y[:, n:])


class ModulatedDeformConv2d(ModulatedConv2d):
    """Drop-in for ``layers.ModulatedConv2d`` with MTM offsets (same weights, plus ``offset.*``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, style_dim: int, demodulate: bool = True, upsample: bool = False, mask: bool = False):
        super().__init__(in_ch, out_ch, kernel, style_dim, demodulate=demodulate, upsample=upsample)
        self.offset = OffsetPredictor(in_ch, kernel, style_dim, self.padding, mask=mask)

    @classmethod
    def from_plain(cls, conv: ModulatedConv2d, mask: bool = False) -> "ModulatedDeformConv2d":
        k = conv.weight.shape[-1]
        new = cls(conv.in_ch, conv.out_ch, k, conv.affine.weight.shape[1], demodulate=conv.demodulate, upsample=conv.upsample, mask=mask)
        new.load_state_dict(conv.state_dict(), strict=False)
        return new.to(conv.weight.device)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)
        weight = self.weight * self.scale
        if self.upsample:
            x = resize_bilinear(x, scale_factor=2.0)
        offset, mask = self.offset.split(self.offset(x, w))
        return self.demodulated(modulated_conv(x, s, weight.to(x.dtype), self.padding, offset, mask), s, weight)

    def demodulated(self, out: torch.Tensor, s: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.demodulate:
            d = torch.rsqrt((weight.pow(2).sum(dim=(2, 3))[None] * s.pow(2)[:, None, :]).sum(-1) + 1e-8)
            out = out * d.to(out.dtype)[:, :, None, None]
        return out


def in_mtm_range(resolution: int, mtm_resolutions: Optional[Sequence[int]]) -> bool:
    """mtm_resolutions = [min, max] (inclusive) picks the layers that get MTM; None = none."""
    if not mtm_resolutions:
        return False
    lo, hi = int(mtm_resolutions[0]), int(mtm_resolutions[1])
    return lo <= int(resolution) <= hi


def styled_conv_to_mtm(
    layers: Iterable[nn.Module], resolutions: Iterable[int], mtm_resolutions: Optional[Sequence[int]],
    mask: bool = False, skip_upsampling: bool = False,
) -> int:
    """Swap ``layer.conv`` (``StyledConv`` or ``ToOutput``) for its MTM version at the chosen
    resolutions (``skip_upsampling``: not on up-sampling convs, as official G_d); returns how many."""
    count = 0
    for layer, res in zip(layers, resolutions):
        if skip_upsampling and layer.conv.upsample:
            continue
        if in_mtm_range(res, mtm_resolutions) and type(layer.conv) is ModulatedConv2d:
            layer.conv = ModulatedDeformConv2d.from_plain(layer.conv, mask=mask)
            count += 1
    return count

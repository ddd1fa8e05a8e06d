"""G_d: the deformation field generator (paper §3.1, appendix A, Fig. A1/A2).

Per frame, a style from (z_d, u_t) drives StyleGAN-like synthesis blocks. At the
start of every synthesis layer the canonical feature f_c, resized, is concatenated
to the deformation feature, so the motion knows what it moves. Each block adds a
residual to the up-sampled field; the last block predicts (multiplier, adder)
with a zero-initialised ToOut, so a fresh G_d outputs exactly zero offsets and
every frame starts as the canonical image.

How u_t enters (``motion_input``): "const" (the paper's, StyleGAN-V's TemporalInput)
concatenates u_t to the learnt 4x4 input and styles every layer with w_d alone;
"style" (our first version, kept for the shipped default model) maps w_d ⊕ u_t
to a per-frame style for every layer.

MTM placement (``mtm_placement``): "all" (ours: every conv in ``mtm_resolutions``,
up-sampling ones included) or "official" (official GenDeF ``networks_stylegan_v.py``:
the convs that do not up-sample and every ToOut but the last, in ``mtm_resolutions``).

f_c injection (``feature_resize``): "pool" (ours: one 1x1 projection, then box-filter
down-sizing) or "bilinear" (official: bilinear resize, align_corners=False, and no
projection when f_c already has ``canonical_feature_dim`` channels; a per-pixel linear
projection commutes with a bilinear resize, so projecting once before resizing is the same).

Last-block initialisation (``init``, Table A1): "zero" (the paper's), "xavier"
(multiplier with a xavier-initialised ToOut), "none" ("w/o multi.": plain
StyleGAN-V ToOut, the field is the sum of every block's residual).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import GenDeFConfig
from .layers import EqualConv2d, EqualLinear, MappingNetwork, StyledConv, ToOutput, channels_for, resize_bilinear
from .mtm import styled_conv_to_mtm


class DeformationGenerator(nn.Module):
    """G_d from the model's settings (``config.deformation`` plus the shared resolution, z/w sizes and
    MTM); ``motion_dim`` and ``canonical_channels`` are the sizes of u_t and f_c its neighbours give."""

    def __init__(self, config: GenDeFConfig, motion_dim: int, canonical_channels: int):
        super().__init__()
        d = config.deformation
        resolution, w_dim = config.resolution, config.w_dim
        motion_input, init, feature_resize = d.motion_input, d.init, d.feature_resize
        use_canonical_feature = d.use_canonical_feature
        log2 = int(math.log2(resolution))
        self.resolution = resolution
        self.motion_input = motion_input
        self.init = init
        self.mapping = MappingNetwork(config.z_dim, w_dim, num_layers=d.mapping_layers)
        if motion_input == "style":
            self.frame_style = nn.Sequential(
                EqualLinear(w_dim + motion_dim, w_dim, activation=True),
                EqualLinear(w_dim, w_dim, activation=True),
            )
        self.use_canonical_feature = use_canonical_feature
        self.feature_resize = feature_resize
        fdim = d.feature_dim if use_canonical_feature else 0
        project = use_canonical_feature and not (feature_resize == "bilinear" and canonical_channels == fdim)
        self.feature_proj = EqualConv2d(canonical_channels, fdim, 1) if project else None
        ch = lambda r: channels_for(r, d.channel_base, d.channel_max)  # noqa: E731
        self.const = nn.Parameter(torch.randn(1, ch(4), 4, 4))
        in4 = ch(4) + (motion_dim if motion_input == "const" else 0)
        self.blocks = nn.ModuleList()
        self.to_outs = nn.ModuleList()
        self.blocks.append(nn.ModuleList([StyledConv(in4 + fdim, ch(4), w_dim, 4, use_noise=False)]))
        self.to_outs.append(ToOutput(ch(4), 2, w_dim))
        multiplier = init != "none"
        for i in range(3, log2 + 1):
            r = 2**i
            last = i == log2
            self.blocks.append(
                nn.ModuleList(
                    [
                        StyledConv(ch(r // 2) + fdim, ch(r), w_dim, r, upsample=True, use_noise=False),
                        StyledConv(ch(r) + fdim, ch(r), w_dim, r, use_noise=False),
                    ]
                )
            )
            self.to_outs.append(ToOutput(ch(r), 4 if last and multiplier else 2, w_dim))
        mtm_resolutions, mtm_mask = config.deformation_mtm_range, config.mtm_mask
        official = d.mtm_placement == "official"
        block_res = [4] + [2**i for i in range(3, log2 + 1)]
        for r, layers in zip(block_res, self.blocks):
            styled_conv_to_mtm(layers, [r] * len(layers), mtm_resolutions, mask=mtm_mask, skip_upsampling=official)
        if official:
            styled_conv_to_mtm(self.to_outs[:-1], block_res[:-1], mtm_resolutions, mask=mtm_mask)
        self.reset_output()

    @torch.no_grad()
    def reset_output(self) -> None:
        """(Re-)initialise the last ToOut as ``init`` says; "zero" makes every frame the canonical image."""
        last = self.to_outs[-1]
        last.bias.zero_()
        if self.init == "zero":
            last.conv.weight.zero_()
        elif self.init == "xavier":
            nn.init.xavier_uniform_(last.conv.weight, gain=1.0)
        else:
            last.conv.weight.normal_()

    def _with_feature(self, x: torch.Tensor, feat: Optional[torch.Tensor], frames: int) -> torch.Tensor:
        if feat is None:
            return x
        if feat.shape[-1] > x.shape[-1] and self.feature_resize == "pool":
            f = F.adaptive_avg_pool2d(feat, x.shape[-2:])  # box filter: alias-free, any dtype
        else:
            f = resize_bilinear(feat, size=x.shape[-2:])
        f = f.repeat_interleave(frames, dim=0).to(x.dtype)
        return torch.cat([x, f], dim=1)

    def _styles_and_input(self, wd: torch.Tensor, motion: torch.Tensor):
        """Per-frame styles [B*T, w] and the 4x4 input [B*T, C, 4, 4]."""
        b, t, m = motion.shape
        x = self.const.expand(b * t, -1, -1, -1).to(wd.dtype)
        if self.motion_input == "style":
            style_in = torch.cat([wd[:, None].expand(-1, t, -1), motion.to(wd.dtype)], dim=-1).reshape(b * t, -1)
            return self.frame_style(style_in), x
        u = motion.reshape(b * t, m, 1, 1).to(wd.dtype).expand(-1, -1, 4, 4)
        return wd.repeat_interleave(t, dim=0), torch.cat([x, u], dim=1)

    def forward(
        self,
        z_d: torch.Tensor,
        motion: torch.Tensor,
        canonical_feature: Optional[torch.Tensor],
        truncation_psi: float = 1.0,
    ) -> torch.Tensor:
        """z_d [B, z], motion u [B, T, m], f_c [B, C, h, w] -> offsets [B, T, 2, R, R] (normalised units)."""
        b, t, _ = motion.shape
        wd = self.mapping(z_d, truncation_psi)  # [B, w]
        w, x = self._styles_and_input(wd, motion)
        feat = None
        if self.use_canonical_feature and canonical_feature is not None:
            feat = self.feature_proj(canonical_feature) if self.feature_proj is not None else canonical_feature
        field = None
        n = len(self.blocks)
        for i, (layers, to_out) in enumerate(zip(self.blocks, self.to_outs)):
            for layer in layers:
                x = layer(self._with_feature(x, feat, t), w)
            out = to_out(x, w)
            if field is None:
                field = out
                continue
            up = resize_bilinear(field, scale_factor=2.0)
            if i == n - 1 and self.init != "none":
                multiplier, adder = out.split(2, dim=1)
                field = up * multiplier + adder
            else:
                field = up + out
        return field.reshape(b, t, 2, field.shape[-2], field.shape[-1])

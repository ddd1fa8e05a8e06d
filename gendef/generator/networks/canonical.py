"""G_c: the canonical image generator (StyleGAN2-style, skip ToRGB outputs).

Layers are counted like the paper's Table 3: every synthesis conv is one layer
and the RGB output is the last one, so a 256 px generator has 13 conv layers +
RGB = 14 and the default canonical feature f_c is layer 13 (penultimate).
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn as nn

from ..config import GenDeFConfig
from .layers import MappingNetwork, StyledConv, ToOutput, channels_for, resize_bilinear
from .mtm import styled_conv_to_mtm


class CanonicalGenerator(nn.Module):
    """G_c from the model's settings (``config.canonical`` plus the shared resolution, z/w sizes and MTM)."""

    def __init__(self, config: GenDeFConfig):
        super().__init__()
        c = config.canonical
        resolution, w_dim = config.resolution, config.w_dim
        log2 = int(math.log2(resolution))
        self.resolution = resolution
        self.z_dim = config.z_dim
        self.mapping = MappingNetwork(config.z_dim, w_dim, num_layers=c.mapping_layers)
        ch = lambda r: channels_for(r, c.channel_base, c.channel_max)  # noqa: E731
        self.const = nn.Parameter(torch.randn(1, ch(4), 4, 4))
        self.convs = nn.ModuleList([StyledConv(ch(4), ch(4), w_dim, 4)])
        self.conv_res: List[int] = [4]
        self.to_rgbs = nn.ModuleList([ToOutput(ch(4), 3, w_dim)])
        for i in range(3, log2 + 1):
            r = 2**i
            self.convs.append(StyledConv(ch(r // 2), ch(r), w_dim, r, upsample=True))
            self.convs.append(StyledConv(ch(r), ch(r), w_dim, r))
            self.conv_res += [r, r]
            self.to_rgbs.append(ToOutput(ch(r), 3, w_dim))
        styled_conv_to_mtm(self.convs, self.conv_res, config.canonical_mtm_range, mask=config.mtm_mask)
        self.num_layers = len(self.convs) + 1  # + RGB output
        feature_layer = c.feature_layer if c.feature_layer is not None else self.num_layers - 1
        if not 1 <= feature_layer <= self.num_layers:
            raise ValueError(f"canonical_feature_layer must be in 1..{self.num_layers}, got {feature_layer}")
        self.feature_layer = feature_layer
        self.feature_channels = 3 if feature_layer == self.num_layers else ch(self.conv_res[feature_layer - 1])
        self.feature_resolution = resolution if feature_layer == self.num_layers else self.conv_res[feature_layer - 1]

    def layer_shapes(self) -> List[tuple]:
        """(channels, resolution) of every selectable layer, 1-based order."""
        shapes = [(c.conv.out_ch, r) for c, r in zip(self.convs, self.conv_res)]
        return shapes + [(3, self.resolution)]

    def synthesis(self, w: torch.Tensor, noise_mode: str = "random", feature_layer: Optional[int] = None):
        """w [B, w_dim] -> (image [B,3,R,R] in about [-1, 1], feature of the chosen layer)."""
        layer = feature_layer or self.feature_layer
        x = self.const.expand(w.shape[0], -1, -1, -1).to(w.dtype)
        rgb = None
        feat = None
        for i, conv in enumerate(self.convs):
            x = conv(x, w, noise_mode)
            if i + 1 == layer:
                feat = x
            if i == 0 or i % 2 == 0:  # end of a resolution block
                y = self.to_rgbs[(i + 1) // 2](x, w)
                rgb = y if rgb is None else resize_bilinear(rgb, scale_factor=2.0) + y
        if feat is None:
            feat = rgb
        return rgb, feat

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "random"):
        w = self.mapping(z, truncation_psi)
        return self.synthesis(w, noise_mode)

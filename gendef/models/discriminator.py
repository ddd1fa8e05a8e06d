"""D: StyleGAN2 ResNet discriminator with an image mode and a video mode.

Video mode follows StyleGAN-V: the frames of one clip pass through the shared
early blocks separately, their features are fused at ``merge_resolution``, and
the logit is conditioned on the time differences between the frames
(projection conditioning). The fusion starts as the mean of the per-frame
features and the time projection starts at zero, so a stage-1 (image) D loaded
into video mode initially judges a clip like the average of its frames.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import EqualConv2d, EqualLinear, channels_for, lrelu


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = EqualConv2d(in_ch, in_ch, 3, padding=1)
        self.conv2 = EqualConv2d(in_ch, out_ch, 3, padding=1)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = lrelu(self.conv1(x))
        y = F.avg_pool2d(lrelu(self.conv2(y)), 2)
        s = self.skip(F.avg_pool2d(x, 2))
        return (y + s) / math.sqrt(2.0)


def minibatch_stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    n, c, h, w = x.shape
    g = min(group, n)
    while n % g:
        g -= 1
    y = x.float().reshape(g, -1, c, h, w)
    y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [n/g]
    y = y.repeat(g).reshape(n, 1, 1, 1).expand(n, 1, h, w).to(x.dtype)
    return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    def __init__(
        self,
        resolution: int = 64,
        channel_base: int = 8192,
        channel_max: int = 256,
        num_frames: int = 3,
        merge_resolution: Optional[int] = None,
        time_embed_dim: int = 64,
        mbstd_group: int = 4,
    ):
        super().__init__()
        log2 = int(math.log2(resolution))
        if 2**log2 != resolution or resolution < 8:
            raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
        ch = lambda r: channels_for(r, channel_base, channel_max)  # noqa: E731
        self.resolution = resolution
        self.num_frames = num_frames
        self.merge_resolution = merge_resolution or max(8, resolution // 4)
        self.mbstd_group = mbstd_group
        self.from_rgb = EqualConv2d(3, ch(resolution), 1)
        self.blocks = nn.ModuleList()
        self.block_res = []
        r = resolution
        while r > 4:
            self.blocks.append(ResBlock(ch(r), ch(r // 2)))
            self.block_res.append(r)
            r //= 2
        mc = ch(self.merge_resolution)
        self.merge = nn.Conv2d(mc * num_frames, mc, 1)
        with torch.no_grad():
            eye = torch.eye(mc)[:, :, None, None] / num_frames
            self.merge.weight.copy_(torch.cat([eye] * num_frames, dim=1))
            self.merge.bias.zero_()
        c4 = ch(4)
        self.final_conv = EqualConv2d(c4 + 1, c4, 3, padding=1)
        self.final_fc = EqualLinear(c4 * 16, c4, activation=True)
        self.out = EqualLinear(c4, 1)
        self.time_freqs = time_embed_dim // 2
        self.time_mlp = nn.Sequential(EqualLinear(time_embed_dim * (num_frames - 1) if num_frames > 1 else 1, c4, activation=True), EqualLinear(c4, c4))
        with torch.no_grad():
            self.time_mlp[-1].weight.zero_()

    def _time_embedding(self, times: torch.Tensor) -> torch.Tensor:
        dt = (times[:, 1:] - times[:, :-1]).float()  # [B, K-1]
        freqs = torch.exp(torch.linspace(0, math.log(256.0), self.time_freqs, device=dt.device))
        arg = dt[..., None] / freqs
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1).reshape(dt.shape[0], -1)

    def forward(self, x: torch.Tensor, times: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Image mode: x [B,3,H,W]. Video mode: x [B,K,3,H,W] with times [B,K]. Returns logits [B]."""
        video = x.ndim == 5
        if video:
            b, k = x.shape[:2]
            if k != self.num_frames:
                raise ValueError(f"video discriminator expects {self.num_frames} frames per clip, got {k}")
            if times is None:
                raise ValueError("video mode needs the frame times")
            x = x.reshape(b * k, *x.shape[2:])
        h = lrelu(self.from_rgb(x))
        for block, r in zip(self.blocks, self.block_res):
            if video and r == self.merge_resolution:
                h = self.merge(h.reshape(b, k * h.shape[1], h.shape[2], h.shape[3]).to(self.merge.weight.dtype)).to(h.dtype)
            h = block(h)
        if video and self.merge_resolution <= 4:
            raise ValueError("merge_resolution must be > 4")
        h = minibatch_stddev(h, self.mbstd_group)
        h = lrelu(self.final_conv(h))
        h = self.final_fc(h.flatten(1))
        logit = self.out(h).squeeze(1)
        if video:
            emb = self.time_mlp(self._time_embedding(times).to(h.dtype))
            logit = logit + (emb * h).sum(1) / math.sqrt(h.shape[1])
        return logit

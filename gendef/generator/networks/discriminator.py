"""D: StyleGAN2 ResNet discriminator with an image mode and a video mode.

Video mode follows StyleGAN-V as configured by the official GenDeF scripts:

- the K frames of a clip pass through the early blocks separately; in those
  blocks (resolution > ``merge_resolution``, i.e. 32 px and up by default) a
  temporal shift (TSM: 1/8 of the channels from the next frame, 1/8 from the
  previous one) lets frames see each other (``tsm``, official stage 2);
- at ``merge_resolution`` (16x16) the per-frame features are averaged over the
  clip (the official scripts' ``tmean=true``);
- the logit is conditioned on the time differences between the frames, by
  projection: each difference is embedded (a learnt table over integer gaps +
  fixed log-spaced sinusoids), mapped to ``cmap`` and
  logit = <out_video(h), cmap> / sqrt(dim).

Image mode (stage 1) uses the plain ``out`` head; the video-only parameters
(``time_embed``, ``time_mapping``, ``out_video``) are new in stage 2, everything
else loads from the stage-1 D unchanged.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...settings import as_config
from ..config import DiscriminatorConfig
from .layers import EqualConv2d, EqualLinear, PixelNorm, channels_for, lrelu

VIDEO_ONLY_PREFIXES = ("time_embed.", "time_mapping.", "out_video.")


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = EqualConv2d(in_ch, in_ch, 3, padding=1)
        self.conv2 = EqualConv2d(in_ch, out_ch, 3, padding=1)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor, frames: int = 1) -> torch.Tensor:
        """``frames`` > 1: x holds clips frame-major [B*K, C, H, W]; the residual branch sees TSM-shifted features."""
        s = self.skip(F.avg_pool2d(x, 2))
        y = temporal_shift(x, frames) if frames > 1 else x
        y = lrelu(self.conv1(y))
        y = F.avg_pool2d(lrelu(self.conv2(y)), 2)
        return (y + s) / math.sqrt(2.0)


def temporal_shift(x: torch.Tensor, frames: int, fold_div: int = 8) -> torch.Tensor:
    """TSM: channels [0, C/8) take the next frame's values, [C/8, C/4) the previous frame's (zeros at the ends)."""
    n, c, h, w = x.shape
    v = x.reshape(n // frames, frames, c, h, w)
    fold = c // fold_div
    out = torch.zeros_like(v)
    out[:, :-1, :fold] = v[:, 1:, :fold]
    out[:, 1:, fold : 2 * fold] = v[:, :-1, fold : 2 * fold]
    out[:, :, 2 * fold :] = v[:, :, 2 * fold :]
    return out.reshape(n, c, h, w)


def minibatch_stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    n, c, h, w = x.shape
    g = min(group, n)
    while n % g:
        g -= 1
    y = x.float().reshape(g, -1, c, h, w)
    y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [n/g]
    y = y.repeat(g).reshape(n, 1, 1, 1).expand(n, 1, h, w).to(x.dtype)
    return torch.cat([x, y], dim=1)


class TimeDifferenceEmbedding(nn.Module):
    """StyleGAN-V's encoding of the K-1 gaps of a clip: a learnt vector per integer gap
    (rounded, up to ``max_gap``) and sinusoids at periods 2, 4, ..., 2 * 2^ceil(log2 max_gap)."""

    def __init__(self, num_frames: int, max_gap: int = 1024, dim: int = 256):
        super().__init__()
        self.max_gap = int(max_gap)
        self.table = nn.Embedding(self.max_gap, dim)
        res = 2 ** math.ceil(math.log2(self.max_gap))
        n = int(math.ceil(math.log2(res)))
        self.register_buffer("coefs", math.pi * 2.0 ** torch.arange(n, dtype=torch.float32) / res)
        self.out_dim = (dim + 2 * n) * max(num_frames - 1, 1)

    def forward(self, times: torch.Tensor) -> torch.Tensor:
        dt = (times[:, 1:] - times[:, :-1]).float()  # [B, K-1]
        idx = dt.round().long().clamp(0, self.max_gap - 1)
        arg = dt.unsqueeze(-1) * self.coefs
        emb = torch.cat([self.table(idx), torch.sin(arg), torch.cos(arg)], dim=-1)
        return emb.reshape(times.shape[0], -1)


class Discriminator(nn.Module):
    def __init__(self, *args, **kwargs):
        """One :class:`DiscriminatorConfig` (or its fields given loose, e.g. ``Discriminator(**disc_section)``)."""
        super().__init__()
        c = as_config(DiscriminatorConfig, args, kwargs)
        self.config = c
        resolution, merge_resolution, num_frames = c.resolution, c.merge_resolution, c.num_frames
        log2 = int(math.log2(resolution))
        ch = lambda r: channels_for(r, c.channel_base, c.channel_max)  # noqa: E731
        self.resolution = resolution
        self.num_frames = num_frames
        self.merge_resolution = min(merge_resolution or 16, resolution)
        if self.merge_resolution <= 4 or 2 ** int(math.log2(self.merge_resolution)) != self.merge_resolution:
            raise ValueError(f"merge_resolution must be a power of two > 4, got {merge_resolution}")
        self.tsm = bool(c.tsm)
        self.mbstd_group = c.mbstd_group
        self.from_rgb = EqualConv2d(3, ch(resolution), 1)
        self.blocks = nn.ModuleList()
        self.block_res = []
        r = resolution
        while r > 4:
            self.blocks.append(ResBlock(ch(r), ch(r // 2)))
            self.block_res.append(r)
            r //= 2
        c4 = ch(4)
        self.final_conv = EqualConv2d(c4 + 1, c4, 3, padding=1)
        self.final_fc = EqualLinear(c4 * 16, c4, activation=True)
        self.out = EqualLinear(c4, 1)
        # video mode: projection conditioning on the time differences
        self.time_embed = TimeDifferenceEmbedding(num_frames, c.max_time_gap, c.time_embed_dim)
        mapping = [EqualLinear(self.time_embed.out_dim, c4), PixelNorm()]
        mapping += [EqualLinear(c4, c4, lr_mul=0.01, activation=True) for _ in range(c.time_mapping_layers)]
        self.time_mapping = nn.Sequential(*mapping)
        self.out_video = EqualLinear(c4, c4)

    def _features(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Blocks and epilogue; k = frames per clip (1 in image mode) -> features [B, c4]."""
        h = lrelu(self.from_rgb(x))
        for block, r in zip(self.blocks, self.block_res):
            if k > 1 and r == self.merge_resolution:
                h = h.reshape(-1, k, *h.shape[1:]).mean(1)
                k = 1
            h = block(h, k if self.tsm else 1)
        h = minibatch_stddev(h, self.mbstd_group)
        h = lrelu(self.final_conv(h))
        return self.final_fc(h.flatten(1))

    def forward(self, x: torch.Tensor, times: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Image mode: x [B,3,H,W]. Video mode: x [B,K,3,H,W] with times [B,K]. Returns logits [B]."""
        if x.ndim == 4:
            return self.out(self._features(x, 1)).squeeze(1)
        b, k = x.shape[:2]
        if k != self.num_frames:
            raise ValueError(f"video discriminator expects {self.num_frames} frames per clip, got {k}")
        if times is None or tuple(times.shape) != (b, k):
            raise ValueError(f"video mode needs the frame times [{b}, {k}]")
        h = self._features(x.reshape(b * k, *x.shape[2:]), k)
        cmap = self.time_mapping(self.time_embed(times.to(x.device)).to(h.dtype))
        return (self.out_video(h) * cmap).sum(1) / math.sqrt(h.shape[1])

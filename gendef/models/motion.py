"""StyleGAN-V motion codes u_t at continuous times.

Equidistant noise anchors are mapped by a light network, interpolated to any
time t, and turned into an acyclic positional encoding: sinusoids whose phases
and amplitudes are driven by the interpolated codes, so the signal never
repeats and any frame count or time step can be sampled.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .layers import EqualLinear


class MotionEncoder(nn.Module):
    def __init__(
        self,
        noise_dim: int = 64,
        code_dim: int = 64,
        anchor_spacing: float = 16.0,
        num_freqs: int = 16,
        min_period: float = 16.0,
        max_period: float = 1024.0,
        layers: int = 2,
    ):
        super().__init__()
        self.noise_dim = noise_dim
        self.anchor_spacing = float(anchor_spacing)
        mlp = []
        dim = noise_dim
        for _ in range(layers):
            mlp.append(EqualLinear(dim, code_dim, activation=True))
            dim = code_dim
        self.mapping = nn.Sequential(*mlp)
        periods = torch.logspace(math.log10(min_period), math.log10(max_period), num_freqs)
        self.register_buffer("omega", 2 * math.pi / periods)
        self.to_phase = EqualLinear(code_dim, num_freqs)
        self.to_amp = EqualLinear(code_dim, num_freqs, bias_init=1.0)
        self.out_dim = code_dim + 2 * num_freqs

    def num_anchors(self, max_time: float) -> int:
        return int(math.floor(max(float(max_time), 0.0) / self.anchor_spacing)) + 2

    def make_noise(self, batch: int, max_time: float, generator=None, device=None) -> torch.Tensor:
        """Anchor noise covering times [0, max_time]; a longer clip extends the same prefix."""
        k = self.num_anchors(max_time)
        return torch.randn(batch, k, self.noise_dim, generator=generator).to(device or "cpu")

    def forward(self, noise: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """noise [B, K, noise_dim], times [B, T] (frame units) -> u [B, T, out_dim]."""
        b, k, _ = noise.shape
        codes = self.mapping(noise)  # [B, K, D]
        pos = times.to(codes.dtype) / self.anchor_spacing
        left = pos.floor().clamp(0, k - 2).long()
        frac = (pos - left.to(pos.dtype)).unsqueeze(-1)
        idx = left.unsqueeze(-1).expand(-1, -1, codes.shape[-1])
        c0 = torch.gather(codes, 1, idx)
        c1 = torch.gather(codes, 1, idx + 1)
        h = torch.lerp(c0, c1, frac)
        phase = self.to_phase(h)
        amp = self.to_amp(h)
        arg = times.to(codes.dtype).unsqueeze(-1) * self.omega.to(codes.dtype) + phase
        return torch.cat([h, amp * torch.sin(arg), amp * torch.cos(arg)], dim=-1)

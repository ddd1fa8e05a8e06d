"""Motion codes u_t at continuous times (paper §3.1: "we follow StyleGAN-V").

Two variants, chosen by ``GenDeF(motion_mapping=...)``:

- ``StyleGANVMotion`` ("stylegan_v", the paper's): equidistant noise anchors are
  mixed by a two-layer temporal conv1d (no padding, so a longer clip extends the
  same prefix), the two anchors around t are linearly interpolated, and an
  *aligned acyclic positional encoding* is built from them: sinusoids whose
  periods and phases are modulated by the left anchor's code, with the
  encoding's value at the two anchor times replaced by learnt "aligners". The
  result is continuous in t (also at anchor times) and never repeats.
- ``MotionEncoder`` ("mlp", our first version, kept because the shipped
  default checkpoint was trained with it): anchors mapped one by one by an MLP,
  interpolated, plus amplitude/phase-modulated sinusoids.

Both take noise from ``make_noise(batch, max_time)`` and return u [B, T, out_dim].
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...settings import as_config
from ..config import MotionConfig
from .layers import EqualLinear

__all__ = ["MotionEncoder", "StyleGANVMotion", "EqualConv1d", "build_motion"]


def _anchor_index(times: torch.Tensor, spacing: float, num_anchors: int):
    """Left anchor index and interpolation weight for each time; times must be covered by the anchors."""
    pos = times / spacing
    left = pos.floor()
    if times.numel() and (float(left.max()) > num_anchors - 2 or float(times.min()) < 0):
        raise ValueError(
            f"motion noise covers times [0, {(num_anchors - 1) * spacing:g}), got up to {float(times.max()):g}; "
            "draw it with make_noise(batch, max_time)"
        )
    return left.long(), (pos - left).unsqueeze(-1)


def _gather(codes: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return torch.gather(codes, 1, idx.unsqueeze(-1).expand(-1, -1, codes.shape[-1]))


class MotionEncoder(nn.Module):
    """Legacy motion code ("mlp"): per-anchor MLP, no temporal conv, no aligners."""

    layers = 2  # MLP layers per anchor

    def __init__(self, *args, **kwargs):
        """One :class:`MotionConfig` (or its fields given loose)."""
        super().__init__()
        c = as_config(MotionConfig, args, kwargs)
        noise_dim, code_dim, num_freqs = c.noise_dim, c.code_dim, c.num_freqs
        self.noise_dim = noise_dim
        self.anchor_spacing = float(c.anchor_spacing)
        mlp = []
        dim = noise_dim
        for _ in range(self.layers):
            mlp.append(EqualLinear(dim, code_dim, activation=True))
            dim = code_dim
        self.mapping = nn.Sequential(*mlp)
        periods = torch.logspace(math.log10(c.min_period), math.log10(c.max_period), num_freqs)
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
        h = torch.lerp(_gather(codes, left), _gather(codes, left + 1), frac)
        phase = self.to_phase(h)
        amp = self.to_amp(h)
        arg = times.to(codes.dtype).unsqueeze(-1) * self.omega.to(codes.dtype) + phase
        return torch.cat([h, amp * torch.sin(arg), amp * torch.cos(arg)], dim=-1)


class EqualConv1d(nn.Module):
    """Temporal conv1d with equalised learning rate (StyleGAN-V uses lr multiplier 0.01 here)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.scale = lr_mul / math.sqrt(in_ch * kernel)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv1d(x, (self.weight * self.scale).to(x.dtype), (self.bias * self.lr_mul).to(x.dtype))
        return F.leaky_relu(y, 0.2) if self.activation else y


def _periods(num_freqs: int, min_period: float, max_period: float) -> torch.Tensor:
    """Periods geometrically spaced from max to min (StyleGAN-V's "linspaced" frequencies in log2)."""
    exps = torch.linspace(math.log2(min_period), math.log2(max_period), num_freqs, dtype=torch.float64)
    return (2.0**exps).flip(0)


class StyleGANVMotion(nn.Module):
    """StyleGAN-V's motion mapping network + aligned acyclic time encoder ("stylegan_v").

    u(t) = PE(t) - lerp(PE(t_l), PE(t_r), a) + lerp(A(c_l), A(c_r), a), with
    PE(x) = [sin, cos](omega * p(c_l) * x + phi(c_l) * s), p = tanh(.) + 1 the period
    modulation, phi the phase, s = max_period / period, A the aligners, c the
    conv1d-mixed anchor codes, t_l <= t < t_r the anchor times and a the position
    between them. At t = t_l the encoding equals A(c_l) from both sides: continuous.
    """

    def __init__(self, *args, **kwargs):
        """One :class:`MotionConfig` (or its fields given loose)."""
        super().__init__()
        c = as_config(MotionConfig, args, kwargs)
        noise_dim, code_dim, num_freqs, kernel_size = c.noise_dim, c.code_dim, c.num_freqs, c.kernel_size
        self.noise_dim = noise_dim
        self.anchor_spacing = float(c.anchor_spacing)
        self.extra = 2 * (kernel_size - 1)  # two unpadded convs eat (k - 1) positions each
        self.conv = nn.Sequential(
            EqualConv1d(noise_dim, noise_dim, kernel_size, lr_mul=0.01, activation=True),
            EqualConv1d(noise_dim, code_dim, kernel_size, lr_mul=0.01, activation=True),
        )
        periods = _periods(num_freqs, c.min_period, c.max_period)
        self.register_buffer("omega", (2 * math.pi / periods).float())
        self.register_buffer("phase_scale", (float(c.max_period) / periods).float())
        # No biases: a bias would give every video the same motion (StyleGAN-V, "motion mode collapse").
        self.to_period = EqualLinear(code_dim, num_freqs, bias=False)
        self.to_phase = EqualLinear(code_dim, num_freqs, bias=False)
        self.to_aligner = EqualLinear(code_dim, 2 * num_freqs, bias=False)
        self.out_dim = 2 * num_freqs

    def num_anchors(self, max_time: float) -> int:
        return int(math.floor(max(float(max_time), 0.0) / self.anchor_spacing)) + 2

    def make_noise(self, batch: int, max_time: float, generator=None, device=None) -> torch.Tensor:
        """Noise for the anchors covering [0, max_time] plus the conv's receptive field; prefix-stable."""
        k = self.num_anchors(max_time) + self.extra
        # One draw per anchor, in time order: a longer clip's noise starts with the shorter one's
        # (one big randn is not prefix-stable: its vectorised sampler revisits the last block).
        rows = [torch.randn(batch, self.noise_dim, generator=generator) for _ in range(k)]
        return torch.stack(rows, dim=1).to(device or "cpu")

    def anchor_codes(self, noise: torch.Tensor) -> torch.Tensor:
        """noise [B, K + extra, noise_dim] -> anchor codes [B, K, code_dim]."""
        return self.conv(noise.transpose(1, 2)).transpose(1, 2)

    def _encode(self, x: torch.Tensor, period: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        arg = self.omega * period * x.unsqueeze(-1) + phase * self.phase_scale
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)

    def forward(self, noise: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """noise [B, K + extra, noise_dim], times [B, T] (frame units, fractional allowed) -> u [B, T, 2F].

        Always computed in float32 (phases of t up to 1024 need it; the network is tiny)."""
        with torch.autocast(device_type=noise.device.type, enabled=False):
            return self._forward(noise.float(), times.float())

    def _forward(self, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        codes = self.anchor_codes(noise)
        left, a = _anchor_index(t, self.anchor_spacing, codes.shape[1])
        c_l, c_r = _gather(codes, left), _gather(codes, left + 1)
        period = torch.tanh(self.to_period(c_l)) + 1.0
        phase = self.to_phase(c_l)
        t_l = left.float() * self.anchor_spacing
        remove = torch.lerp(self._encode(t_l, period, phase), self._encode(t_l + self.anchor_spacing, period, phase), a)
        add = torch.lerp(self.to_aligner(c_l), self.to_aligner(c_r), a)
        return self._encode(t, period, phase) - remove + add


def build_motion(config: MotionConfig) -> nn.Module:
    """The motion mapping ``config.mapping`` names (GenDeF's ``motion_mapping`` key)."""
    return {"mlp": MotionEncoder, "stylegan_v": StyleGANVMotion}[config.mapping](config)

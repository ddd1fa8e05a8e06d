"""StyleGAN2-style building blocks in plain PyTorch (no custom CUDA ops).

Equalised learning rate keeps every layer's effective step size the same under
Adam, which is what lets one lr (0.0025 in the paper) train the whole model.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def resize_bilinear(x: torch.Tensor, size=None, scale_factor=None) -> torch.Tensor:
    """``F.interpolate(..., mode="bilinear", align_corners=False)``, faster on the CPU.

    PyTorch's CPU kernel for a contiguous [N, C, H, W] tensor is 3-6x slower than its channels-last
    kernel (1.5-1.8x with the backward; README "CPU ladder"), so a CPU input goes through channels-last
    and comes back contiguous. The numbers are the same up to float rounding: bit-identical on most
    shapes, at most 1 ulp apart on some (tests/test_layers_resize.py)."""
    cpu_nchw = x.device.type == "cpu" and x.ndim == 4 and x.is_contiguous() and x.shape[1] > 1
    y = F.interpolate(x.contiguous(memory_format=torch.channels_last) if cpu_nchw else x,
                      size=size, scale_factor=scale_factor, mode="bilinear", align_corners=False)
    return y.contiguous() if cpu_nchw else y


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU with StyleGAN's gain so activations keep unit variance."""
    return F.leaky_relu(x, 0.2) * SQRT2


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0, lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.scale
        b = self.bias * self.lr_mul if self.bias is not None else None
        out = F.linear(x, w.to(x.dtype), b.to(x.dtype) if b is not None else None)
        return lrelu(out) if self.activation else out


class EqualConv2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = (self.weight * self.scale).to(x.dtype)
        b = self.bias.to(x.dtype) if self.bias is not None else None
        return F.conv2d(x, w, b, padding=self.padding)


class MappingNetwork(nn.Module):
    """z -> w, with a running average of w for the truncation trick."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int = 8, lr_mul: float = 0.01):
        super().__init__()
        layers = [PixelNorm()]
        dim = z_dim
        for _ in range(num_layers):
            layers.append(EqualLinear(dim, w_dim, lr_mul=lr_mul, activation=True))
            dim = w_dim
        self.net = nn.Sequential(*layers)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        w = self.net(z)
        if truncation_psi != 1.0:
            w = self.w_avg.to(w.dtype) + truncation_psi * (w - self.w_avg.to(w.dtype))
        return w


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution; demodulation normalises per output channel.

    Modulation is applied to activations rather than to a per-sample weight, so a
    single ordinary conv2d serves the whole batch (fast on CPU, fine under autocast).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, style_dim: int, demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.affine = EqualLinear(style_dim, in_ch, bias_init=1.0)
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel // 2
        self.in_ch, self.out_ch = in_ch, out_ch

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)  # [N, in]
        weight = self.weight * self.scale
        if self.upsample:
            x = resize_bilinear(x, scale_factor=2.0)
        x = x * s.to(x.dtype)[:, :, None, None]
        out = F.conv2d(x, weight.to(x.dtype), padding=self.padding)
        if self.demodulate:
            d = torch.rsqrt((weight.pow(2).sum(dim=(2, 3))[None] * s.pow(2)[:, None, :]).sum(-1) + 1e-8)  # [N, out]
            out = out * d.to(out.dtype)[:, :, None, None]
        return out


class NoiseInjection(nn.Module):
    """Per-pixel noise with a learned strength; 'const' mode uses a stored map so sampling is deterministic."""

    def __init__(self, resolution: int):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("const_noise", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "const":
            noise = self.const_noise.to(x.dtype)
        else:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        return x + self.strength.to(x.dtype) * noise


class StyledConv(nn.Module):
    """Modulated conv + (optional) noise + bias + activation: one 'synthesis layer'."""

    def __init__(self, in_ch: int, out_ch: int, style_dim: int, resolution: int, upsample: bool = False, use_noise: bool = True, kernel: int = 3):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel, style_dim, upsample=upsample)
        self.noise = NoiseInjection(resolution) if use_noise else None
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = self.conv(x, w)
        if self.noise is not None:
            x = self.noise(x, noise_mode)
        return lrelu(x + self.bias.to(x.dtype)[None, :, None, None])


class ToOutput(nn.Module):
    """1x1 modulated conv without demodulation (StyleGAN2's ToRGB, any channel count).

    Without demodulation a zero weight is allowed, which the deformation
    generator's last block needs for its zero initialisation (appendix A).
    """

    def __init__(self, in_ch: int, out_ch: int, style_dim: int, zero_init: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        if zero_init:
            with torch.no_grad():
                self.conv.weight.zero_()

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.to(x.dtype)[None, :, None, None]


def channels_for(resolution: int, channel_base: int, channel_max: int) -> int:
    """StyleGAN's channel schedule: fewer channels at higher resolutions."""
    return max(1, min(channel_base // resolution, channel_max))

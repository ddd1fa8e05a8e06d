"""G_c with StyleGAN3's alias-free synthesis network (StyleGAN3-T), pure PyTorch.

GenDeF §4.1 builds the canonical generator on StyleGAN3: its content is tied to
continuous image coordinates instead of pixel positions, so a canonical image
has no texture "stuck" to the pixel grid, which is what a warped canonical
image needs. The network starts from Fourier features; every non-linearity
runs at twice the sampling rate between a Kaiser-windowed sinc upsampling and
downsampling filter; cutoffs grow geometrically and the last layers are
critically sampled.

Layer numbering follows the official code and the paper's Table 3: synthesis
layers L0..L{n-1} and L{n} = ToRGB, with n = 14 at 256 px (n = 2*log2(R) - 2 in
general, the same count as the StyleGAN2 backbone). ``feature_layer`` k in
1..n picks L_k; the default n-1 is the last conv layer (the paper's layer 13).
Features of layers that carry a margin are cropped to the image extent.

Deliberate differences from the official code: one w for all layers (as the
StyleGAN2 backbone here), style normalisation per sample rather than over the
batch (so a sample never depends on its batch mates), PyTorch filters
without a custom CUDA op (``alias_free_ops``: polyphase FIRs and a filtered leaky
ReLU that keeps no upsampled tensor for backward; the plain ``upfirdn2d`` layers they are
tested against live in ``tests/reference_layers.py``, outside the package), the input-magnitude EMA updated in training mode like a
BatchNorm statistic (``update_magnitude_ema=False``: never updated, as the official
GenDeF training loop, whose ``run_G`` never passes ``update_emas``), and optional MTM
(deformable) convs. ``mixed_precision`` runs the layers whose sampling rate is among the
``mixed_precision_res`` highest (official: ``rate * 2**num_fp16_res > resolution``) in
float16 / bfloat16, clamped at ``conv_clamp`` = 256 (float16 only on CUDA, as official).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from ..config import GenDeFConfig
from .alias_free_ops import FilterPlan, filtered_lrelu
from .modulated_ops import modulated_conv
from .layers import EqualLinear, MappingNetwork
from .mtm import OffsetPredictor, in_mtm_range

__all__ = ["StyleGAN3Generator", "SynthesisInput", "AliasFreeLayer", "LayerGeometry", "lowpass_filter"]

CONV_CLAMP = 256.0  # StyleGAN3's conv_clamp: layer outputs are clamped to +-256
_REDUCED_DTYPES = {"none": None, "float16": torch.float16, "bfloat16": torch.bfloat16}


def lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float) -> Optional[torch.Tensor]:
    """Separable 1-D Kaiser-windowed sinc (None = identity for a 1-tap filter)."""
    if numtaps == 1:
        return None
    import scipy.signal

    return torch.as_tensor(scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs), dtype=torch.float32)


class SynthesisInput(nn.Module):
    """Fourier features of continuous coordinates; w sets a rotation + translation of them.

    ``transform`` (a 3x3 matrix, identity by default) is an extra user transform of
    the input coordinates: translating it translates the whole output image, which
    is how equivariance is tested and how a canonical image could be panned
    (``transform[0, 2] = -d / R`` moves the image d pixels right).
    """

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.channels, self.size = int(channels), int(size)
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        freqs = torch.randn(self.channels, 2)
        radii = freqs.norm(dim=1, keepdim=True)
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * self.bandwidth  # inside the band's disc
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand(self.channels) - 0.5)
        self.register_buffer("transform", torch.eye(3))
        self.weight = nn.Parameter(torch.randn(self.channels, self.channels))
        self.affine = EqualLinear(w_dim, 4)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        b = w.shape[0]
        t = self.affine(w).float()
        t = t / t[:, :2].norm(dim=1, keepdim=True).clamp_min(1e-8)
        rot = torch.eye(3, device=w.device).repeat(b, 1, 1)
        rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        shift = torch.eye(3, device=w.device).repeat(b, 1, 1)
        shift[:, 0, 2], shift[:, 1, 2] = -t[:, 2], -t[:, 3]
        m = rot @ shift @ self.transform.float()[None]
        phases = self.phases[None] + (self.freqs[None] @ m[:, :2, 2:]).squeeze(2)
        freqs = self.freqs[None] @ m[:, :2, :2]
        # a user transform may push frequencies out of band: fade them instead of aliasing
        amp = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        # pixel centres in units where the image (not the margin) spans [-0.5, 0.5]
        coords = (torch.arange(self.size, device=w.device, dtype=torch.float32) + 0.5 - self.size / 2) / self.sampling_rate
        gy, gx = torch.meshgrid(coords, coords, indexing="ij")
        grid = torch.stack([gx, gy], dim=-1)  # [S, S, 2]
        x = torch.einsum("hwk,bck->bhwc", grid, freqs) + phases[:, None, None, :]
        x = torch.sin(x * (2 * math.pi)) * amp[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2).contiguous()


@dataclass(frozen=True)
class LayerGeometry:
    """Where one alias-free layer sits in the synthesis network: channels, sizes (with margin),
    sampling rates, filter cutoffs and transition half-widths, in (input, output) pairs."""

    channels: Tuple[int, int]
    sizes: Tuple[int, int]
    rates: Tuple[int, int]
    cutoffs: Tuple[float, float]
    half_widths: Tuple[float, float]
    is_torgb: bool = False
    mtm: bool = False  # this layer's conv is deformable (MTM)
    compute_dtype: Optional[torch.dtype] = None  # mixed precision picked this layer


class AliasFreeLayer(nn.Module):
    """Modulated conv -> bias -> upsample -> leaky ReLU -> downsample (or the 1x1 ToRGB).

    ``geometry`` places the layer; ``config`` gives the model-wide settings (w_dim, MTM mask,
    magnitude EMA). Kernel, filter size, lrelu upsampling, clamp and EMA beta are StyleGAN3's."""

    kernel_size = 3
    filter_size = 6
    lrelu_upsampling = 2
    magnitude_ema_beta = 0.999

    def __init__(self, geometry: LayerGeometry, config: GenDeFConfig):
        super().__init__()
        g = geometry
        is_torgb = g.is_torgb
        in_ch, out_ch = g.channels
        self.is_torgb = is_torgb
        self.in_ch, self.out_ch = in_ch, out_ch
        self.in_size, self.out_size = (int(s) for s in g.sizes)
        self.in_rate, self.out_rate = (int(r) for r in g.rates)
        self.kernel = 1 if is_torgb else self.kernel_size
        self.conv_clamp = CONV_CLAMP
        self.update_magnitude_ema = bool(config.canonical.update_magnitude_ema)
        self.compute_dtype = g.compute_dtype
        self.affine = EqualLinear(config.w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, self.kernel, self.kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.register_buffer("magnitude_ema", torch.ones(()))
        mask = config.mtm_mask
        self.offset = OffsetPredictor(in_ch, self.kernel, config.w_dim, self.kernel - 1, mask=mask) if g.mtm and not is_torgb else None

        tmp_rate = max(self.in_rate, self.out_rate) * (1 if is_torgb else self.lrelu_upsampling)
        self.up = int(round(tmp_rate / self.in_rate))
        self.down = int(round(tmp_rate / self.out_rate))
        up_taps = self.filter_size * self.up if self.up > 1 and not is_torgb else 1
        down_taps = self.filter_size * self.down if self.down > 1 and not is_torgb else 1
        filters = (("up_filter", up_taps, g.cutoffs[0], g.half_widths[0]), ("down_filter", down_taps, g.cutoffs[1], g.half_widths[1]))
        for name, taps, cutoff, hw in filters:
            f = lowpass_filter(taps, cutoff, hw * 2, tmp_rate)
            self.register_buffer(name, f if f is not None else torch.ones(1), persistent=False)
        self.up_taps, self.down_taps = up_taps, down_taps
        # Pad so that exactly out_size samples survive the down-filter; the
        # (total + up) // 2 split keeps sample centres aligned between layers.
        total = (self.out_size - 1) * self.down + 1 - (self.in_size + self.kernel - 1) * self.up + up_taps + down_taps - 2
        lo = (total + self.up) // 2
        self.padding = (lo, total - lo, lo, total - lo)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        self.track_magnitude(x)
        x = self.to_compute_dtype(x)
        s, weight = self.styles(w)
        gain = self.magnitude_ema.rsqrt()
        offset, mask = self.offset.split(self.offset(x, w, input_gain=gain)) if self.offset is not None else (None, None)
        y = modulated_conv(x, s * gain, weight.to(x.dtype), self.kernel - 1, offset, mask)
        if self.is_torgb:
            return self.torgb_out(y)
        return filtered_lrelu(y, self.demodulation(s, weight).to(y.dtype), self.bias.to(y.dtype), self.filter_plan())

    def to_compute_dtype(self, x: torch.Tensor) -> torch.Tensor:
        """x in this layer's reduced precision when mixed precision picked it (float16 only on CUDA)."""
        dt = self.compute_dtype
        if dt is None or (dt == torch.float16 and x.device.type != "cuda"):
            return x
        return x.to(dt)

    def track_magnitude(self, x: torch.Tensor) -> None:
        """The input-magnitude EMA, updated in training mode like a BatchNorm statistic
        (never, when ``update_magnitude_ema`` is off: the gain then stays 1, as official)."""
        if self.update_magnitude_ema and self.training and torch.is_grad_enabled():
            with torch.no_grad():
                self.magnitude_ema.copy_(torch.lerp(x.detach().float().square().mean(), self.magnitude_ema, self.magnitude_ema_beta))

    def styles(self, w: torch.Tensor):
        """Per-sample input scales s [B, in] and the (normalised) weight, in float32."""
        s = self.affine(w).float()
        weight = self.weight.float()
        if self.is_torgb:
            return s / math.sqrt(self.in_ch * self.kernel**2), weight
        weight = weight * weight.square().mean(dim=(1, 2, 3), keepdim=True).rsqrt()
        return s * s.square().mean(dim=1, keepdim=True).rsqrt(), weight

    @staticmethod
    def demodulation(s: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return torch.rsqrt((weight.square().sum(dim=(2, 3))[None] * s.square()[:, None, :]).sum(-1) + 1e-8)

    def torgb_out(self, y: torch.Tensor) -> torch.Tensor:
        y = y + self.bias.to(y.dtype)[None, :, None, None]
        return y.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp else y

    def filter_plan(self) -> FilterPlan:
        """The fast path's view of this layer's filters (correlation kernels: flipped, with the up gain)."""
        k_up = (self.up_filter * self.up).flip(0) if self.up_taps > 1 else None
        k_down = self.down_filter.flip(0) if self.down_taps > 1 else None
        lo, hi = self.padding[0], self.padding[1]
        return FilterPlan(k_up, k_down, self.up, self.down, lo, hi, float(self.conv_clamp) if self.conv_clamp else None)

class StyleGAN3Generator(nn.Module):
    """Mapping + alias-free synthesis with the same interface as ``CanonicalGenerator``.

    Settings come from ``config`` (``config.canonical`` plus the shared resolution, z/w sizes and
    MTM); the filter schedule's constants are StyleGAN3-T's."""

    num_critical = 2  # critically sampled last layers
    first_cutoff = 2.0
    first_stopband = 2**2.1
    last_stopband_rel = 2**0.3
    margin_size = 10
    output_scale = 0.25

    def __init__(self, config: GenDeFConfig):
        super().__init__()
        c = config.canonical
        resolution = config.resolution
        log2 = int(math.log2(resolution))
        n = 2 * log2 - 2
        self.resolution = resolution
        self.z_dim = config.z_dim
        self.mapping = MappingNetwork(config.z_dim, config.w_dim, num_layers=c.mapping_layers)
        mtm_resolutions = config.canonical_mtm_range

        last_cutoff = resolution / 2
        exps = np.minimum(np.arange(n + 1) / (n - self.num_critical), 1.0)
        cutoffs = self.first_cutoff * (last_cutoff / self.first_cutoff) ** exps
        stopbands = self.first_stopband * (last_cutoff * self.last_stopband_rel / self.first_stopband) ** exps
        rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, resolution))))
        half_widths = np.maximum(stopbands, rates / 2) - cutoffs
        sizes = rates + 2 * self.margin_size
        sizes[-2:] = resolution
        channels = np.rint(np.minimum(c.channel_base / 2 / cutoffs, c.channel_max)).astype(int).clip(min=1)
        channels[-1] = 3
        self.rates = [int(r) for r in rates]
        self.sizes = [int(s) for s in sizes]
        self.channels = [int(ch) for ch in channels]

        self.input = SynthesisInput(config.w_dim, self.channels[0], self.sizes[0], rates[0], cutoffs[0])
        self.layers = nn.ModuleList()
        reduced = _REDUCED_DTYPES[c.mixed_precision]
        for i in range(n + 1):
            p = max(i - 1, 0)
            geometry = LayerGeometry(
                (self.channels[p], self.channels[i]), (self.sizes[p], self.sizes[i]), (self.rates[p], self.rates[i]),
                (cutoffs[p], cutoffs[i]), (half_widths[p], half_widths[i]), is_torgb=i == n,
                mtm=in_mtm_range(self.rates[i], mtm_resolutions),
                # official: sampling_rate * 2**num_fp16_res > resolution
                compute_dtype=reduced if rates[i] * 2**c.mixed_precision_res > resolution else None,
            )
            self.layers.append(AliasFreeLayer(geometry, config))
        self.num_layers = n
        feature_layer = c.feature_layer if c.feature_layer is not None else n - 1
        if not 1 <= feature_layer <= n:
            raise ValueError(f"canonical_feature_layer must be in 1..{n}, got {feature_layer}")
        self.feature_layer = feature_layer
        self.feature_channels, self.feature_resolution = self.layer_shapes()[feature_layer - 1]

    def layer_shapes(self) -> List[tuple]:
        """(channels, resolution) of every selectable layer L1..Ln (features are cropped to the image extent)."""
        return [(self.channels[i], self.rates[i]) for i in range(1, self.num_layers + 1)]

    def _crop(self, x: torch.Tensor, i: int) -> torch.Tensor:
        m = (self.sizes[i] - self.rates[i]) // 2
        return x[:, :, m : m + self.rates[i], m : m + self.rates[i]] if m > 0 else x

    def synthesis(self, w: torch.Tensor, noise_mode: str = "random", feature_layer: Optional[int] = None):
        """w [B, w_dim] -> (image [B,3,R,R] in about [-1, 1], feature of the chosen layer). No noise inputs: noise_mode is accepted for interface parity."""
        layer = feature_layer or self.feature_layer
        if not 1 <= layer <= self.num_layers:
            raise ValueError(f"feature_layer must be in 1..{self.num_layers}, got {layer}")
        x = self.input(w).to(w.dtype)
        feat = None
        for i, block in enumerate(self.layers):
            x = block(x, w)
            if i == layer and i < self.num_layers:
                feat = self._crop(x, i)
        img = x * self.output_scale if self.output_scale != 1 else x
        feat = feat if feat is not None else img
        if img.dtype != w.dtype:  # mixed precision: the rest of GenDeF sees w's dtype
            img, feat = img.to(w.dtype), feat.to(w.dtype)
        return img, feat

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "random"):
        w = self.mapping(z, truncation_psi)
        return self.synthesis(w, noise_mode)

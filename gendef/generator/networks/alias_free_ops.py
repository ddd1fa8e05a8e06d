"""StyleGAN3's filtered non-linearity and FIR resampling without keeping upsampled tensors.

The plain layers (``stylegan3.upfirdn2d`` + ``F.leaky_relu``) zero-stuff, pad and filter
full tensors and autograd keeps every one of them for backward: at 2x the sampling
rate each is 4x the layer's size. Here:

- ``fir_axis`` resamples one axis with a polyphase filter bank: upsampling by ``up``
  is ``up`` short convolutions of the input (one per output phase) interleaved, so
  no zero-stuffed tensor is ever built and each output sample costs len(f)/up taps;
  downsampling is a strided convolution (only the kept samples are computed). The
  T-config filters are separable, so 2-D resampling is two 1-D passes.
- ``FilteredLeakyReLU`` (upsample -> leaky ReLU -> clamp -> downsample) keeps only its
  input for backward and recomputes the cheap upsampled intermediate there; the
  backward is written with the same differentiable ops (the adjoint of a polyphase
  upsampling is a strided filter and vice versa), so it is itself differentiable.

The plain implementations these are tested against live in ``tests/reference_layers.py``,
outside the package.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["fir_axis", "fir_axis_adjoint", "FilterPlan", "filtered_lrelu"]

def _depthwise(x: torch.Tensor, k: torch.Tensor, dim: int, stride: int = 1) -> torch.Tensor:
    """Valid correlation of every channel with the rows of k ([mult, taps]) along H (dim 2) or W (dim 3)."""
    c, mult, taps = x.shape[1], k.shape[0], k.shape[1]
    k = k.to(dtype=x.dtype, device=x.device)
    if dim == 3:
        weight, st = k.view(1, mult, 1, taps).expand(c, mult, 1, taps), (1, stride)
    else:
        weight, st = k.view(1, mult, taps, 1).expand(c, mult, taps, 1), (stride, 1)
    return F.conv2d(x, weight.reshape(c * mult, 1, weight.shape[2], weight.shape[3]), stride=st, groups=c)


def _pad_axis(x: torch.Tensor, lo: int, hi: int, dim: int) -> torch.Tensor:
    if lo == 0 and hi == 0:
        return x
    return F.pad(x, [lo, hi] if dim == 3 else [0, 0, lo, hi])


def _crop_axis(x: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    return x.narrow(dim, 0, n) if x.shape[dim] != n else x


def _polyphase_bank(k: torch.Tensor, up: int, lo: int):
    """Rows of one filter bank (one per output phase, aligned to a common start) and that start."""
    starts, subs = [], []
    for r in range(up):
        j0 = (lo - r) % up
        starts.append((r + j0 - lo) // up)  # input index of the phase's first tap
        subs.append(k[j0::up])
    first = min(starts)
    taps = max(s - first + len(f) for s, f in zip(starts, subs))
    bank = k.new_zeros(up, taps)
    for r, (s, f) in enumerate(zip(starts, subs)):
        bank[r, s - first : s - first + len(f)] = f
    return bank, first


def fir_axis(x: torch.Tensor, k: torch.Tensor, up: int, down: int, lo: int, hi: int, dim: int) -> torch.Tensor:
    """Along ``dim``: zero-stuff by up, pad (lo, hi; negative crops), correlate with k, keep every down-th.

    Same numbers as ``stylegan3.upfirdn2d`` on one axis with ``k = flip(f)``, without
    building the zero-stuffed or the discarded samples.
    """
    n, taps = x.shape[dim], k.shape[0]
    length = n * up + lo + hi - taps + 1  # samples before decimation
    if length <= 0:
        raise ValueError(f"fir_axis: {n} samples give no output (up {up}, pad {lo},{hi}, {taps} taps)")
    if up == 1:
        return _depthwise(_pad_axis(x, lo, hi, dim), k.view(1, -1), dim, stride=down)
    bank, first = _polyphase_bank(k, up, lo)
    steps = -(-length // up)  # outputs per phase
    x = _pad_axis(x, -first, steps + bank.shape[1] - 1 - (n - first), dim)
    y = _depthwise(x, bank, dim)  # [B, C*up, ...]: phase r of channel c at c*up + r
    b, c = y.shape[0], y.shape[1] // up
    if dim == 3:
        y = y.view(b, c, up, y.shape[2], steps).permute(0, 1, 3, 4, 2).reshape(b, c, y.shape[2], steps * up)
    else:
        y = y.view(b, c, up, steps, y.shape[3]).permute(0, 1, 3, 2, 4).reshape(b, c, steps * up, y.shape[3])
    y = _crop_axis(y, length, dim)
    return y if down == 1 else _decimate(y, down, dim)


def _decimate(y: torch.Tensor, down: int, dim: int) -> torch.Tensor:
    return y[:, :, ::down] if dim == 2 else y[:, :, :, ::down]


def fir_axis_adjoint(g: torch.Tensor, k: torch.Tensor, up: int, down: int, lo: int, n: int, dim: int) -> torch.Tensor:
    """The transpose of ``fir_axis`` (input length n): the gradient it passes back to its input."""
    m, taps = g.shape[dim], k.shape[0]
    lo_t = taps - 1 - lo
    hi_t = (n - 1) * up + 1 + lo - m * down
    return _crop_axis(fir_axis(g, k.flip(0), down, up, lo_t, hi_t, dim), n, dim)


@dataclass(frozen=True)
class FilterPlan:
    """One layer's filtered leaky ReLU: correlation kernels (already flipped and scaled) and pads."""

    k_up: Optional[torch.Tensor]  # None = no filter (1 tap)
    k_down: Optional[torch.Tensor]
    up: int
    down: int
    pad_lo: int
    pad_hi: int
    clamp: Optional[float]
    slope: float = 0.2
    gain: float = math.sqrt(2.0)

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        k = self.k_up if self.k_up is not None else x.new_ones(1)
        for dim in (3, 2):
            x = fir_axis(x, k, self.up, 1, self.pad_lo, self.pad_hi, dim)
        return x

    def upsample_adjoint(self, g: torch.Tensor, size) -> torch.Tensor:
        k = self.k_up if self.k_up is not None else g.new_ones(1)
        for dim in (2, 3):
            g = fir_axis_adjoint(g, k, self.up, 1, self.pad_lo, size[dim], dim)
        return g

    def downsample(self, x: torch.Tensor) -> torch.Tensor:
        k = self.k_down if self.k_down is not None else x.new_ones(1)
        for dim in (3, 2):
            x = fir_axis(x, k, 1, self.down, 0, 0, dim)
        return x

    def downsample_adjoint(self, g: torch.Tensor, size) -> torch.Tensor:
        k = self.k_down if self.k_down is not None else g.new_ones(1)
        for dim in (2, 3):
            g = fir_axis_adjoint(g, k, 1, self.down, 0, size[dim], dim)
        return g

    def slopes(self, u: torch.Tensor) -> torch.Tensor:
        """d out / d u of gain * clamp(leaky_relu(u)), computed in u's storage (u is overwritten)."""
        low = self.gain * self.slope
        inside = None
        if self.clamp is not None:  # clamp passes no gradient where it clips
            inside = (u <= self.clamp / self.gain) & (u >= -self.clamp / low)
        s = u.gt_(0).mul_(self.gain - low).add_(low)
        return s.mul_(inside) if inside is not None else s


def _activate(u: torch.Tensor, plan: FilterPlan) -> torch.Tensor:
    u = F.leaky_relu_(u, plan.slope).mul_(plan.gain)
    return u.clamp_(-plan.clamp, plan.clamp) if plan.clamp is not None else u


def _pre_activation(y: torch.Tensor, d: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(b[None, :, None, None], y, d[:, :, None, None])


class _FilteredLeakyReLU(torch.autograd.Function):
    """out = plan(y * d + b); keeps y, d, b for backward and recomputes the upsampled pre-activation there.

    The backward is made of the same differentiable ops (the slopes are piecewise constant),
    so it can itself be differentiated (``create_graph=True``).
    """

    @staticmethod
    def forward(ctx, y: torch.Tensor, d: torch.Tensor, b: torch.Tensor, plan: FilterPlan) -> torch.Tensor:
        ctx.plan = plan
        ctx.save_for_backward(y, d, b)
        with torch.no_grad(), torch.autocast(device_type=y.device.type, enabled=False):
            d, b = d.to(y.dtype), b.to(y.dtype)
            outs = []
            for c in _chunks(y, plan):
                u = plan.upsample(_pre_activation(y[:, c], d[:, c], b[c]))
                ctx.up_size = u.shape[2:]
                outs.append(plan.downsample(_activate(u, plan)))
                del u
            return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        y, d, b = ctx.saved_tensors
        plan, dt = ctx.plan, y.dtype
        with torch.autocast(device_type=y.device.type, enabled=False):
            d, b, grad = d.to(dt), b.to(dt), grad.to(dt)
            parts = [_chunk_backward(y[:, c], d[:, c], b[c], grad[:, c], plan, ctx.up_size) for c in _chunks(y, plan)]
            g = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
            g_y = g * d[:, :, None, None] if ctx.needs_input_grad[0] else None
            g_d = (g * y).sum(dim=(2, 3)) if ctx.needs_input_grad[1] else None
            g_b = g.sum(dim=(0, 2, 3)) if ctx.needs_input_grad[2] else None
        return g_y, g_d, g_b, None


# Channels are independent: working on slices of them bounds the upsampled temporaries.
_CHUNK_ELEMENTS = {"cpu": 2**22, "cuda": 2**25}


def _chunks(y: torch.Tensor, plan: FilterPlan):
    per_channel = y.shape[0] * (y.shape[2] * plan.up) * (y.shape[3] * plan.up)
    step = max(1, _CHUNK_ELEMENTS.get(y.device.type, 2**24) // per_channel)
    return [slice(c, min(c + step, y.shape[1])) for c in range(0, y.shape[1], step)]


def _chunk_backward(y, d, b, grad, plan: FilterPlan, up_size) -> torch.Tensor:
    """Gradient w.r.t. the pre-activation y * d + b of one channel slice."""
    with torch.no_grad():
        s = plan.slopes(plan.upsample(_pre_activation(y, d, b)))
    g = plan.downsample_adjoint(grad, (None, None, *up_size)) * s
    del s
    return plan.upsample_adjoint(g, y.shape)


def filtered_lrelu(y: torch.Tensor, d: torch.Tensor, b: torch.Tensor, plan: FilterPlan) -> torch.Tensor:
    """downsample(clamp(gain * leaky_relu(upsample(y * d[..., None, None] + b[None, :, None, None])))).

    y [B, C, H, W]: the conv output; d [B, C]: demodulation; b [C]: bias. Only these are
    kept for backward; computed in y's dtype.
    """
    return _FilteredLeakyReLU.apply(y, d, b, plan)

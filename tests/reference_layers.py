"""The plain StyleGAN3 and MTM layers that the fast ones are tested against: a test oracle, kept
with the tests (``tests.reference_layers``), never shipped in or imported by the package.

The model's layers (``alias_free_ops``, ``modulated_ops``) avoid keeping full-size
intermediates for backward. The implementations here do the same arithmetic the
obvious way (zero-stuffed ``upfirdn2d``, leaky ReLU, input times style, then a conv
or torchvision's deformable conv), so autograd keeps everything: slow and
memory-hungry, but easy to check by eye. ``with reference_ops():`` makes the
model's ``AliasFreeLayer``, ``OffsetPredictor`` and ``ModulatedDeformConv2d`` run
these forwards for the duration of the block (tests, ``python -m benchmarks.backbones`` run from
the repository root).
"""
from __future__ import annotations

import contextlib
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torchvision.ops import deform_conv2d

from gendef.generator.networks.mtm import ModulatedDeformConv2d, OffsetPredictor
from gendef.generator.networks.stylegan3 import AliasFreeLayer

__all__ = ["reference_ops", "upfirdn2d", "conv_or_deform"]


def _fir_axis(x: torch.Tensor, f: torch.Tensor, dim: int, stride: int) -> torch.Tensor:
    """Valid depthwise 1-D convolution (true convolution, so the filter is flipped) along H or W."""
    c = x.shape[1]
    k = f.flip(0).to(x.dtype)
    if dim == 3:
        weight, st = k.view(1, 1, 1, -1).expand(c, 1, 1, -1), (1, stride)
    else:
        weight, st = k.view(1, 1, -1, 1).expand(c, 1, -1, 1), (stride, 1)
    return F.conv2d(x, weight, stride=st, groups=c)


def upfirdn2d(x: torch.Tensor, f: Optional[torch.Tensor], up: int = 1, down: int = 1, padding=(0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    """Zero-stuff by ``up``, pad (x0, x1, y0, y1; negative crops), filter with f in x and y, keep every ``down``-th sample."""
    b, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(b, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(b, c, h * up, w * up)
    x0, x1, y0, y1 = (int(p) for p in padding)
    if any((x0, x1, y0, y1)):
        x = F.pad(x, [x0, x1, y0, y1])
    if f is None:
        return x[:, :, ::down, ::down] * gain if gain != 1.0 else x[:, :, ::down, ::down]
    f = f * math.sqrt(gain)
    x = _fir_axis(x, f, 3, down)
    return _fir_axis(x, f, 2, down)


def conv_or_deform(x: torch.Tensor, weight: torch.Tensor, padding: int, offset: Optional[torch.Tensor], mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One entry point so callers need not care whether MTM is on for this layer (mask: MTM's per-tap modulation)."""
    if offset is None:
        return F.conv2d(x, weight, padding=padding)
    # torchvision's kernel has no half-precision CPU path and autocast lists it as fp32 anyway.
    m = mask.float() if mask is not None else None
    out = deform_conv2d(x.float(), offset.float(), weight.float(), padding=(padding, padding), mask=m)
    return out.to(x.dtype)


def alias_free_forward(layer: AliasFreeLayer, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``AliasFreeLayer.forward`` with full-size intermediates kept by autograd."""
    layer.track_magnitude(x)
    x = layer.to_compute_dtype(x)
    s, weight = layer.styles(w)
    x = x * layer.magnitude_ema.rsqrt().to(x.dtype)
    offset, mask = layer.offset.split(layer.offset(x, w)) if layer.offset is not None else (None, None)
    y = conv_or_deform(x * s.to(x.dtype)[:, :, None, None], weight.to(x.dtype), layer.kernel - 1, offset, mask)
    if layer.is_torgb:
        return layer.torgb_out(y)
    y = y * layer.demodulation(s, weight).to(y.dtype)[:, :, None, None]
    return filtered_leaky_relu(layer, y + layer.bias.to(y.dtype)[None, :, None, None])


def filtered_leaky_relu(layer: AliasFreeLayer, y: torch.Tensor) -> torch.Tensor:
    """Plain zero-stuff/pad/filter, leaky ReLU, clamp, filter/decimate."""
    fu = layer.up_filter if layer.up_taps > 1 else None
    fd = layer.down_filter if layer.down_taps > 1 else None
    y = upfirdn2d(y, fu, up=layer.up, padding=layer.padding, gain=layer.up**2)
    y = F.leaky_relu(y, 0.2) * math.sqrt(2.0)
    if layer.conv_clamp:
        y = y.clamp(-layer.conv_clamp, layer.conv_clamp)
    return upfirdn2d(y, fd, down=layer.down)


def offset_forward(pred: OffsetPredictor, x: torch.Tensor, w: torch.Tensor, input_gain: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``OffsetPredictor.forward``: the input scaled by the style, then a plain conv."""
    s = pred.affine(w)
    weight = (pred.weight * pred.scale).to(x.dtype)
    x = x * input_gain.to(x.dtype) if input_gain is not None else x
    return F.conv2d(x * s.to(x.dtype)[:, :, None, None], weight, pred.bias.to(x.dtype), padding=pred.padding)


def deform_forward(conv: ModulatedDeformConv2d, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``ModulatedDeformConv2d.forward`` through torchvision's deformable conv of the scaled input."""
    s = conv.affine(w)
    weight = conv.weight * conv.scale
    if conv.upsample:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    offset, mask = conv.offset.split(conv.offset(x, w))
    out = conv_or_deform(x * s.to(x.dtype)[:, :, None, None], weight.to(x.dtype), conv.padding, offset, mask)
    return conv.demodulated(out, s, weight)


_PATCHES = ((AliasFreeLayer, alias_free_forward), (OffsetPredictor, offset_forward), (ModulatedDeformConv2d, deform_forward))


@contextlib.contextmanager
def reference_ops(on: bool = True):
    """Within the block, the model's StyleGAN3/MTM layers run the plain forwards above (``on=False``: unchanged)."""
    if not on:
        yield
        return
    saved = [(cls, cls.__dict__["forward"]) for cls, _ in _PATCHES]
    try:
        for cls, fwd in _PATCHES:
            cls.forward = fwd
        yield
    finally:
        for cls, fwd in saved:
            cls.forward = fwd

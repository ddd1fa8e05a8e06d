"""Discriminator augmentation: ADA's "bgc" pipeline, and ADA's adaptive probability.

The pipeline follows StyleGAN2-ADA (Karras et al. 2020, appendix B; the official GenDeF and
StyleGAN-V scripts train with ``--aug=ada --augpipe=bgc``): blit (x-flip, 90-degree rotation,
integer translation), geometric (isotropic scaling, rotation, anisotropic scaling, rotation,
fractional translation) and colour (brightness, contrast, luma flip, hue, saturation). Each op is
applied to a sample with probability ``p`` times its strength. The geometric ops are composed into
one matrix and applied in one resampling pass through ``train.resample.bilinear_sample``
(reflection at the borders), whose backward is itself differentiable, so R1 through the
augmentation never needs ``grid_sample``'s double backward.

Clips ``[B, K, 3, H, W]`` get one draw per clip, shared by its K frames, so augmentation never
looks like motion. Images are expected in [-1, 1].

Differences from the official pipeline: the resampling is bilinear at the output resolution
(ADA upsamples 2x with a sym6 wavelet filter, samples, and downsamples), so strong zoom-outs
alias a little more; integer ops are exact in both.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np
import torch

from train.resample import affine_coords, bilinear_sample

__all__ = ["BGC", "augment", "AdaptiveAugment", "geometric_matrix", "color_matrix"]

# op -> strength (multiplies p), as ADA's augpipe "bgc".
BGC: Dict[str, float] = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
                             brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
# ADA's default ranges.
XINT_MAX, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0
_LUMA = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64) / math.sqrt(3)


def _gate(values: torch.Tensor, identity: float, prob: float) -> torch.Tensor:
    """Keep each sample's drawn value with probability ``prob``, else the identity value."""
    keep = torch.rand(values.shape[0], device=values.device, dtype=values.dtype) < prob
    keep = keep.reshape(-1, *([1] * (values.ndim - 1)))
    return torch.where(keep, values, torch.full_like(values, identity))


def _mat3(rows, n: int, device) -> torch.Tensor:
    """[N, 3, 3] from nested rows of scalars or [N] tensors."""
    cols = [[torch.as_tensor(v, dtype=torch.float64, device=device).expand(n) for v in row] for row in rows]
    return torch.stack([torch.stack(r, -1) for r in cols], -2)


def _scale(sx, sy, n, dev):
    return _mat3([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], n, dev)


def _rotate(theta, n, dev):
    c, s = torch.cos(theta), torch.sin(theta)
    return _mat3([[c, -s, 0], [s, c, 0], [0, 0, 1]], n, dev)


def _translate(tx, ty, n, dev):
    return _mat3([[1, 0, tx], [0, 1, ty], [0, 0, 1]], n, dev)


def geometric_matrix(n: int, height: int, width: int, p: float, ops: Dict[str, float], device) -> torch.Tensor:
    """[N, 3, 3] output->input matrix on centred pixel coordinates (ADA's G_inv), composed op by op."""
    dev, f64 = device, torch.float64
    m = torch.eye(3, dtype=f64, device=dev).expand(n, 3, 3)
    if ops.get("xflip"):
        i = _gate(torch.floor(torch.rand(n, dtype=f64, device=dev) * 2), 0, ops["xflip"] * p)
        m = m @ _scale(1 - 2 * i, 1, n, dev)
    if ops.get("rotate90"):
        i = _gate(torch.floor(torch.rand(n, dtype=f64, device=dev) * 4), 0, ops["rotate90"] * p)
        m = m @ _rotate(math.pi / 2 * i, n, dev)
    if ops.get("xint"):
        t = _gate((torch.rand(n, 2, dtype=f64, device=dev) * 2 - 1) * XINT_MAX, 0, ops["xint"] * p)
        m = m @ _translate(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height), n, dev)
    if ops.get("scale"):
        s = _gate(torch.exp2(torch.randn(n, dtype=f64, device=dev) * SCALE_STD), 1, ops["scale"] * p)
        m = m @ _scale(1 / s, 1 / s, n, dev)
    p_rot = 1 - math.sqrt(min(max(1 - ops.get("rotate", 0) * p, 0.0), 1.0))  # applied twice
    if ops.get("rotate"):
        theta = _gate((torch.rand(n, dtype=f64, device=dev) * 2 - 1) * math.pi * ROTATE_MAX, 0, p_rot)
        m = m @ _rotate(theta, n, dev)
    if ops.get("aniso"):
        s = _gate(torch.exp2(torch.randn(n, dtype=f64, device=dev) * ANISO_STD), 1, ops["aniso"] * p)
        m = m @ _scale(1 / s, s, n, dev)
    if ops.get("rotate"):
        theta = _gate((torch.rand(n, dtype=f64, device=dev) * 2 - 1) * math.pi * ROTATE_MAX, 0, p_rot)
        m = m @ _rotate(theta, n, dev)
    if ops.get("xfrac"):
        t = _gate(torch.randn(n, 2, dtype=f64, device=dev) * XFRAC_STD, 0, ops["xfrac"] * p)
        m = m @ _translate(-t[:, 0] * width, -t[:, 1] * height, n, dev)
    return m


def _luma_rotation(theta: torch.Tensor) -> torch.Tensor:
    """[N, 4, 4] rotation by ``theta`` about the luma axis (Rodrigues' formula)."""
    n, v = theta.shape[0], _LUMA[:3]
    k = torch.tensor([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]], dtype=torch.float64).to(theta.device)
    v = v.to(theta.device)
    c, s = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    r = torch.eye(3, dtype=torch.float64, device=theta.device) * c + s * k + (1 - c) * torch.outer(v, v)
    out = torch.eye(4, dtype=torch.float64, device=theta.device).repeat(n, 1, 1)
    out[:, :3, :3] = r
    return out


def color_matrix(n: int, p: float, ops: Dict[str, float], device) -> torch.Tensor:
    """[N, 4, 4] affine colour transform on homogeneous RGB (ADA's C), composed op by op."""
    dev, f64 = device, torch.float64
    eye = torch.eye(4, dtype=f64, device=dev)
    vv = torch.outer(_LUMA, _LUMA).to(dev)
    c = eye.expand(n, 4, 4)
    if ops.get("brightness"):
        b = _gate(torch.randn(n, dtype=f64, device=dev) * BRIGHTNESS_STD, 0, ops["brightness"] * p)
        shift = eye.repeat(n, 1, 1)
        shift[:, :3, 3] = b[:, None]
        c = shift @ c
    if ops.get("contrast"):
        s = _gate(torch.exp2(torch.randn(n, dtype=f64, device=dev) * CONTRAST_STD), 1, ops["contrast"] * p)
        c = torch.diag_embed(torch.stack([s, s, s, torch.ones_like(s)], -1)) @ c
    if ops.get("lumaflip"):
        i = _gate(torch.floor(torch.rand(n, dtype=f64, device=dev) * 2), 0, ops["lumaflip"] * p)
        c = (eye - 2 * vv * i[:, None, None]) @ c
    if ops.get("hue"):
        theta = _gate((torch.rand(n, dtype=f64, device=dev) * 2 - 1) * math.pi * HUE_MAX, 0, ops["hue"] * p)
        c = _luma_rotation(theta) @ c
    if ops.get("saturation"):
        s = _gate(torch.exp2(torch.randn(n, dtype=f64, device=dev) * SATURATION_STD), 1, ops["saturation"] * p)
        c = (vv + (eye - vv) * s[:, None, None]) @ c
    return c


def augment(x: torch.Tensor, p: float, ops: Optional[Dict[str, float]] = None) -> torch.Tensor:
    """Augment images [N, 3, H, W] or clips [B, K, 3, H, W] (one draw per clip) with probability ``p``.

    Runs in float32 with autocast off and returns ``x``'s dtype; ``p <= 0`` returns ``x`` itself."""
    if p <= 0:
        return x
    ops = BGC if ops is None else ops
    b, k = x.shape[0], (x.shape[1] if x.ndim == 5 else 1)
    h, w = x.shape[-2:]
    with torch.autocast(x.device.type, enabled=False):
        img = x.float().reshape(b * k, *x.shape[-3:])
        geo = geometric_matrix(b, h, w, p, ops, x.device).repeat_interleave(k, 0)
        col = color_matrix(b, p, ops, x.device).repeat_interleave(k, 0)
        if any(ops.get(o) for o in ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")):
            img = bilinear_sample(img, affine_coords(geo, h, w))
        if any(ops.get(o) for o in ("brightness", "contrast", "lumaflip", "hue", "saturation")):
            col = col.to(img.dtype)
            img = torch.einsum("nij,njhw->nihw", col[:, :3, :3], img) + col[:, :3, 3, None, None]
    return img.reshape(x.shape).to(x.dtype)


class AdaptiveAugment:
    """ADA's heuristic: every ``ada_interval`` steps, move p by batch * interval / (ada_kimg * 1000)
    towards keeping r_t = E[sign D(real)] at ``ada_target`` (p never below 0)."""

    def __init__(self, cfg: dict, p: float = None):
        self.cfg = cfg
        self.p = float(cfg["aug_p"] if p is None else p)
        self.signs = []

    def observe(self, real_logits: torch.Tensor) -> None:
        if self.cfg["augment"] == "ada":
            self.signs.append(real_logits.detach().sign().mean().float())

    def step(self, accelerator, step: int) -> Optional[float]:
        """Called after training step ``step`` (1-based) is done; returns r_t when p was adjusted."""
        if self.cfg["augment"] != "ada" or not self.signs or step % self.cfg["ada_interval"]:
            return None
        rt = accelerator.reduce(torch.stack(self.signs).mean().to(accelerator.device), reduction="mean").item()
        self.signs.clear()
        n = self.cfg["batch_size"] * self.cfg["ada_interval"]
        self.p = float(max(self.p + np.sign(rt - self.cfg["ada_target"]) * n / (self.cfg["ada_kimg"] * 1000), 0.0))
        return rt

    @property
    def current(self) -> float:
        """The probability used now: 0 for augment=none, else p (probabilities above 1 act as 1)."""
        return 0.0 if self.cfg["augment"] == "none" else self.p

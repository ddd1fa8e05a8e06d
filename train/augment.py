"""Discriminator augmentation and ADA's adaptive probability."""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["augment", "AdaptiveAugment"]


def augment(x: torch.Tensor, p: float) -> torch.Tensor:
    """Differentiable DiffAugment-style ops (translation, brightness, saturation, contrast,
    cutout), each applied to a sample with probability ``p``. Clips [B, K, 3, H, W] get
    the same parameters for all their frames so augmentation never looks like motion."""
    if p <= 0:
        return x
    video = x.ndim == 5
    b = x.shape[0]
    k = x.shape[1] if video else 1
    img = x.reshape(b * k, *x.shape[-3:])
    dev, dt = x.device, img.dtype

    def per_sample(*shape):
        r = torch.rand(b, *shape, device=dev, dtype=dt)
        return r.repeat_interleave(k, dim=0)

    def gate():
        return (per_sample(1, 1, 1) < p).to(dt)

    h, w = img.shape[-2:]
    # translation by up to 1/8 of the size, zero padded
    g = gate()
    shift = (per_sample(2) * 2 - 1) * 0.125 * 2 * g[:, :, 0, 0]
    theta = torch.zeros(b * k, 2, 3, device=dev, dtype=dt)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # colour (images live in [-1, 1])
    img = img + (per_sample(1, 1, 1) - 0.5) * gate()
    mean_c = img.mean(dim=1, keepdim=True)
    img = mean_c + (img - mean_c) * (1 + (per_sample(1, 1, 1) * 2 - 1) * gate())
    mean_all = img.mean(dim=(1, 2, 3), keepdim=True)
    img = mean_all + (img - mean_all) * (1 + (per_sample(1, 1, 1) - 0.5) * gate())
    # cutout of a quarter of the area
    g = gate()
    cy, cx = per_sample(1, 1) * h, per_sample(1, 1) * w
    ys = torch.arange(h, device=dev, dtype=dt)[None, :, None]
    xs = torch.arange(w, device=dev, dtype=dt)[None, None, :]
    hole = ((ys - cy).abs() < h / 4) & ((xs - cx).abs() < w / 4)
    img = img * (1 - hole[:, None].to(dt) * g)
    return img.reshape(x.shape)


class AdaptiveAugment:
    """ADA's heuristic: raise p when D is overconfident on reals (E[sign D(real)] > target)."""

    def __init__(self, cfg: dict, p: float = None):
        self.cfg = cfg
        self.p = float(cfg["aug_p"] if p is None else p)
        self.signs = []

    def observe(self, real_logits: torch.Tensor) -> None:
        if self.cfg["augment"] == "ada":
            self.signs.append(real_logits.detach().sign().mean().float())

    def step(self, accelerator) -> Optional[float]:
        if self.cfg["augment"] != "ada" or len(self.signs) < self.cfg["ada_interval"]:
            return None
        rt = accelerator.reduce(torch.stack(self.signs).mean().to(accelerator.device), reduction="mean").item()
        self.signs.clear()
        n = self.cfg["batch_size"] * self.cfg["ada_interval"]
        self.p = float(min(max(self.p + math.copysign(n / (self.cfg["ada_kimg"] * 1000), rt - self.cfg["ada_target"]), 0.0), 1.0))
        return rt

    @property
    def current(self) -> float:
        return 0.0 if self.cfg["augment"] == "none" else self.p

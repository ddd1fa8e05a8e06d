"""Exponential moving average of the generator (StyleGAN's half-life in kimg, with ramp-up)."""
from __future__ import annotations

import copy

import torch

__all__ = ["EMA"]


class EMA:
    """Exponential moving average of the generator (StyleGAN's half-life in kimg, with ramp-up)."""

    def __init__(self, model: torch.nn.Module):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def beta(self, cfg: dict, cur_nimg: int) -> float:
        ema_nimg = cfg["ema_kimg"] * 1000
        if cfg["ema_rampup"]:
            ema_nimg = min(ema_nimg, cur_nimg * cfg["ema_rampup"])
        return 0.5 ** (cfg["batch_size"] / max(ema_nimg, 1e-8))

    @torch.no_grad()
    def update(self, model: torch.nn.Module, beta: float) -> None:
        for pe, p in zip(self.model.parameters(), model.parameters()):
            pe.lerp_(p.detach().to(pe.dtype), 1.0 - beta)
        for be, b in zip(self.model.buffers(), model.buffers()):
            be.copy_(b)

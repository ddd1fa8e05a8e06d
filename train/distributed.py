"""Gradient/parameter synchronisation across processes, done by hand instead of DDP."""
from __future__ import annotations

import torch

__all__ = ["sync_gradients", "broadcast_parameters", "all_finite"]


def sync_gradients(module: torch.nn.Module, accelerator) -> None:
    """Average gradients over processes (one flat all-reduce). Done by hand instead of DDP so
    the GAN's several forwards per step, R1's double backward and the unused video-mode
    parameters of D in stage 1 need no special cases."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    if accelerator.num_processes == 1 or not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    flat = accelerator.reduce(flat, reduction="mean")
    i = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[i : i + n].view_as(p))
        i += n


def broadcast_parameters(module: torch.nn.Module, accelerator) -> None:
    if accelerator.num_processes == 1:
        return
    from accelerate.utils import broadcast

    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            t.copy_(broadcast(t.detach().clone()))


def all_finite(accelerator, *values: torch.Tensor) -> bool:
    """True when every process saw finite losses (all processes must agree to stop together)."""
    bad = torch.zeros((), device=accelerator.device)
    for v in values:
        if v is not None and not torch.isfinite(v.detach()).all():
            bad += 1
    return accelerator.reduce(bad, reduction="sum").item() == 0

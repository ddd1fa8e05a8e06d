"""Adam for the fit on the CPU, computed as ``torch.optim.Adam`` computes it there (one tensor at a
time, no weight decay, no amsgrad), bit for bit, without ``torch.optim``: constructing its first
optimizer imports ``torch._dynamo``, about 1.5 s of CPU once per process, which is a tenth of a
whole 32-frame decomposition. Elsewhere (CUDA) ``torch.optim.Adam`` is used as before.
"""
from __future__ import annotations

import torch


class CpuAdam:
    """``param_groups``: [{"params": [...], "lr": float}], as ``torch.optim``'s (the fit sets each
    group's lr before every step)."""

    def __init__(self, groups: list, betas: tuple = (0.9, 0.999), eps: float = 1e-8, lr: float = 1e-3):
        self.param_groups = [{"params": list(g["params"]), "lr": g.get("lr", lr)} for g in groups]
        self.betas, self.eps = betas, eps
        self.state = {}  # parameter -> [step, first moment, second moment]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for group in self.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = [0, torch.zeros_like(p, memory_format=torch.preserve_format), torch.zeros_like(p, memory_format=torch.preserve_format)]
                state[0] += 1
                step, exp_avg, exp_avg_sq = float(state[0]), state[1], state[2]
                grad = p.grad
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = lr / (1 - beta1**step)
                denom = (exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(self.eps)
                p.addcdiv_(exp_avg, denom, value=-step_size)


def adam(groups: list, betas: tuple, device: torch.device):
    """The fit's optimizer: ``CpuAdam`` on the CPU, ``torch.optim.Adam`` elsewhere."""
    if device.type == "cpu":
        return CpuAdam(groups, betas=betas)
    return torch.optim.Adam(groups, betas=betas)

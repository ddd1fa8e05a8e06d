"""Stage 2's drift start (train key ``drift_start_steps``): before the adversarial steps, G_d (and the
motion code's mapping) are fitted so that every video drifts, as a whole, at ``drift_start_speed`` % of
the side a frame, each video in a direction of its own. G_c, D and every other weight are left as loaded.

Why (train/README 11, "the blur valley"): at 64 px a stage-2 D scores G's still clips *above* the same
clips moving a little (a sub-pixel shift blurs the canonical image and a shift reveals the padding),
and above the still clips only past ~0.5 % of the side a frame. A zero-initialised field sits at the
bottom of G's loss in that valley, so D's gradient keeps it still however firmly D asks for motion.
The drift start places the field past the valley; the adversarial steps then shape its motion.

The fit asks only for the motion's form, not its direction (D scores a clip and its reverse alike, and
G_d's clock has a random phase per video, so a direction tied to time cannot be learnt): each clip's mean
offset must move at ``drift_start_speed`` on a straight line at constant velocity, with the frame moving
as a whole (its spatial spread weighted by ``UNIFORMITY``). All terms in pixels.

``drift_start_profile`` shapes the frame's motion by row (``PROFILES``): ``uniform`` moves every row alike;
``sky`` moves the top row at the asked speed and slows towards a static horizon, as the procedural skies'
clouds do (their perspective and haze at the data's mean horizon and flatness, gendef.data.synthetic). A
stage-2 D learns within a few kimg that the horizon does not move, and then scores a whole-frame drift
below a still clip (train/README 11).
"""
from __future__ import annotations

import math
from typing import Callable, List, Tuple

import torch

__all__ = ["PROFILES", "drift_loss", "fit_drift", "row_profile"]


UNIFORMITY = 0.1
PROFILES = ("uniform", "sky")
SKY_HORIZON = 0.22  # the procedural skies' mean horizon, fraction of the frame from the bottom
SKY_FLATNESS = 1.3  # their mean flatness: speed (s + e) / (1 + e) at height s above the horizon
SKY_HAZE = 0.3  # clouds fade in over the lowest 0.3 of the sky


def row_profile(name: str, rows: int) -> torch.Tensor:
    """[rows] weights, top row first: how fast each row drifts, relative to the top row."""
    if name not in PROFILES:
        raise ValueError(f"drift_start_profile must be one of {PROFILES}, got {name!r}")
    if name == "uniform":
        return torch.ones(rows)
    height = 1.0 - (torch.arange(rows, dtype=torch.float64) + 0.5) / rows
    s = ((height - SKY_HORIZON) / (1.0 - SKY_HORIZON)).clamp(0.0, 1.0)
    x = (s / SKY_HAZE).clamp(0.0, 1.0)
    haze = x * x * (3.0 - 2.0 * x)
    return ((s + SKY_FLATNESS) / (1.0 + SKY_FLATNESS) * haze).float()


def drift_loss(offset: torch.Tensor, times: torch.Tensor, speed_px: float,
               profile: torch.Tensor = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """(loss, per-clip speed in px a frame) for offsets [B, T, H, W, 2] in pixels at times [B, T].

    With a row ``profile`` [H] the clip's drift is the least-squares amplitude of the offset along it, and
    the speed that of a row of weight 1; without one, every row alike (the amplitude is the mean offset)."""
    w = torch.ones(offset.shape[2]) if profile is None else profile
    w = w.to(offset)[None, None, :, None, None]
    mean = (offset * w).sum(dim=(2, 3)) / (w.pow(2).sum() * offset.shape[3])  # [B, T, 2]
    span = (times[:, -1] - times[:, 0]).clamp(min=1e-6)[:, None]
    velocity = (mean[:, -1] - mean[:, 0]) / span
    speed = velocity.norm(dim=-1)
    line = mean[:, :1] + velocity[:, None] * (times - times[:, :1])[..., None]
    spread = (offset - mean[:, :, None, None] * w).pow(2).mean()
    loss = (speed - speed_px).pow(2).mean() + (mean - line).pow(2).mean() + UNIFORMITY * spread
    return loss, speed


def _trainable(G) -> List[torch.nn.Parameter]:
    params = list(G.deformation.parameters()) + list(G.motion.parameters())
    return [p for p in params if p.requires_grad]


def fit_drift(G, steps: int, speed_pct: float, batch: int, draw_times: Callable[[int], torch.Tensor],
              lr: float, log: Callable[[str], None] = print,
              profile: str = "uniform") -> List[Tuple[int, float, float]]:
    """Fit G_d to the drift for ``steps`` Adam steps; returns (step, loss, mean speed % a frame) every 10 %.

    ``draw_times(b)`` gives [b, T] clip times (the stage's own sampling); ``profile`` names the rows' speeds."""
    weights = row_profile(profile, G.resolution).to(G.device)
    params = _trainable(G)
    opt = torch.optim.Adam(params, lr=lr, betas=(0.0, 0.99), eps=1e-8)
    side = float(G.resolution)
    history = []
    every = max(1, steps // 10)
    for step in range(1, steps + 1):
        times = draw_times(batch).to(G.device)
        z_c, z_d, noise = G.make_latents(batch, int(math.ceil(float(times.max()))) + 1)
        with torch.no_grad():
            canon = G.canonical(z_c)
        out = G.generate(z_c, z_d, noise, times, canonical=canon)
        offset = (out["grid_norm"].float() - G.base_grid.float()) * ((side - 1) / 2)  # pixels
        loss, speed = drift_loss(offset, times.float(), speed_pct / 100 * side, weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0 or step == steps:
            history.append((step, float(loss.detach()), float(speed.detach().mean()) / side * 100))
            log(f"drift start {step}/{steps}: loss {history[-1][1]:.4f} px^2, "
                f"speed {history[-1][2]:.3f}% of the side a frame (target {speed_pct:g})")
    opt.zero_grad(set_to_none=True)
    return history

"""The blur valley (issue 27): how a stage-2 D scores G's own canonical images held still, shifted by a
sub-pixel offset, and drifting at a given speed.

    python -m benchmarks.d_valley EXPORT [--clips 48] [--gap 16] [--shifts 0,0.25,0.5,1] [--speeds 0,0.1,0.33,0.5,1]
        [--sky] [--field-scales 0,0.5,1,2]

EXPORT is a folder with a stage-2 model (``GenDeF.from_pretrained``) and its D (``discriminator.safetensors``
+ ``discriminator_config.json``, as a finetune export writes them). Each clip is three frames at times
t, t + gap/2, t + gap of one canonical image (G_c of a fixed latent, noise "const"), warped with the model's
own ``warp`` (its padding) through:

- a **static shift**: every frame moved by the same offset (px, along x): no motion, only resampling blur
  and the padding the shift reveals;
- a **drift**: a uniform translation at the speed given (% of the side a frame, direction drawn per clip),
  0 at the middle frame; ``--sky`` scales it from 1 at the top row to 0.3 at the bottom.

``--field-scales`` adds G's own clips (its field, from the same latents and times) with the field scaled by
each factor (0: still, 1: as G draws it), and the speed that gives (grid, first to last frame).

Printed: mean D logit over the clips per row (higher = more real). If small drifts score below the still
clip and only large ones above it, a zero-initialised field sits in a valley of G's loss.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def load(export: Path):
    """(G, D) from an export folder, float32, eval."""
    from safetensors.torch import load_file

    from gendef import GenDeF
    from gendef.generator.networks.discriminator import Discriminator

    G = GenDeF.from_pretrained(str(export)).eval()
    cfg = json.loads((export / "discriminator_config.json").read_text())
    D = Discriminator(**cfg)
    D.load_state_dict({k: v.float() for k, v in load_file(str(export / "discriminator.safetensors")).items()})
    return G, D.eval()


def clips_of(G, n: int, gap: int, seed: int):
    """Canonical images [n, 3, R, R], clip times [n, 3] and drift directions [n, 2]."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.z_dim, generator=g)
    times = torch.randint(0, 16, (n, 1), generator=g).float() + torch.tensor([0.0, gap / 2, gap])
    angle = torch.rand(n, generator=g) * 2 * torch.pi
    with torch.no_grad():
        img, _ = G.canonical(z, 1.0, "const")
    return img, times, torch.stack([angle.cos(), angle.sin()], -1)


@torch.no_grad()
def score(G, D, img, times, offsets) -> float:
    """Mean D logit of the clips whose grids are identity + offsets [n, 3, R|1, R|1, 2] (normalised)."""
    grid = G.base_grid + offsets
    grid = grid.expand(img.shape[0], times.shape[1], *G.base_grid.shape)
    return D(G.warp(img, grid), times).float().mean().item()


@torch.no_grad()
def own_field(G, D, n: int, gap: int, seed: int, scale: float):
    """(mean D logit, speed % of the side a frame) of G's own clips, its field times ``scale``."""
    g = torch.Generator().manual_seed(seed)
    z_c, z_d, noise = G.make_latents(n, gap + 24, generator=g)
    times = torch.randint(0, 16, (n, 1), generator=g).float() + torch.tensor([0.0, gap / 2, gap])
    out = G.generate(z_c, z_d, noise, times, noise_mode="const")
    grid = G.base_grid + scale * (out["grid_norm"] - G.base_grid)
    speed = (grid[:, -1] - grid[:, 0]).norm(dim=-1).mean().item() / 2 * 100 / gap
    return D(G.warp(out["canonical"], grid), times).float().mean().item(), speed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export", type=Path)
    ap.add_argument("--clips", type=int, default=48)
    ap.add_argument("--gap", type=int, default=16)
    ap.add_argument("--shifts", default="0,0.25,0.5,1")
    ap.add_argument("--speeds", default="0,0.1,0.33,0.5,1")
    ap.add_argument("--sky", action="store_true", help="drift 1x at the top row, 0.3x at the bottom")
    ap.add_argument("--field-scales", default="", help="also G's own clips, its field scaled by each factor")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    G, D = load(a.export)
    img, times, direction = clips_of(G, a.clips, a.gap, a.seed)
    r = G.resolution
    unit = 2.0 / (r - 1)  # one pixel in normalised units (align_corners=True)
    print(f"{a.export}: {a.clips} clips, {r} px, gap {a.gap}, padding {G.warp_padding}")
    print("| clips | mean D logit |\n|---|---:|")
    for px in (float(s) for s in a.shifts.split(",")):
        off = torch.zeros(1, 1, 1, 1, 2)
        off[..., 0] = px * unit
        print(f"| static shift {px:g} px | {score(G, D, img, times, off):.3f} |")
    rows = torch.linspace(1.0, 0.3, r).view(1, 1, r, 1, 1) if a.sky else torch.ones(1, 1, 1, 1, 1)
    for v in (float(s) for s in a.speeds.split(",")):
        per_frame = 2.0 * v / 100.0
        off = per_frame * (times - times[:, 1:2])[:, :, None, None, None] * direction[:, None, None, None, :] * rows
        print(f"| drift {v:g} % a frame{' (sky)' if a.sky else ''} | {score(G, D, img, times, off):.3f} |")
    for k in (float(x) for x in a.field_scales.split(",") if x):
        logit, speed = own_field(G, D, a.clips, a.gap, a.seed, k)
        print(f"| G's own field x{k:g} ({speed:.2f} % a frame) | {logit:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

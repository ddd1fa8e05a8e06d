"""Toy-scale replication of the paper's ablations on the default model's dataset.

    python benchmarks/ablation_default.py --data data/sky32 \
        full=runs/sky32/stage2 no_lreg=runs/sky32/stage2_noreg frozen=runs/sky32/stage2_frozen

For each stage-2 checkpoint: FVD16 between generated and real 16-frame clips, with a *fixed
randomly initialised* I3D (seeded; no pretrained detector can be downloaded here, so the numbers
are only comparable with each other), and motion statistics of the sampled grids: mean speed
|F_t->t+1| and mean jerk |F_t->t+1 - F_t+1->t+2| in pixels per frame (paper eq. 4's quantity).
Prints a markdown table.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch


from gendef import GenDeF
from gendef.metrics import fvd
from gendef.metrics.i3d import I3DFeatures, InceptionI3d


def motion_stats(model: GenDeF, num_videos: int, frames: int) -> tuple:
    vids = model.sample_batch(list(range(10_000, 10_000 + num_videos)), num_frames=frames)
    g = np.stack([v.grid for v in vids]).astype(np.float64)  # [N, T, H, W, 2]
    f = g[:, 1:] - g[:, :-1]
    speed = np.linalg.norm(f, axis=-1).mean()
    jerk = np.linalg.norm(f[:, 1:] - f[:, :-1], axis=-1).mean()
    return float(speed), float(jerk)


def random_i3d(size: int) -> I3DFeatures:
    """A fixed random I3D. Kaiming init keeps activations at unit scale through the depth;
    the default init lets them vanish (features ~1e-6, every distance ~0)."""
    torch.manual_seed(1234)
    net = InceptionI3d().eval()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return I3DFeatures(net, size=size, features="pool").eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="name=checkpoint_folder")
    ap.add_argument("--data", required=True)
    ap.add_argument("--num-videos", type=int, default=256)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--i3d-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    det = random_i3d(a.i3d_size)
    rows = []
    for spec in a.runs:
        name, path = spec.split("=", 1)
        model = GenDeF.from_pretrained(path)
        score = fvd(model, a.data, num_frames=a.frames, num_videos=a.num_videos, detector=det, size=a.i3d_size, batch_size=16, seed=a.seed)
        speed, jerk = motion_stats(model, min(a.num_videos, 64), a.frames)
        rows.append((name, score, speed, jerk))
        print(f"{name}: FVD{a.frames}(random I3D)={score:.2f} speed={speed:.4f} jerk={jerk:.5f}", flush=True)
    print()
    print(f"| variant | FVD{a.frames} (random-init I3D, {a.num_videos} clips) | mean speed (px/frame) | mean jerk (px/frame²) |")
    print("|---|---|---|---|")
    for name, score, speed, jerk in rows:
        print(f"| {name} | {score:.2f} | {speed:.4f} | {jerk:.5f} |")


if __name__ == "__main__":
    main()

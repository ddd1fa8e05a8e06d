"""Where stage 2's activation memory goes: bytes saved for the backward, per module, in one G step.

    python benchmarks/stage2_memory.py                                    # sky256.yaml at 64 px, batch 2 (CPU)
    python benchmarks/stage2_memory.py --resolution 256 --batch 16 --device cuda
    python benchmarks/stage2_memory.py checkpoint_deformation=true        # the same with G_d + warp recomputed

One G step of train/finetune.py's shape (G_c once per clip, G_d + warp for the clip's frames,
D on the clip, L_reg's three adjacent frames through G_d + warp again) under
``torch.autograd.graph.saved_tensors_hooks``: every tensor autograd keeps for the backward is
counted once (by storage) against the module that was running when it was saved (two levels
deep: ``G.canonical``, ``G.deformation``, ``D.blocks``, ...). That is what stays allocated until
the backward, i.e. the peak's activation part; weights, gradients and Adam's moments come on top.
"""
from __future__ import annotations

import argparse
import collections
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def track(modules: dict):
    """Module-name stack via hooks; returns (stack, handles)."""
    stack, handles = [], []
    for prefix, root in modules.items():
        for name, m in root.named_modules():
            depth = name.count(".") + 1 if name else 0
            if depth > 1:
                continue
            label = f"{prefix}.{name}" if name else prefix
            handles.append(m.register_forward_pre_hook(lambda mod, args, label=label: stack.append(label)))
            handles.append(m.register_forward_hook(lambda mod, args, out: stack.pop() and None))
    return stack, handles


def measure(G, D, cfg: dict, batch: int, device) -> collections.Counter:
    from train.speed import apply_switches

    apply_switches(cfg, G, D)
    stack, handles = track({"G": G, "D": D})
    saved, seen = collections.Counter(), set()

    def pack(t):
        key = (t.untyped_storage().data_ptr(), t.dtype)
        if key not in seen:
            seen.add(key)
            saved[stack[-1] if stack else "(no module: warp, grid, losses)"] += t.untyped_storage().nbytes()
        return t

    k = int(cfg["clip_frames"])
    times = torch.sort(torch.rand(batch, k) * 30, dim=1).values.to(device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        z_c, z_d, noise = G.make_latents(batch, int(math.ceil(float(times.max()))) + 3, device=device)
        canon = G.canonical(z_c)
        out = G.generate(z_c, z_d, noise, times, canonical=canon)
        loss = torch.nn.functional.softplus(-D(out["frames"], times)).mean()
        adj = G.generate(z_c, z_d, noise, times[:, :1] + torch.tensor([0.0, 1.0, 2.0], device=device), canonical=canon)
        loss = loss + adj["grid_norm"].float().diff(dim=1).square().mean()
    for h in handles:
        h.remove()
    loss.backward()
    return saved


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "train" / "configs" / "sky256.yaml"))
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("overrides", nargs="*", help="train config key=value (e.g. checkpoint_deformation=true)")
    args = p.parse_args(argv)
    from gendef import GenDeF
    from gendef.generator.networks.discriminator import Discriminator
    from train.config import load_config

    cfg = load_config(args.config, [f"model.resolution={args.resolution}", *args.overrides], "finetune")
    if args.resolution != 256 and cfg["model"].get("canonical_feature_layer"):
        cfg["model"]["canonical_feature_layer"] = None  # the layer numbers shift with the resolution: default
    torch.manual_seed(0)
    G = GenDeF(**cfg["model"]).to(args.device).train()
    D = Discriminator(resolution=args.resolution, **{**cfg["disc"], "num_frames": int(cfg["clip_frames"])}).to(args.device)
    saved = measure(G, D, cfg, args.batch, args.device)
    total = sum(saved.values())
    print(f"{Path(args.config).name} at {args.resolution} px, batch {args.batch} clips x {cfg['clip_frames']} frames "
          f"(+3 for L_reg), {' '.join(args.overrides) or 'no switches'}; torch {torch.__version__}\n")
    print("| module | saved for backward (MiB) | share |\n|---|---:|---:|")
    for name, n in saved.most_common():
        print(f"| {name} | {n / 2**20:.1f} | {100 * n / total:.0f} % |")
    print(f"| total | {total / 2**20:.1f} | 100 % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How much a stage-2 discriminator prefers real sky clips that move over the same clips held still
(issue 27: does D ask G_d for motion at all?).

    python -m benchmarks.d_motion runs/sky64/p2-D/pack [--clips 64] [--gaps 2,4,8,16] [--seed 100000]

Real 3-frame clips come from the procedural sky generator (``gendef.data.synthetic.render_clip``, the
training data's own distribution, seeds the training set never used) at times t, t + d/2, t + d. Each
is scored by the pack's D as it is, **frozen** (its first frame three times, same times) and
**reversed** (frames in reverse order). Printed per gap d: mean logit of the real clips, mean
real - frozen and real - reversed margins, the share of clips scored above their frozen copy, and
the std of the real logits over clips (the scale the margins compare with).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def load_d(pack: Path):
    """The pack's D (video mode), float32, eval."""
    from safetensors.torch import load_file

    from gendef.generator.networks.discriminator import Discriminator

    cfg = json.loads((pack / "state.json").read_text())["config"]
    res = int(cfg["resolution"] or cfg["model"]["resolution"])
    D = Discriminator(**{"resolution": res, **cfg["disc"], "num_frames": int(cfg["clip_frames"])})
    D.load_state_dict({k: v.float() for k, v in load_file(str(pack / "D.safetensors")).items()})
    return D.eval(), res


def clips(n: int, res: int, seed: int, frames: int = 32) -> torch.Tensor:
    """[n, frames, 3, res, res] in [-1, 1]."""
    from gendef.data.synthetic import render_clip

    x = np.stack([render_clip(seed + i, frames, res) for i in range(n)])
    return torch.from_numpy(x).permute(0, 1, 4, 2, 3).float().div(127.5).sub(1.0)


@torch.no_grad()
def margins(D, videos: torch.Tensor, gap: int, seed: int) -> dict:
    n, length = videos.shape[:2]
    g = torch.Generator().manual_seed(seed + gap)
    t0 = torch.randint(0, length - gap, (n,), generator=g)
    idx = torch.stack([t0, t0 + gap // 2, t0 + gap], 1)
    real = torch.stack([videos[i, idx[i]] for i in range(n)])
    times = idx.float()
    frozen = real[:, :1].expand_as(real).contiguous()
    reversed_ = real.flip(1).contiguous()
    r, f, b = (D(x, times).float() for x in (real, frozen, reversed_))
    return {"gap": gap, "real": r.mean().item(), "real-frozen": (r - f).mean().item(),
            "real-reversed": (r - b).mean().item(), "above_frozen": (r > f).float().mean().item(),
            "std_real": r.std().item()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pack", type=Path)
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--gaps", default="2,4,8,16")
    ap.add_argument("--seed", type=int, default=100000)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    D, res = load_d(a.pack)
    videos = clips(a.clips, res, a.seed)
    print(f"{a.pack}: {a.clips} clips at {res} px")
    print("gap  real logit  real-frozen  real-reversed  above frozen  std(real)")
    for gap in (int(x) for x in a.gaps.split(",")):
        m = margins(D, videos, gap, a.seed)
        print(f"{gap:>3}  {m['real']:>10.3f}  {m['real-frozen']:>11.3f}  {m['real-reversed']:>13.3f}  "
              f"{m['above_frozen']:>11.0%}  {m['std_real']:>9.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""benchmarks/d_motion.py: a pack's D scoring real clips against the same clips held still."""
import json

import torch
from safetensors.torch import save_file

from benchmarks.d_motion import load_d, margins
from gendef.generator.networks.discriminator import Discriminator

DISC = {"channel_base": 256, "channel_max": 32, "merge_resolution": 8, "tsm": True}


def _pack(tmp_path):
    torch.manual_seed(0)
    D = Discriminator(resolution=16, num_frames=3, **DISC)
    save_file({k: v.to(torch.bfloat16) for k, v in D.state_dict().items()}, str(tmp_path / "D.safetensors"))
    cfg = {"resolution": None, "model": {"resolution": 16}, "disc": DISC, "clip_frames": 3}
    (tmp_path / "state.json").write_text(json.dumps({"config": cfg}))
    return tmp_path


def test_a_still_clip_scores_as_its_frozen_copy_and_a_moving_one_does_not(tmp_path):
    D, res = load_d(_pack(tmp_path))
    assert res == 16
    still = torch.rand(1, 1, 3, 16, 16).mul(2).sub(1).expand(6, 12, -1, -1, -1).contiguous()
    m = margins(D, still, gap=4, seed=0)
    assert m["real-frozen"] == 0.0 and m["real-reversed"] == 0.0 and m["above_frozen"] == 0.0
    moving = torch.stack([torch.roll(still[:, 0], shifts=t, dims=-1) for t in range(12)], 1)
    m = margins(D, moving, gap=4, seed=0)
    assert abs(m["real-frozen"]) > 1e-4 and 0.0 <= m["above_frozen"] <= 1.0

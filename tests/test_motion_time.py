"""retime_motion (train/README 11): with 32-frame videos, a 256-frame motion period leaves u_t nearly
constant over every training clip, so a zero-initialised G_d gets almost no gradient towards motion."""
import json

import pytest
import torch

from gendef import GenDeF
from train.batches import sample_generator_times
from train.config import load_config
from train.errors import TrainError
from train.finetune import retimed_motion

TINY = dict(resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=32, mapping_layers=2,
            canonical_feature_dim=8, deformation_channel_base=128, deformation_channel_max=16, motion_noise_dim=8,
            motion_code_dim=8, time_num_freqs=4, time_min_period=256, time_max_period=4096, motion_anchor_spacing=256,
            motion_mapping="stylegan_v", motion_input="const", share_latent=True, deformation_init="zero")
RETIME = {"time_min_period": 32, "time_max_period": 1024, "motion_anchor_spacing": 32}


def _stage1():
    torch.manual_seed(0)
    return GenDeF(**TINY)


def _fit_motion(G, steps: int = 40, batch: int = 8):
    """G_d alone fits a per-clip uniform field: a static offset plus a velocity (what D's gradient asks
    for on sky data), on 3-frame clips at the trainer's times in 32-frame videos. Returns the velocity
    it reached as a fraction of the target's, per clip, averaged."""
    torch.manual_seed(1)
    g = torch.Generator().manual_seed(1)
    times = sample_generator_times(batch, 3, 32, [32], 1024, "cpu")
    z, _, noise = G.make_latents(batch, 34, generator=g)
    with torch.no_grad():
        canon = G.canonical(z)
    vel = torch.randn(batch, 2, generator=g) * 0.02  # normalised units per frame (0.16 px at 16 px)
    off = torch.randn(batch, 2, generator=g) * 0.05
    dt = times - times.mean(1, keepdim=True)
    target = (off[:, None] + vel[:, None] * dt[..., None])[..., None, None]  # [B, 3, 2, 1, 1]
    opt = torch.optim.Adam(G.deformation.parameters(), lr=0.0025, betas=(0.0, 0.99))
    for _ in range(steps):
        field = G.deformation(z, G.motion(noise, times), canon[1])
        loss = (field - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    mean = field.detach().mean((-1, -2))  # [B, 3, 2]
    reached = (mean * dt[..., None]).sum(1) / dt.pow(2).sum(1, keepdim=True)
    return float((reached * vel).sum(-1).div(vel.pow(2).sum(-1)).mean())


def test_retimed_motion_keeps_every_weight_and_changes_only_the_time_constants():
    G = _stage1()
    new = retimed_motion(G, TINY, RETIME)
    assert new.motion.anchor_spacing == 32 and G.motion.anchor_spacing == 256
    assert torch.allclose(new.motion.omega.max(), torch.tensor(2 * torch.pi / 32))
    old, now = G.state_dict(), new.state_dict()
    changed = [k for k in old if not torch.equal(old[k], now[k])]
    assert changed == ["motion.omega", "motion.phase_scale"]
    with pytest.raises(TrainError):
        retimed_motion(G, TINY, {"time_num_freqs": 8})


def test_u_barely_changes_over_a_clip_with_a_256_frame_period():
    """u_t over frames 0..31 (spread about its clip mean, relative to |u|): small with P_min = spacing =
    256 (the tiny model: 15 %; sky64's export: 5 % on 3-frame clips), over 3x more with 32."""
    def within_clip(G):
        noise = G.motion.make_noise(64, 33, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            u = G.motion(noise, torch.arange(32.0)[None].expand(64, -1))
        return float(((u - u.mean(1, keepdim=True)).norm(dim=-1).mean() / u.norm(dim=-1).mean()))
    G = _stage1()
    slow, fast = within_clip(G), within_clip(retimed_motion(G, TINY, RETIME))
    assert slow < 0.2 and fast > 3 * slow


def test_a_retimed_field_learns_to_move_where_the_paper_time_constants_barely_do():
    slow = _fit_motion(_stage1())
    fast = _fit_motion(retimed_motion(_stage1(), TINY, RETIME))
    assert slow < 0.06 and fast > max(0.1, 3 * slow)  # seeds 0-3: slow 0.00-0.04, fast 0.12-0.21


def test_retime_motion_is_off_by_default_and_sky64_stage2_turns_it_on():
    assert load_config(None, [], "finetune")["retime_motion"] is False
    s1 = load_config("train/configs/sky64.yaml", [], "pretrain")
    s2 = load_config("train/configs/sky64.yaml", [], "finetune")
    assert not s1["retime_motion"] and s1["model"]["time_min_period"] == 256
    assert s2["retime_motion"] and {k: s2["model"][k] for k in RETIME} == dict(RETIME, time_min_period=16,
                                                                                 motion_anchor_spacing=16)

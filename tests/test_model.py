"""GenDeF networks: zero-initialised deformation, determinism, persistence, D modes, losses."""
import json

import numpy as np
import pytest
import torch

from gendef import GenDeF
from gendef.generator import losses
from gendef.errors import CheckpointError
from tests.networks_by_keyword import CanonicalGenerator
from gendef.generator.networks.discriminator import Discriminator


def test_fresh_generator_renders_every_frame_as_its_canonical(tiny_model):
    z = tiny_model.make_latents(2, 5, generator=torch.Generator().manual_seed(0))
    out = tiny_model.generate(*z, torch.arange(5.0))
    canon = out["canonical"]
    assert torch.allclose(out["frames"], canon[:, None].expand_as(out["frames"]), atol=1e-5)
    vid = tiny_model.sample(seed=3, num_frames=8)
    assert np.abs(vid.render() - vid.canonical[None]).max() < 1e-5


def test_gradients_reach_zero_initialised_to_out(tiny_model):
    last = tiny_model.deformation.to_outs[-1]
    assert last.conv.weight.abs().max() == 0 and last.bias.abs().max() == 0
    z = tiny_model.make_latents(2, 3, generator=torch.Generator().manual_seed(1))
    out = tiny_model.generate(*z, torch.tensor([0.0, 1.0, 2.0]))
    target = torch.rand_like(out["frames"])
    (out["frames"] - target).pow(2).mean().backward()
    assert last.conv.weight.grad.abs().sum() > 0
    assert last.bias.grad.abs().sum() > 0


def test_sampling_is_deterministic_and_motion_seed_changes_only_motion(tiny_checkpoint):
    m = GenDeF.from_pretrained(tiny_checkpoint)
    a = m.sample(seed=5, num_frames=6)
    b = m.sample(seed=5, num_frames=6)
    assert np.array_equal(a.canonical, b.canonical) and np.array_equal(a.grid, b.grid)
    c = m.sample(seed=5, num_frames=6, motion_seed=99)
    assert np.array_equal(a.canonical, c.canonical)
    assert np.abs(a.grid - c.grid).mean() > 1e-3
    d = m.sample(seed=6, num_frames=6)
    assert np.abs(a.canonical - d.canonical).mean() > 1e-3


def test_short_clip_is_a_prefix_of_a_long_one_and_batch_equals_single(tiny_checkpoint):
    m = GenDeF.from_pretrained(tiny_checkpoint)
    long = m.sample(seed=2, num_frames=40)
    short = m.sample(seed=2, num_frames=16)
    assert np.allclose(long.grid[:16], short.grid, atol=1e-5)
    batch = m.sample_batch([2, 7], num_frames=16)
    assert np.allclose(batch[0].grid, short.grid, atol=1e-4)
    assert np.allclose(batch[0].canonical, short.canonical, atol=1e-5)
    assert np.allclose(batch[1].canonical, m.sample(seed=7, num_frames=16).canonical, atol=1e-5)


def test_network_frames_equal_canonical_video_render(tiny_checkpoint):
    """The training-time warp and the CanonicalVideo renderer agree (one grid convention)."""
    m = GenDeF.from_pretrained(tiny_checkpoint)
    vid = m.sample(seed=1, num_frames=4)
    assert np.abs(vid.grid - np.mgrid[0:16, 0:16][::-1].transpose(1, 2, 0)[None]).max() > 0.3
    from gendef.generator.model import _generator

    z_c = torch.randn(1, m.z_dim, generator=_generator(1, 0))
    z_d = torch.randn(1, m.z_dim, generator=_generator(1, 1))
    noise = m.motion.make_noise(1, 3, generator=_generator(1, 2))
    with torch.no_grad():
        out = m.generate(z_c, z_d, noise, torch.arange(4.0), noise_mode="const")
        warped = m.warp(out["canonical"].clamp(-1, 1), out["grid_norm"])  # stored canonical is clamped
    frames = ((warped[0] + 1) / 2).permute(0, 2, 3, 1).numpy()
    assert np.abs(frames - vid.render()).max() < 1e-4


def test_feature_layer_selection_shapes():
    g = CanonicalGenerator(resolution=32, z_dim=8, w_dim=8, channel_base=512, channel_max=32, mapping_layers=1)
    assert g.num_layers == 8  # 1 + 2*3 convs + RGB, cf. 14 layers at 256 px
    assert g.feature_layer == 7
    z = torch.randn(2, 8)
    for layer, (ch, res) in enumerate(g.layer_shapes(), start=1):
        img, feat = g.synthesis(g.mapping(z), feature_layer=layer)
        assert feat.shape == (2, ch, res, res)
    assert img.shape == (2, 3, 32, 32)
    assert CanonicalGenerator(resolution=256, z_dim=8, w_dim=8, channel_base=256, channel_max=8).num_layers == 14
    with pytest.raises(ValueError, match="canonical_feature_layer"):
        CanonicalGenerator(resolution=32, feature_layer=9)


def test_rgb_output_as_feature_layer_builds(tiny_gendef_kwargs):
    kw = dict(tiny_gendef_kwargs, canonical_feature_layer=6)  # 16 px: 5 convs + RGB
    m = GenDeF(**kw)
    assert m.canonical.feature_channels == 3
    assert m.sample(seed=0, num_frames=2).num_frames == 2


def test_save_load_round_trip_gives_identical_outputs(tmp_path, tiny_checkpoint):
    m = GenDeF.from_pretrained(tiny_checkpoint)
    m.save_pretrained(tmp_path / "again")
    m2 = GenDeF.from_pretrained(tmp_path / "again")
    a, b = m.sample(seed=4, num_frames=5), m2.sample(seed=4, num_frames=5)
    assert np.array_equal(a.canonical, b.canonical) and np.array_equal(a.grid, b.grid)
    assert json.loads((tmp_path / "again" / "config.json").read_text())["resolution"] == 16


def test_corrupt_checkpoints_give_clear_errors(tmp_path, tiny_checkpoint):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, bad)
    raw = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(CheckpointError, match="cannot load"):
        GenDeF.from_pretrained(bad)
    (bad / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing model.safetensors"):
        GenDeF.from_pretrained(bad)
    mism = tmp_path / "mismatch"
    shutil.copytree(tiny_checkpoint, mism)
    cfg = json.loads((mism / "config.json").read_text())
    cfg["channel_max"] = 64
    (mism / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError):
        GenDeF.from_pretrained(mism)
    (mism / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        GenDeF.from_pretrained(mism)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        GenDeF.from_pretrained(tmp_path / "nope")


def test_discriminator_modes_and_stage1_transfer():
    torch.manual_seed(0)
    d = Discriminator(16, channel_base=256, channel_max=32, num_frames=3)
    img = torch.randn(4, 3, 16, 16)
    assert d(img).shape == (4,)
    clip = img[:, None].expand(-1, 3, -1, -1, -1)
    times = torch.tensor([[0, 1, 2], [0, 3, 9], [0, 5, 6], [0, 2, 4]])
    assert d(clip, times).shape == (4,)
    with pytest.raises(ValueError, match="3 frames"):
        d(torch.randn(2, 2, 3, 16, 16), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="frame times"):
        d(clip)
    # stage-1 weights load into a stage-2 D unchanged (more in test_recipe.py)
    d2 = Discriminator(16, channel_base=256, channel_max=32, num_frames=3)
    d2.load_state_dict(d.state_dict())
    assert torch.allclose(d2(img), d(img))


def test_flow_regularization_legacy_form_is_zero_for_constant_velocity_and_positive_otherwise():
    g = torch.rand(2, 8, 8, 2) * 2 - 1
    v = torch.rand(2, 8, 8, 2) * 0.1
    assert losses.flow_regularization(g, g + v, g + 2 * v, form="legacy").item() < 1e-5  # float32 rounding only
    jerk = torch.zeros(2, 8, 8, 2)
    jerk[:, 2:5, 2:5] = 0.3
    val = losses.flow_regularization(g, g + v, g + 2 * v + jerk, form="legacy").item()
    assert val > 0.05
    # edges in the frame down-weight the penalty there
    edges = torch.zeros(2, 3, 8, 8) - 1
    edges[..., ::2] = 1.0
    assert losses.flow_regularization(g, g + v, g + 2 * v + jerk, image=edges, form="legacy").item() < val


def test_gan_losses_and_r1_values():
    real = torch.tensor([0.0, 0.0])
    fake = torch.tensor([0.0])
    assert abs(losses.d_logistic(real, fake).item() - 2 * np.log(2)) < 1e-6
    assert abs(losses.g_nonsaturating(fake).item() - np.log(2)) < 1e-6
    x = torch.randn(3, 4, requires_grad=True)
    w = torch.tensor([1.0, 2.0, 0.0, -2.0])
    assert abs(losses.r1_penalty((x * w).sum(1), x).item() - 9.0) < 1e-5


def test_generator_runs_under_autocast(tiny_checkpoint):
    m = GenDeF.from_pretrained(tiny_checkpoint)
    z = m.make_latents(2, 3, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m.generate(*z, torch.arange(3.0))
        logits = Discriminator(16, channel_base=256, channel_max=32)(out["frames"], torch.tensor([[0, 1, 2]] * 2))
    assert torch.isfinite(out["frames"].float()).all() and torch.isfinite(logits.float()).all()


def test_refresh_w_avg_makes_truncation_pull_towards_the_mean(tiny_checkpoint):
    m = GenDeF.from_pretrained(tiny_checkpoint)
    assert m.canonical.mapping.w_avg.abs().sum() == 0
    m.refresh_w_avg(num_samples=2048)
    z = torch.randn(4096, m.z_dim, generator=torch.Generator().manual_seed(5))
    mean = m.canonical.mapping(z).mean(0)
    assert torch.allclose(m.canonical.mapping.w_avg, mean, atol=0.05 * mean.abs().max().item() + 1e-3)
    assert m.deformation.mapping.w_avg.abs().sum() > 0
    # psi = 0 gives every seed the same canonical image: the mean one
    a = m.sample(seed=1, num_frames=2, truncation_psi=0.0).canonical
    b = m.sample(seed=2, num_frames=2, truncation_psi=0.0).canonical
    assert np.abs(a - b).max() < 1e-5

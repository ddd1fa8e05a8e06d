"""Issue 11: the paper's recipe element by element (motion code, G_d input, shared z, init,
video D, R1 averaging, L_reg units). One test per row of the table in train/README.md."""
import json
import math

import numpy as np
import pytest
import torch

from gendef import GenDeF
from gendef.generator import losses
from gendef.generator.model import PAPER_RECIPE, RECIPE_DEFAULTS
from gendef.generator.networks.discriminator import VIDEO_ONLY_PREFIXES, Discriminator, temporal_shift
from gendef.generator.networks.motion_codes import MotionEncoder, StyleGANVMotion


def _motion(**kw):
    torch.manual_seed(0)
    args = dict(noise_dim=8, code_dim=8, anchor_spacing=4.0, num_freqs=6, min_period=4.0, max_period=64.0, kernel_size=3)
    args.update(kw)
    return StyleGANVMotion(**args)


# ----------------------------------------------------------------------------- motion code u_t
def test_stylegan_v_motion_shapes_and_prefix_stable_noise():
    m = _motion()
    noise = m.make_noise(2, 20, generator=torch.Generator().manual_seed(1))
    assert noise.shape == (2, m.num_anchors(20) + 2 * (3 - 1), 8)  # anchors + two unpadded k=3 convs
    t = torch.tensor([[0.0, 3.0, 7.5], [1.25, 16.0, 20.0]])
    u = m(noise, t)
    assert u.shape == (2, 3, 12) and m.out_dim == 12
    # a longer video's noise extends the same prefix ...
    longer = m.make_noise(2, 100, generator=torch.Generator().manual_seed(1))
    assert torch.equal(longer[:, : noise.shape[1]], noise)
    # ... and so the same motion (the unpadded convs only look forward within the prefix)
    assert torch.allclose(m(longer, t), u, atol=1e-6)
    with pytest.raises(ValueError, match="make_noise"):
        m(noise, torch.tensor([[0.0, 1.0, 40.0]] * 2))


def test_stylegan_v_motion_is_continuous_at_integer_fractional_and_anchor_times():
    m = _motion()
    noise = m.make_noise(1, 64, generator=torch.Generator().manual_seed(2))
    t = torch.linspace(0, 60, 6001)[None]  # step 0.01, crosses 15 anchors (spacing 4)
    with torch.no_grad():
        u = m(noise, t)[0]
    jumps = (u[1:] - u[:-1]).norm(dim=-1)
    assert jumps.max() < 3 * jumps.median()  # no outlier step anywhere, anchor crossings included
    with torch.no_grad():
        for anchor in (8.0, 12.0, 37.0):  # anchors, and a fractional time inside a segment
            gaps = [(lambda v: (v[0, 1] - v[0, 0]).norm().item())(m(noise, torch.tensor([[anchor - e, anchor + e]])))
                    for e in (1e-2, 1e-3)]
            assert gaps[1] < 0.2 * gaps[0]  # |u(t+e) - u(t-e)| -> 0 with e: continuous at t
    # at an anchor time the encoding is exactly the aligner of that anchor's code
    codes = m.anchor_codes(noise)
    with torch.no_grad():
        at_anchor = m(noise, torch.tensor([[8.0]]))[0, 0]
        assert torch.allclose(at_anchor, m.to_aligner(codes[0, 2]), atol=1e-5)
    # fractional times give codes between their integer neighbours, not copies of them
    with torch.no_grad():
        a, mid, b = m(noise, torch.tensor([[9.0, 9.5, 10.0]]))[0]
    assert (mid - a).norm() > 1e-4 and (mid - b).norm() > 1e-4
    assert (mid - (a + b) / 2).norm() < (a - b).norm()


def test_motion_codes_differ_between_videos_and_move_over_time():
    m = _motion()
    noise = m.make_noise(2, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        u = m(noise, torch.tensor([[0.0, 32.0, 64.0]] * 2))
    assert (u[0] - u[1]).abs().mean() > 1e-3  # no mode collapse (no bias in the modulation layers)
    assert (u[0, 0] - u[0, 2]).abs().mean() > 1e-3


# ----------------------------------------------------------------------------- G_d input, shared z, config defaults
def test_config_without_recipe_keys_means_the_shipped_variant(tiny_gendef_kwargs, tmp_path):
    g = GenDeF(**tiny_gendef_kwargs)
    assert isinstance(g.motion, MotionEncoder) and g.deformation.motion_input == "style"
    assert not g.share_latent and g.deformation.init == "zero"
    assert RECIPE_DEFAULTS["motion_mapping"] == "mlp" and PAPER_RECIPE["motion_mapping"] == "stylegan_v"
    paper = GenDeF(**tiny_gendef_kwargs, **PAPER_RECIPE)
    paper.save_pretrained(tmp_path / "p")
    saved = json.loads((tmp_path / "p" / "config.json").read_text())
    assert all(saved[k] == v for k, v in PAPER_RECIPE.items())  # new keys are written, so they round-trip
    back = GenDeF.from_pretrained(tmp_path / "p")
    assert isinstance(back.motion, StyleGANVMotion) and back.share_latent
    with pytest.raises(ValueError, match="motion_mapping"):
        GenDeF(**tiny_gendef_kwargs, motion_mapping="lstm")


def test_paper_gd_takes_u_at_its_4x4_input_and_shares_z(tiny_gendef_kwargs):
    torch.manual_seed(0)
    g = GenDeF(**tiny_gendef_kwargs, **dict(PAPER_RECIPE, deformation_init="xavier"))
    d = g.deformation
    assert not hasattr(d, "frame_style")
    first = d.blocks[0][0].conv
    assert first.in_ch == d.const.shape[1] + g.motion.out_dim + 8  # const ⊕ u_t ⊕ f_c
    z_c, z_d, noise = g.make_latents(2, 40, generator=torch.Generator().manual_seed(0))
    assert z_d is z_c
    times = torch.tensor([[0.0, 1.5, 37.0]] * 2)
    with torch.no_grad():
        a = g.generate(z_c, z_d, noise, times)
        b = g.generate(z_c, torch.randn_like(z_d), noise, times)  # z_d is z_c: the argument is ignored
        c = g.generate(z_c, z_d, g.motion.make_noise(2, 40, generator=torch.Generator().manual_seed(9)), times)
    assert torch.equal(a["grid_norm"], b["grid_norm"])
    assert (a["grid_norm"] - c["grid_norm"]).abs().max() > 1e-5  # u_t (through the 4x4 input) moves the field
    assert (a["grid_norm"][:, 0] - a["grid_norm"][:, 2]).abs().max() > 1e-5


@pytest.mark.parametrize("init", ["zero", "xavier", "none"])
def test_deformation_init_switch_table_a1(tiny_gendef_kwargs, init):
    torch.manual_seed(0)
    g = GenDeF(**tiny_gendef_kwargs, **dict(PAPER_RECIPE, deformation_init=init))
    last = g.deformation.to_outs[-1]
    assert last.bias.shape[0] == (2 if init == "none" else 4)  # (multiplier, adder) unless "w/o multi."
    z = g.make_latents(2, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        delta = (g.generate(*z, torch.arange(4.0))["grid_norm"] - g.base_grid).abs().mean().item()
    if init == "zero":
        assert delta == 0.0  # Fig. A4c: every frame is the canonical image
    elif init == "xavier":
        assert 0 < delta < 0.5  # small offsets (Fig. A4b)
    else:
        assert delta > 0.5  # accumulated random residuals: frames far from the canonical (Fig. A4a)
    g.deformation.reset_output()
    if init == "zero":
        assert last.conv.weight.abs().max() == 0


# ----------------------------------------------------------------------------- video discriminator
def _disc(**kw):
    torch.manual_seed(0)
    args = dict(resolution=32, channel_base=512, channel_max=32, num_frames=3, mbstd_group=2, time_embed_dim=16)
    args.update(kw)
    return Discriminator(**args)


def test_discriminator_is_conditioned_on_time_differences():
    d = _disc()
    clip = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        base = d(clip, torch.tensor([[0.0, 1.0, 2.0]] * 2))
        shifted = d(clip, torch.tensor([[5.0, 6.0, 7.0]] * 2))  # same gaps, other start
        wider = d(clip, torch.tensor([[0.0, 4.0, 16.0]] * 2))
    assert base.shape == (2,)
    assert torch.allclose(base, shifted)  # only differences matter
    assert (base - wider).abs().min() > 1e-4  # changing Δt changes the logit
    with pytest.raises(ValueError, match="3 frames"):
        d(torch.randn(2, 2, 3, 32, 32), torch.zeros(2, 2))


def test_discriminator_merges_at_16_and_shifts_time_in_blocks_of_32px_and_up():
    clip = torch.randn(2, 3, 3, 32, 32)
    times = torch.tensor([[0.0, 1.0, 2.0]] * 2)
    swapped = clip[:, [2, 1, 0]]
    no_tsm, tsm = _disc(tsm=False), _disc(tsm=True)
    with torch.no_grad():
        # without TSM the 16x16 merge is a mean: frame order is invisible
        assert torch.allclose(no_tsm(clip, times), no_tsm(swapped, times), atol=1e-5)
        # with TSM the 32 px block mixes neighbouring frames: order matters
        assert (tsm(clip, times) - tsm(swapped, times)).abs().max() > 1e-4
        # identical frames: the merged feature equals the single image's (before the heads)
        img = clip[:, 0]
        same = img[:, None].expand(-1, 3, -1, -1, -1)
        assert torch.allclose(no_tsm._features(same.reshape(6, 3, 32, 32), 3), no_tsm._features(img, 1), atol=1e-5)
    x = torch.arange(2 * 3 * 16, dtype=torch.float32).reshape(6, 16, 1, 1)
    y = temporal_shift(x, 3).reshape(2, 3, 16)
    v = x.reshape(2, 3, 16)
    assert torch.equal(y[:, 0, :2], v[:, 1, :2]) and torch.equal(y[:, 2, :2], torch.zeros(2, 2))
    assert torch.equal(y[:, 1, 2:4], v[:, 0, 2:4]) and torch.equal(y[:, :, 4:], v[:, :, 4:])


def test_stage1_discriminator_loads_into_video_mode():
    d1 = _disc()
    img = torch.randn(4, 3, 32, 32)
    image_only = {k: v for k, v in d1.state_dict().items() if not k.startswith(VIDEO_ONLY_PREFIXES)}
    d2 = _disc()
    torch.manual_seed(5)
    for p in d2.parameters():
        p.data.normal_()
    missing, unexpected = d2.load_state_dict(image_only, strict=False)
    assert not unexpected and missing and all(k.startswith(VIDEO_ONLY_PREFIXES) for k in missing)
    with torch.no_grad():
        assert torch.allclose(d2(img), d1(img))


# ----------------------------------------------------------------------------- R1
def test_r1_is_averaged_over_the_frames_of_a_clip():
    torch.manual_seed(0)
    w = torch.randn(3, 3, 4, 4)
    clip = torch.randn(2, 3, 3, 4, 4, requires_grad=True)
    logits = (clip * w).flatten(1).sum(1) + (clip**2).flatten(1).sum(1)
    r1 = losses.r1_penalty(logits, clip)
    grad = w + 2 * clip.detach()  # d logit / d clip
    per_frame = grad.pow(2).flatten(2).sum(-1)  # [B, K]
    assert torch.allclose(r1, per_frame.mean(), rtol=1e-5)
    assert torch.allclose(r1 * 3, per_frame.sum(1).mean(), rtol=1e-5)  # the old sum was K x larger
    img = clip[:, 0].detach().requires_grad_(True)
    r1_img = losses.r1_penalty((img * w[0]).flatten(1).sum(1), img)
    assert torch.allclose(r1_img, w[0].pow(2).sum(), rtol=1e-5)  # image mode unchanged


# ----------------------------------------------------------------------------- L_reg
def _grid(res: int, field=None):
    lin = torch.linspace(-1, 1, res)
    ys, xs = torch.meshgrid(lin, lin, indexing="ij")
    g = torch.stack([xs, ys], dim=-1)[None]
    return g if field is None else g + field(xs, ys)[None]


def _official_reference(coords_t, coords_t1, img_t2):
    """The official GenDeF loss ('2to3_deform2img', no norm), written out from its definition."""
    disp = (2 * coords_t1 - coords_t).permute(0, 3, 1, 2)
    gdx = (disp[:, :, :, :-1] - disp[:, :, :, 1:]).abs()
    gdy = (disp[:, :, :-1, :] - disp[:, :, 1:, :]).abs()
    gix = (img_t2[:, :, :, :-1] - img_t2[:, :, :, 1:]).abs().mean(1, keepdim=True)
    giy = (img_t2[:, :, :-1, :] - img_t2[:, :, 1:, :]).abs().mean(1, keepdim=True)
    return (gdx * torch.exp(-gix)).mean() + (gdy * torch.exp(-giy)).mean()


def test_lreg_official_form_matches_the_reference_and_its_units():
    torch.manual_seed(0)
    wave = lambda a: (lambda x, y: torch.stack([a * torch.sin(3 * y), a * torch.cos(2 * x)], -1))  # noqa: E731
    g0, g1, g2 = _grid(16, wave(0.01)), _grid(16, wave(0.03)), _grid(16, wave(0.02))
    img = torch.rand(1, 3, 16, 16) * 2 - 1
    val = losses.flow_regularization(g0, g1, g2, image=img, form="official")
    assert torch.allclose(val, _official_reference(g0, g1, img), rtol=1e-5)
    # a static identity grid on a flat frame: only the grid's own slope, 2/(R-1), remains
    flat = torch.zeros(1, 3, 16, 16)
    ident = _grid(16)
    assert abs(losses.flow_regularization(ident, ident, ident, image=flat, form="official").item() - 2 / 15) < 1e-6
    assert losses.flow_regularization(ident, ident, ident, image=flat).item() == 0  # eq. 4: no pull on a still grid
    # normalised units: the same continuous field sampled at twice the resolution gives ~half
    vals = {}
    for res in (32, 64):
        a, b = _grid(res, wave(0.0)), _grid(res, wave(0.05))
        vals[res] = losses.flow_regularization(a, b, b, image=torch.zeros(1, 3, res, res), form="official").item()
    assert 0.45 < vals[64] / vals[32] < 0.55


def test_lreg_flow_change_form_and_the_legacy_strength():
    v = lambda x, y: torch.stack([0.1 + 0 * x, 0.05 + 0 * y], -1)  # noqa: E731
    g0 = _grid(16)
    g1 = g0 + v(*g0[0].unbind(-1))[None]
    g2 = g1 + v(*g0[0].unbind(-1))[None]
    assert losses.flow_regularization(g0, g1, g2, form="flow_change").item() < 1e-6  # constant velocity is free
    bump = torch.zeros_like(g0)
    bump[:, 4:9, 4:9] = 0.1
    val = losses.flow_regularization(g0, g1, g2 + bump, form="flow_change").item()
    assert val > 0.005
    edges = torch.zeros(1, 3, 16, 16)
    edges[..., ::2] = 2.0
    assert losses.flow_regularization(g0, g1, g2 + bump, image=edges, form="flow_change").item() < val
    # same normalised units as the official form: a continuous change of flow at 2x resolution gives ~half
    wave = lambda x, y: torch.stack([0.05 * torch.sin(3 * y), 0.05 * torch.cos(2 * x)], -1)  # noqa: E731
    vals = {res: losses.flow_regularization(_grid(res), _grid(res), _grid(res, wave)).item() for res in (32, 64)}
    assert 0.45 < vals[64] / vals[32] < 0.55
    # the legacy pixel-unit form is stronger by more than the pixel scale (R-1)/2, which grows
    # with the resolution (127.5 at the paper's 256 px: the "about 100x")
    ratios = {}
    for res in (16, 64):
        a = _grid(res)
        jerk = torch.zeros_like(a)
        jerk[:, res // 4 : res // 2, res // 4 : res // 2] = 0.1
        new_val = losses.flow_regularization(a, a, a + jerk, form="flow_change").item()
        ratios[res] = losses.flow_regularization(a, a, a + jerk, form="legacy").item() / new_val
        assert ratios[res] > (res - 1) / 2
    assert ratios[64] > 3 * ratios[16]
    with pytest.raises(ValueError, match="form"):
        losses.flow_regularization(g0, g1, g2, form="l2")


def test_flow_jerk_value():
    grid = torch.stack([torch.zeros(4, 4, 2) + t * t for t in range(4)])[None]
    assert abs(losses.flow_jerk(grid).item() - 2 * math.sqrt(2)) < 1e-5
    assert np.isfinite(losses.flow_jerk(torch.zeros(1, 3, 2, 2, 2)).item())


# ----------------------------------------------------------------------------- time sampling
def test_real_clip_gaps_are_powers_of_two_and_generator_times_fractional():
    from gendef.data.times import power_of_two_gaps, sample_times

    assert power_of_two_gaps(3, 32) == [2, 4, 8, 16, 32]
    rng = np.random.default_rng(0)
    real = np.stack([sample_times(3, 500, 32, rng) for _ in range(400)])
    gaps = real[:, 2] - real[:, 0]
    assert set(gaps.astype(int)) == {2, 4, 8, 16, 32}
    assert np.all(real == np.round(real)) and np.all(np.diff(real, axis=1) >= 1)
    short = np.stack([sample_times(3, 10, 32, rng) for _ in range(100)])
    assert short.max() <= 9 and set((short[:, 2] - short[:, 0]).astype(int)) <= {2, 4, 8}
    fake = np.stack([sample_times(3, 1024, 32, rng, fractional=True) for _ in range(400)])
    assert np.any(fake != np.round(fake))  # fractional offsets
    assert fake.max() > 900 and fake.max() <= 1023  # over the whole (capped) video length
    assert np.allclose(np.diff(fake, axis=1), np.round(np.diff(fake, axis=1)))  # integer gaps inside a clip


def test_generator_times_borrow_real_video_lengths_capped_at_max_num_frames():
    from train.batches import sample_generator_times

    torch.manual_seed(0)
    t = sample_generator_times(300, 3, 32, [5000, 40], max_num_frames=1024, device="cpu")
    assert t.shape == (300, 3) and t.max() <= 1023 and t.max() > 500
    assert (t[:, 2] < 40).sum() > 50  # clips that borrowed the 40-frame video stay inside it
    torch.manual_seed(0)
    again = sample_generator_times(300, 3, 32, [5000, 40], max_num_frames=1024, device="cpu")
    assert torch.equal(t, again)  # seeded from torch's RNG (restored on resume)


# ----------------------------------------------------------------------------- stage 2: w/o pt., kimg in frames
def test_stage2_from_scratch_counts_kimg_in_frames(tmp_path):
    from pathlib import Path

    from PIL import Image

    from train import finetune

    root = Path(__file__).resolve().parents[1]

    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for v in range(2):
        (data / f"v{v}").mkdir(parents=True)
        base = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        for t in range(12):
            Image.fromarray(np.roll(base, t, axis=1)).save(data / f"v{v}" / f"{t:04d}.png")
    out = tmp_path / "s2"
    rc = finetune.main(["--config", str(root / "train" / "configs" / "tiny.yaml"), f"data={data}", f"output_dir={out}",
                        "from_scratch=true", "max_steps=2", "ckpt_every=2", "sample_every=0", "progress=false"])
    assert rc == 0
    state = json.loads(next((out / "checkpoints").glob("step-*/train_state.json")).read_text())
    assert state["step"] == 2 and state["cur_nimg"] == 2 * 4 * 3  # batch 4, 3 frames per clip
    g = GenDeF.from_pretrained(out)
    assert isinstance(g.motion, StyleGANVMotion) and g.share_latent


# ----------------------------------------------------------------------------- configs: lrs, switches
@pytest.mark.parametrize("name", ["sky256", "taichi256", "ytb256", "sky32", "tiny"])
def test_configs_select_the_paper_recipe_explicitly(name):
    from pathlib import Path

    from train.config import load_config

    path = str(Path(__file__).resolve().parents[1] / "train" / "configs" / f"{name}.yaml")
    cfg = load_config(path, [], "finetune")
    assert all(cfg["model"][k] == v for k, v in PAPER_RECIPE.items())
    from gendef.generator.config import validate_model_config

    validate_model_config(cfg["model"])  # the schema accepts the official sizes (256 freqs, 512-d codes)
    assert cfg["model"]["motion_anchor_spacing"] == cfg["model"]["time_min_period"]  # official: one value
    assert cfg["disc"]["merge_resolution"] == 16 and cfg["disc"]["tsm"] is True
    assert cfg["time_sampling"] == "stylegan_v" and cfg["reg_form"] == "flow_change" and cfg["lambda_reg"] == 1.0
    assert cfg["lr_d"] == 0.002
    if name.endswith("256"):
        assert cfg["lr"] == 0.0025 and cfg["r1_gamma"] == 8 and cfg["max_dist"] == 32
        assert load_config(path, [], "pretrain")["r1_gamma"] == 0.5
        assert cfg["model"]["motion_noise_dim"] == 512 and cfg["model"]["time_num_freqs"] == 256

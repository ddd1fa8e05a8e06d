"""StyleGAN3 canonical generator and MTM layers: equivariance, zero-offset identity, shapes, config switches."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import torch

from gendef import GenDeF
from gendef.generator import losses
from gendef.errors import CheckpointError
from tests.networks_by_keyword import CanonicalGenerator
from gendef.generator.networks.discriminator import Discriminator
from gendef.generator.networks.layers import ModulatedConv2d
from gendef.generator.networks.mtm import ModulatedDeformConv2d
from tests.networks_by_keyword import check_mtm_resolutions
from gendef.generator.networks import alias_free_ops
from gendef.generator.networks.alias_free_ops import FilterPlan, filtered_lrelu, fir_axis, fir_axis_adjoint
from gendef.generator.networks.modulated_ops import modulated_conv
from tests.reference_layers import conv_or_deform, reference_ops, upfirdn2d
from tests.networks_by_keyword import StyleGAN3Generator

ROOT = Path(__file__).resolve().parents[1]

def _sg3(resolution=32, seed=0, **kw):
    torch.manual_seed(seed)
    kw = {"channel_base": 16 * resolution, "channel_max": 16, **kw}
    return StyleGAN3Generator(resolution, z_dim=8, w_dim=8, mapping_layers=1, **kw).eval()


def _psnr(a, b):
    peak = float(b.max() - b.min())
    return 10 * math.log10(peak**2 / float((a - b).pow(2).mean()))


@pytest.mark.parametrize("resolution,shift", [(32, 1), (32, 3), (64, 2)])
def test_translating_fourier_input_shifts_the_image_by_whole_pixels(resolution, shift):
    """A -d/R translation of the input coordinates moves the image d pixels right.

    Early layers run at 16 samples per image, so these shifts are fractional
    there: only the low-pass filtered non-linearities keep it exact. Tolerance:
    PSNR > 40 dB over the interior (2 px border cut); the same comparison with
    the wrong shift direction fails it (measured: 79-105 dB right, 22-31 dB wrong).
    """
    g = _sg3(resolution)
    w = g.mapping(torch.randn(3, 8, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        ref, _ = g.synthesis(w)
        g.input.transform[0, 2] = -shift / resolution
        moved, _ = g.synthesis(w)
    c = 2
    right = _psnr(moved[..., c:-c, shift + c : -c], ref[..., c:-c, c : -shift - c])
    wrong = _psnr(moved[..., c:-c, c : -shift - c], ref[..., c:-c, shift + c : -c])
    assert right > 40.0, right
    assert wrong < 40.0, wrong  # the same tolerance rejects a shift the other way


def test_vertical_translation_also_matches():
    g = _sg3(32)
    w = g.mapping(torch.randn(2, 8, generator=torch.Generator().manual_seed(2)))
    with torch.no_grad():
        ref, _ = g.synthesis(w)
        g.input.transform[1, 2] = -2 / 32
        moved, _ = g.synthesis(w)
    assert _psnr(moved[..., 4:-2, 2:-2], ref[..., 2:-4, 2:-2]) > 40.0


def test_upfirdn2d_matches_scipy_upfirdn_on_each_axis():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7)).astype(np.float32)
    f = scipy.signal.firwin(12, 4.0, width=3.0, fs=32.0).astype(np.float32)
    for up, down in ((2, 1), (1, 2), (2, 2)):
        ref = scipy.signal.upfirdn(f, x, up=up, down=down, axis=1)
        ref = scipy.signal.upfirdn(f, ref, up=up, down=down, axis=0) * up**2
        t = len(f) - 1
        got = upfirdn2d(torch.from_numpy(x)[None, None], torch.from_numpy(f), up=up, down=down, padding=(t, t, t, t), gain=up**2)[0, 0].numpy()
        h, w = min(ref.shape[0], got.shape[0]), min(ref.shape[1], got.shape[1])
        assert h >= 5 and w >= 7
        np.testing.assert_allclose(got[:h, :w], ref[:h, :w], atol=1e-5)


@pytest.mark.parametrize("up,down,lo,hi", [(2, 1, 9, 8), (4, 1, -6, -9), (1, 2, 0, 0), (2, 1, 0, 3), (3, 2, 4, -2), (1, 3, -1, 5)])
def test_polyphase_fir_matches_zero_stuffed_reference_and_its_adjoint(up, down, lo, hi):
    """fir_axis (no zero-stuffing) = upfirdn2d on each axis; fir_axis_adjoint is its exact transpose."""
    torch.manual_seed(0)
    x, f = torch.randn(2, 3, 23, 19, dtype=torch.float64), torch.randn(12, dtype=torch.float64)
    ref = upfirdn2d(x, f, up=up, down=down, padding=(lo, hi, lo, hi))
    got = fir_axis(fir_axis(x, f.flip(0), up, down, lo, hi, 3), f.flip(0), up, down, lo, hi, 2)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=1e-12)
    for dim in (2, 3):
        y = fir_axis(x, f.flip(0), up, down, lo, hi, dim)
        g = torch.randn_like(y)
        back = fir_axis_adjoint(g, f.flip(0), up, down, lo, x.shape[dim], dim)
        assert back.shape == x.shape
        assert abs(float((y * g).sum() - (x * back).sum())) < 1e-9 * float(y.abs().sum() * g.abs().max())


def _layer_grads(g, layer, x, w, reference):
    with reference_ops(reference):
        g.zero_grad(set_to_none=True)
        x = x.detach().requires_grad_()
        y = layer(x, w)
        (y * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    return [y.detach(), x.grad] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("mtm,chunk", [(None, None), ([8, 32], None), (None, 5000)])
def test_fast_stylegan3_layers_match_the_reference_outputs_and_gradients(mtm, chunk, monkeypatch):
    """Every layer kind (up 2 / up 4, margin crop, ToRGB, MTM with random offsets), fp32, to 1e-4 of the largest value.

    chunk: process a few channels at a time (as large layers do) instead of all at once.
    """
    if chunk:
        monkeypatch.setitem(alias_free_ops._CHUNK_ELEMENTS, "cpu", chunk)
    g = _sg3(32, channel_max=8, mtm_resolutions=mtm)
    for layer in g.layers:
        if layer.offset is not None:
            torch.nn.init.normal_(layer.offset.weight, std=0.3)  # real (non-integer) sampling positions
    w = torch.randn(2, 8)
    for layer in g.layers:
        x = torch.randn(2, layer.in_ch, layer.in_size, layer.in_size)
        fast, ref = _layer_grads(g, layer, x, w, False), _layer_grads(g, layer, x, w, True)
        for a, b in zip(fast, ref):
            assert float((a - b).abs().max()) <= 1e-4 * float(b.abs().max()), (layer.up, layer.down)
    z = torch.randn(2, 8)
    with torch.no_grad(), reference_ops():
        ref = g(z)[0]
    torch.testing.assert_close(g(z)[0], ref, atol=1e-4 * float(ref.abs().max()), rtol=0)


def test_fast_layers_keep_a_fraction_of_the_reference_activations_for_backward():
    """What autograd holds after the forward pass (the backward's memory): the upsampled tensors are gone."""
    g = _sg3(32, mtm_resolutions=[8, 32]).train()
    z = torch.randn(2, 8)

    def saved_bytes(reference):
        seen = {}

        def pack(t):
            seen[(t.data_ptr(), t.dtype, tuple(t.shape))] = t.numel() * t.element_size()
            return t

        with reference_ops(reference), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            g(z)[0].sum()
        return sum(seen.values())

    fast, ref = saved_bytes(False), saved_bytes(True)
    assert fast < ref / 4, (fast, ref)


def test_filtered_lrelu_backward_is_itself_differentiable():
    """gradcheck and gradgradcheck in float64 (up 2 / down 2 and up 4 / down 2 plans, clamp active)."""
    torch.manual_seed(0)
    f = torch.randn(8, dtype=torch.float64)
    for up, lo, hi in ((2, 5, 4), (4, -2, -3)):
        plan = FilterPlan(f.flip(0) * up, f.flip(0), up, 2, lo, hi, clamp=1.5)
        y = torch.randn(1, 2, 7, 7, dtype=torch.float64, requires_grad=True)
        d = torch.rand(1, 2, dtype=torch.float64, requires_grad=True)
        b = torch.randn(2, dtype=torch.float64, requires_grad=True)
        fn = lambda y, d, b: filtered_lrelu(y, d, b, plan)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (y, d, b))
        assert torch.autograd.gradgradcheck(fn, (y, d, b))


@pytest.mark.parametrize("scale", [0.0, 2.5])
def test_fast_modulated_deform_conv_matches_torchvision(scale):
    """Exact sampling positions: zero offsets (the MTM init) give torchvision's one-sided gradients too."""
    torch.manual_seed(0)
    x, s, weight = torch.randn(2, 5, 9, 11), torch.randn(2, 5), torch.randn(4, 5, 3, 3)
    off = torch.randn(2, 18, 11, 13) * scale
    out = []
    for fast in (True, False):
        leaves = [t.clone().requires_grad_() for t in (x, s, weight, off)]
        xl, sl, wl, ol = leaves
        y = modulated_conv(xl, sl, wl, 2, ol) if fast else conv_or_deform(xl * sl[:, :, None, None], wl, 2, ol)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        out.append([y.detach()] + [t.grad for t in leaves])
    for a, b in zip(*out):
        torch.testing.assert_close(a, b, atol=1e-5 * float(b.abs().max()), rtol=0)
    x64 = [t.double().requires_grad_() for t in (x[:1, :2, :5, :5], s[:1, :2], weight[:3, :2])]
    assert torch.autograd.gradgradcheck(lambda a, b, c: modulated_conv(a, b, c, 1), x64)


@pytest.mark.parametrize("upsample", [False, True])
def test_zero_offset_mtm_layer_equals_plain_modulated_conv(upsample):
    torch.manual_seed(0)
    plain = ModulatedConv2d(6, 5, 3, 8, upsample=upsample)
    mtm = ModulatedDeformConv2d.from_plain(plain)
    assert mtm.offset.weight.abs().max() == 0 and mtm.offset.bias.abs().max() == 0
    x, w = torch.randn(2, 6, 7, 7), torch.randn(2, 8)
    torch.testing.assert_close(mtm(x, w), plain(x, w), atol=1e-5, rtol=1e-5)


def test_mtm_offsets_move_taps_and_learn():
    """Offset channels are (dy, dx) per tap: dx = +1 everywhere equals convolving the input shifted left."""
    torch.manual_seed(0)
    weight, x = torch.randn(3, 4, 3, 3), torch.randn(1, 4, 8, 8)
    off = torch.zeros(1, 18, 8, 8)
    off[:, 1::2] = 1.0
    moved = conv_or_deform(x, weight, 1, off)
    plain = torch.nn.functional.conv2d(x, weight, padding=1)
    torch.testing.assert_close(moved[..., :-1], plain[..., 1:], atol=1e-5, rtol=1e-5)
    mtm = ModulatedDeformConv2d(4, 3, 3, 8)
    mtm(torch.randn(2, 4, 8, 8), torch.randn(2, 8)).square().mean().backward()
    assert mtm.offset.weight.grad.abs().sum() > 0 and mtm.offset.bias.grad.abs().sum() > 0


def test_stylegan3_with_zero_offset_mtm_renders_like_without():
    plain = _sg3(16)
    mtm = _sg3(16, mtm_resolutions=[8, 16])
    assert sum(layer.offset is not None for layer in mtm.layers) == mtm.num_layers  # every conv, not ToRGB
    missing, unexpected = mtm.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(".offset." in k for k in missing)
    z = torch.randn(2, 8)
    with torch.no_grad():
        torch.testing.assert_close(mtm(z)[0], plain(z)[0], atol=1e-5, rtol=1e-4)


def test_paper_layer_numbering_and_feature_shapes():
    big = StyleGAN3Generator(256, z_dim=8, w_dim=8, channel_base=512, channel_max=16, mapping_layers=1)
    assert big.num_layers == 14 and big.feature_layer == 13
    shapes = big.layer_shapes()
    assert len(shapes) == 14 and shapes[-1] == (3, 256) and shapes[12][1] == 256
    assert (big.feature_channels, big.feature_resolution) == shapes[12]
    assert [s[1] for s in shapes] == sorted(s[1] for s in shapes)  # sampling rate never drops
    assert CanonicalGenerator(256, 8, 8, 512, 16, 1).num_layers == 14  # same count as the StyleGAN2 backbone

    g = _sg3(16)
    w = g.mapping(torch.randn(2, 8))
    with torch.no_grad():
        for k, (ch, res) in enumerate(g.layer_shapes(), start=1):
            img, feat = g.synthesis(w, feature_layer=k)
            assert img.shape == (2, 3, 16, 16)
            assert feat.shape == (2, ch, res, res), k
    with pytest.raises(ValueError, match="canonical_feature_layer must be in 1..6"):
        _sg3(16, feature_layer=7)


def test_magnitude_ema_tracks_inputs_only_while_training():
    g = _sg3(16)
    z = torch.randn(2, 8)
    with torch.no_grad():
        g(z)
    assert all(float(layer.magnitude_ema) == 1.0 for layer in g.layers)
    g.train()
    g(z)[0].sum().backward()
    assert any(float(layer.magnitude_ema) != 1.0 for layer in g.layers)


@pytest.mark.parametrize("extra", [dict(canonical_backbone="stylegan3"), dict(canonical_backbone="stylegan3", mtm=True), dict(mtm=True)])
def test_gendef_switches_save_load_and_start_from_the_canonical(tmp_path, tiny_gendef_kwargs, extra):
    torch.manual_seed(0)
    m = GenDeF(**tiny_gendef_kwargs, **extra)
    vid = m.sample(seed=4, num_frames=5)
    assert np.abs(vid.render() - vid.canonical[None]).max() < 1e-5  # zero-init G_d, zero MTM offsets
    if extra.get("mtm"):
        assert any(".offset." in k for k in m.deformation.state_dict())
        assert any(".offset." in k for k in m.canonical.state_dict())
    m.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["canonical_backbone"] == extra.get("canonical_backbone", "stylegan2") and cfg["mtm"] == extra.get("mtm", False)
    back = GenDeF.from_pretrained(tmp_path)
    assert type(back.canonical) is type(m.canonical)
    again = back.sample(seed=4, num_frames=5)
    assert np.allclose(again.canonical, vid.canonical, atol=1e-6)
    batch = back.sample_batch([4, 9], num_frames=5)
    assert np.allclose(batch[0].canonical, vid.canonical, atol=1e-5)


def test_old_config_without_switches_loads_as_stylegan2(tmp_path, tiny_gendef_kwargs):
    m = GenDeF(**tiny_gendef_kwargs)
    m.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    for key in ("canonical_backbone", "mtm", "mtm_resolutions"):
        cfg.pop(key, None)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert isinstance(GenDeF.from_pretrained(tmp_path).canonical, CanonicalGenerator)


def test_bad_switches_give_one_line_errors(tmp_path, tiny_gendef_kwargs):
    with pytest.raises(ValueError, match="canonical_backbone must be one of"):
        GenDeF(**tiny_gendef_kwargs, canonical_backbone="stylegan9")
    with pytest.raises(ValueError, match=r"mtm_resolutions must be \[min, max\]"):
        check_mtm_resolutions("big")
    with pytest.raises(ValueError, match="1 <= min <= max"):
        GenDeF(**tiny_gendef_kwargs, mtm=True, mtm_resolutions=[64, 8])
    GenDeF(**tiny_gendef_kwargs, canonical_backbone="stylegan3").save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["canonical_backbone"] = "stylegan2"  # weights no longer match the architecture
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as e:
        GenDeF.from_pretrained(tmp_path)
    assert "\n" not in str(e.value)


def test_a_few_adversarial_steps_train_stylegan3_and_mtm(tiny_gendef_kwargs):
    """Stage 1 (G_c + image D) then stage 2 (everything on 3-frame clips) with the new backbone."""
    torch.manual_seed(0)
    g = GenDeF(**tiny_gendef_kwargs, canonical_backbone="stylegan3", mtm=True).train()
    d = Discriminator(resolution=16, channel_base=128, channel_max=16)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-3, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.0, 0.99))
    real = torch.rand(4, 3, 16, 16) * 2 - 1
    before = g.canonical.layers[0].weight.detach().clone()
    for _ in range(2):
        z = torch.randn(4, g.z_dim)
        img, _ = g.canonical(z)
        loss_d = losses.d_logistic(d(real), d(img.detach()))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = losses.g_nonsaturating(d(g.canonical(z)[0]))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        assert math.isfinite(loss_d.item()) and math.isfinite(loss_g.item())
    assert (g.canonical.layers[0].weight - before).abs().max() > 0
    times = torch.tensor([[0.0, 2.0, 5.0]] * 2)
    offset = next(m for m in g.deformation.modules() if isinstance(m, ModulatedDeformConv2d)).offset
    for _ in range(3):
        out = g.generate(*g.make_latents(2, 6), times)
        loss = losses.g_nonsaturating(d(out["frames"], times))
        opt_g.zero_grad()
        loss.backward()
        assert g.deformation.to_outs[-1].conv.weight.grad.abs().sum() > 0
        opt_g.step()
    # once the zero-initialised ToOut has moved, gradients reach the MTM offset branch of G_d
    assert offset.weight.grad.abs().sum() > 0
    out = g.generate(*g.make_latents(2, 6), times)
    assert (out["frames"] - out["canonical"][:, None]).abs().max() > 1e-4  # G_d now moves pixels


def test_paper_configs_build_the_paper_architecture():
    """sky/taichi/ytb 256: StyleGAN3 G_c with 14 layers, f_c = layer 13, MTM in G_c and G_d (channels shrunk to stay cheap)."""
    from train.config import load_config

    for name in ("sky256", "taichi256", "ytb256"):
        cfg = load_config(str(ROOT / "train" / "configs" / f"{name}.yaml"), [], "finetune")["model"]
        assert cfg["canonical_backbone"] == "stylegan3" and cfg["mtm"] is True and cfg["canonical_feature_layer"] == 13
        cheap = {**cfg, "channel_base": 256, "channel_max": 8, "deformation_channel_base": 256, "deformation_channel_max": 8,
                 "z_dim": 8, "w_dim": 8, "motion_noise_dim": 8, "motion_code_dim": 8, "time_num_freqs": 4, "canonical_feature_dim": 4}
        m = GenDeF(**cheap)
        g = m.canonical
        assert isinstance(g, StyleGAN3Generator) and g.resolution == 256
        assert g.num_layers == 14 and g.feature_layer == 13 and g.feature_resolution == 256
        assert any(layer.offset is not None for layer in g.layers)
        assert any(isinstance(x, ModulatedDeformConv2d) for x in m.deformation.modules())
    tiny = load_config(str(ROOT / "train" / "configs" / "tiny.yaml"), [], "pretrain")["model"]
    assert tiny.get("canonical_backbone", "stylegan2") == "stylegan2" and not tiny.get("mtm", False)  # stays cheap


def test_two_stage_smoke_run_with_stylegan3_and_mtm(tmp_path):
    """The real trainer scripts, both stages, tiny config switched to the paper's backbone."""
    from gendef.data.synthetic import write_dataset
    from train import finetune, pretrain

    data = write_dataset(tmp_path / "data", videos=3, frames=8, resolution=16, seed=0, progress=False)
    tiny = str(ROOT / "train" / "configs" / "tiny.yaml")
    common_args = [f"data={data}", "model.canonical_backbone=stylegan3", "model.mtm=true", "max_steps=2", "batch_size=2",
                   "progress=false", "sample_count=2", "sample_frames=4"]
    assert pretrain.main(["--config", tiny, f"output_dir={tmp_path / 's1'}", *common_args]) == 0
    stage1 = GenDeF.from_pretrained(tmp_path / "s1")
    assert isinstance(stage1.canonical, StyleGAN3Generator)
    vid = stage1.sample(seed=0, num_frames=4)
    assert np.abs(vid.render() - vid.canonical[None]).max() < 1e-5  # G_d untouched in stage 1
    assert finetune.main(["--config", tiny, f"output_dir={tmp_path / 's2'}", f"init={tmp_path / 's1'}", *common_args]) == 0
    stage2 = GenDeF.from_pretrained(tmp_path / "s2")
    assert json.loads((tmp_path / "s2" / "config.json").read_text())["mtm"] is True
    vid = stage2.sample(seed=0, num_frames=4)
    assert vid.grid.shape == (4, 16, 16, 2) and np.isfinite(vid.grid).all()


def test_stylegan3_and_mtm_run_under_bf16_autocast(tiny_gendef_kwargs):
    """The trainer's mixed precision: deform_conv2d has no bf16 kernel, so MTM must cast around it."""
    torch.manual_seed(0)
    m = GenDeF(**tiny_gendef_kwargs, canonical_backbone="stylegan3", mtm=True).train()
    latents = m.make_latents(2, 3, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m.generate(*latents, torch.arange(3.0))
    out["frames"].float().square().mean().backward()
    grad = m.canonical.layers[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    m.eval()
    with torch.no_grad():
        full = m.canonical(latents[0])[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = m.canonical(latents[0])[0].float()
    assert (full - half).abs().max() < 0.1 * full.abs().max()

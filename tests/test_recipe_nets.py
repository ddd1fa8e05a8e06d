"""Issue 22, the network items: MTM mask and placement, f_c resize, warp padding, magnitude EMA,
mixed precision. Each switch defaults to the old behaviour (checkpoints/default is checked in
test_default_checkpoint.py); here the official value is checked against small hand cases."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gendef import GenDeF
from gendef.errors import ModelConfigError
from tests.networks_by_keyword import DeformationGenerator
from gendef.generator.networks.layers import ModulatedConv2d
from gendef.generator.networks.modulated_ops import modulated_conv
from gendef.generator.networks.mtm import ModulatedDeformConv2d
from tests.reference_layers import conv_or_deform, reference_ops
from tests.networks_by_keyword import StyleGAN3Generator

ROOT = Path(__file__).resolve().parents[1]


def _cheap_paper_model(name: str, **extra) -> GenDeF:
    from train.config import load_config

    cfg = load_config(str(ROOT / "train" / "configs" / f"{name}.yaml"), [], "finetune")["model"]
    cheap = {**cfg, "channel_base": 256, "channel_max": 8, "deformation_channel_base": 256, "deformation_channel_max": 8,
             "z_dim": 8, "w_dim": 8, "motion_noise_dim": 8, "motion_code_dim": 8, "time_num_freqs": 4, **extra}
    with torch.device("meta"):
        return GenDeF(**cheap)


# ----------------------------------------------------------------------------- item 7: MTM mask
def test_mtm_mask_is_one_at_init_so_a_fresh_layer_equals_the_plain_conv():
    torch.manual_seed(0)
    plain = ModulatedConv2d(6, 5, 3, 8)
    mtm = ModulatedDeformConv2d.from_plain(plain, mask=True)
    assert mtm.offset.weight.shape[0] == 27  # 3 k^2: (dy, dx) and a mask per tap
    x, w = torch.randn(2, 6, 7, 7), torch.randn(2, 8)
    offset, mask = mtm.offset.split(mtm.offset(x, w))
    assert offset.shape[1] == 18 and mask.shape[1] == 9
    assert torch.equal(mask, torch.ones_like(mask))  # 2 * sigmoid(0) = 1 exactly
    torch.testing.assert_close(mtm(x, w), plain(x, w), atol=1e-5, rtol=1e-5)


def test_mtm_mask_scales_each_kernel_tap():
    """Zero offsets: mask 0.5 everywhere halves the conv; a mask that keeps only the centre tap
    equals a conv with the centre weight alone."""
    torch.manual_seed(0)
    x, s, weight = torch.randn(1, 4, 8, 8), torch.ones(1, 4), torch.randn(3, 4, 3, 3)
    off = torch.zeros(1, 18, 8, 8)
    plain = F.conv2d(x, weight, padding=1)
    half = modulated_conv(x, s, weight, 1, off, torch.full((1, 9, 8, 8), 0.5))
    torch.testing.assert_close(half, 0.5 * plain, atol=1e-5, rtol=1e-5)
    centre = torch.zeros(1, 9, 8, 8)
    centre[:, 4] = 1.0
    only = torch.zeros_like(weight)
    only[:, :, 1, 1] = weight[:, :, 1, 1]
    torch.testing.assert_close(modulated_conv(x, s, weight, 1, off, centre), F.conv2d(x, only, padding=1), atol=1e-5, rtol=1e-5)


def test_fast_masked_deform_conv_matches_torchvision_outputs_and_gradients():
    torch.manual_seed(0)
    x, s, weight = torch.randn(2, 5, 9, 11), torch.randn(2, 5), torch.randn(4, 5, 3, 3)
    off, mask = torch.randn(2, 18, 11, 13) * 2.5, torch.rand(2, 9, 11, 13) * 2
    out = []
    for fast in (True, False):
        leaves = [t.clone().requires_grad_() for t in (x, s, weight, off, mask)]
        xl, sl, wl, ol, ml = leaves
        y = modulated_conv(xl, sl, wl, 2, ol, ml) if fast else conv_or_deform(xl * sl[:, :, None, None], wl, 2, ol, ml)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        out.append([y.detach()] + [t.grad for t in leaves])
    for a, b in zip(*out):
        torch.testing.assert_close(a, b, atol=1e-5 * float(b.abs().max()), rtol=0)


def test_stylegan3_with_masked_mtm_matches_the_reference_layers():
    torch.manual_seed(0)
    g = StyleGAN3Generator(resolution=32, z_dim=8, w_dim=8, channel_base=256, channel_max=8, mtm_resolutions=[8, 32], mtm_mask=True)
    layers = [layer for layer in g.layers if layer.offset is not None]
    assert layers and all(layer.offset.weight.shape[0] == 27 for layer in layers)
    for layer in layers:
        torch.nn.init.normal_(layer.offset.weight, std=0.3)  # non-integer positions and a mask != 1
    z = torch.randn(2, 8)
    with torch.no_grad():
        fast = g(z)[0]
        with reference_ops():
            ref = g(z)[0]
    torch.testing.assert_close(fast, ref, atol=1e-4 * float(ref.abs().max()), rtol=0)


# ----------------------------------------------------------------------------- item 6: MTM placement
def test_which_layers_get_mtm_in_a_256px_paper_model():
    """Official: G_c L0-L4 (sizes 36-52 = rates 16-32); G_d from 4 to 64 px on the convs that do not
    up-sample and on every ToOut but the last (ours, kept as the default: every conv 8-64 px)."""
    m = _cheap_paper_model("taichi256")
    assert [i for i, layer in enumerate(m.canonical.layers) if layer.offset is not None] == [0, 1, 2, 3, 4]
    d = m.deformation
    mtm = {(r, j) for r, b in zip([4, 8, 16, 32, 64, 128, 256], d.blocks) for j, layer in enumerate(b) if isinstance(layer.conv, ModulatedDeformConv2d)}
    assert mtm == {(4, 0), (8, 1), (16, 1), (32, 1), (64, 1)}  # j = 1: the non-up-sampling conv
    assert [i for i, t in enumerate(d.to_outs) if isinstance(t.conv, ModulatedDeformConv2d)] == [0, 1, 2, 3, 4]
    old = _cheap_paper_model("taichi256", mtm_resolutions=[8, 64], deformation_mtm_resolutions=None, mtm_placement="all")
    assert [i for i, layer in enumerate(old.canonical.layers) if layer.offset is not None] == [0, 1, 2, 3, 4, 5, 6]
    assert sum(isinstance(t.conv, ModulatedDeformConv2d) for t in old.deformation.to_outs) == 0
    assert sum(isinstance(layer.conv, ModulatedDeformConv2d) for b in old.deformation.blocks for layer in b) == 8


def test_official_placement_starts_from_the_canonical(tiny_gendef_kwargs):
    torch.manual_seed(0)
    g = GenDeF(**dict(tiny_gendef_kwargs, mtm=True, mtm_resolutions=[4, 8], mtm_mask=True, mtm_placement="official")).eval()
    assert isinstance(g.deformation.to_outs[0].conv, ModulatedDeformConv2d)
    z = torch.randn(1, g.z_dim)
    out = g.generate(z, z, g.motion.make_noise(1, 3), torch.tensor([0.0, 1.0, 2.0]))
    torch.testing.assert_close(out["frames"], out["canonical"][:, None].expand_as(out["frames"]), atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- item 8: f_c into G_d
def test_official_feature_resize_is_bilinear_without_a_projection_when_channels_match():
    torch.manual_seed(0)
    kw = dict(resolution=16, z_dim=8, w_dim=8, motion_dim=8, canonical_channels=6, canonical_feature_dim=6, channel_base=64, channel_max=8)
    official = DeformationGenerator(**kw, feature_resize="bilinear")
    ours = DeformationGenerator(**kw)
    assert official.feature_proj is None and ours.feature_proj is not None
    feat, x = torch.randn(2, 6, 16, 16), torch.zeros(6, 3, 4, 4)  # B=2, 3 frames
    got = official._with_feature(x, feat, 3)[:, 3:]
    want = F.interpolate(feat, size=(4, 4), mode="bilinear", align_corners=False).repeat_interleave(3, dim=0)
    torch.testing.assert_close(got, want)
    # 4x down of x^2 along the width: bilinear (align_corners=False) = mean of the two middle samples
    # (1 + 4) / 2; our box filter = mean of all four (0 + 1 + 4 + 9) / 4
    sq = torch.arange(16.0).square().view(1, 1, 1, 16).expand(1, 6, 16, 16)
    assert float(official._with_feature(x[:3], sq, 3)[0, 3, 0, 0]) == pytest.approx(2.5)
    assert float(ours._with_feature(x[:3], sq, 3)[0, 3, 0, 0]) == pytest.approx(3.5)
    other = DeformationGenerator(**dict(kw, canonical_channels=5), feature_resize="bilinear")
    assert other.feature_proj is not None  # channels differ: projected, as official


def test_projection_commutes_with_bilinear_resize():
    """Why one projection before resizing equals official's per-layer projection after it."""
    torch.manual_seed(0)
    proj = torch.nn.Conv2d(6, 4, 1)
    feat = torch.randn(2, 6, 16, 16)
    a = proj(F.interpolate(feat, size=(8, 8), mode="bilinear", align_corners=False))
    b = F.interpolate(proj(feat), size=(8, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- item 11: warp padding
@pytest.mark.parametrize("padding,far,half", [("black", -1.0, (0.6 + 1) / 2 * 0.5 * 2 - 1), ("grey", 0.0, 0.6 * 0.5)])
def test_grey_vs_black_outside_the_canonical_image(tiny_gendef_kwargs, padding, far, half):
    g = GenDeF(**dict(tiny_gendef_kwargs, warp_padding=padding))
    r = g.resolution
    canon = torch.full((1, 3, r, r), 0.6)
    grid = g.base_grid[None, None].clone()
    torch.testing.assert_close(g.warp(canon, grid), canon[:, None])  # inside: the image either way
    out = grid.clone()
    out[..., 0] += 5.0  # far right of the image
    torch.testing.assert_close(g.warp(canon, out), torch.full((1, 1, 3, r, r), far))
    edge = grid[:, :, :, -1:].clone()
    edge[..., 0] = 1 + 1 / (r - 1)  # half a pixel past the right edge: half image, half outside
    torch.testing.assert_close(g.warp(canon, edge), torch.full((1, 1, 3, r, 1), half), atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- item 10: magnitude EMA
@pytest.mark.parametrize("update", [True, False])
def test_magnitude_ema_is_frozen_at_one_when_switched_off(update):
    torch.manual_seed(0)
    g = StyleGAN3Generator(resolution=16, z_dim=8, w_dim=8, channel_base=128, channel_max=8, update_magnitude_ema=update).train()
    g(torch.randn(2, 8))[0].sum().backward()
    emas = torch.stack([layer.magnitude_ema for layer in g.layers])
    if update:
        assert (emas != 1).all()
    else:
        assert torch.equal(emas, torch.ones_like(emas))


# ----------------------------------------------------------------------------- item 13: mixed precision
def test_mixed_precision_picks_the_four_highest_sampling_rates():
    """Official rule: rate * 2**4 > resolution, i.e. rates 32..256 at 256 px (L3..L14)."""
    m = _cheap_paper_model("taichi256", mixed_precision="float16")
    g = m.canonical
    picked = [i for i, layer in enumerate(g.layers) if layer.compute_dtype is torch.float16]
    assert picked == [i for i, r in enumerate(g.rates) if r >= 32] == list(range(3, 15))
    assert all(layer.conv_clamp == 256 for layer in g.layers)
    assert all(layer.compute_dtype is None for layer in _cheap_paper_model("taichi256").canonical.layers)


def test_mixed_precision_bf16_runs_on_cpu_and_fp16_is_cuda_only():
    torch.manual_seed(0)
    kw = dict(resolution=32, z_dim=8, w_dim=8, channel_base=256, channel_max=8, mixed_precision_res=2)
    ref = StyleGAN3Generator(**kw).eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        base = ref(z)[0]
        for dtype, exact in (("float16", True), ("bfloat16", False)):
            g = StyleGAN3Generator(**kw, mixed_precision=dtype).eval()
            g.load_state_dict(ref.state_dict())
            img, feat = g(z)
            assert img.dtype == feat.dtype == torch.float32
            if exact:  # float16 on CPU: skipped, as official (CUDA only)
                assert torch.equal(img, base)
            else:
                err = float((img - base).abs().max() / base.abs().max())
                assert 0 < err < 0.1, err


def test_new_keys_are_range_checked(tiny_gendef_kwargs):
    for key, bad in (("mixed_precision", "fp8"), ("warp_padding", "white"), ("mtm_placement", "some"),
                     ("canonical_feature_resize", "nearest"), ("deformation_mtm_resolutions", [64, 4]), ("mtm_mask", 1)):
        with pytest.raises(ModelConfigError):
            GenDeF(**dict(tiny_gendef_kwargs, **{key: bad}))


# ----------------------------------------------------------------------------- item 9: G_d upsampling (declared)
def test_bilinear_x2_is_zero_stuffing_with_the_official_fir_away_from_the_border():
    """Declared difference, checked where it holds: G_d's bilinear x2 (align_corners=False) equals
    zero-stuffing plus the official [1,3,3,1] FIR (gain 4) on all but the outer pixel (bilinear
    replicates the edge, the FIR pads zeros); what stays different is the conv's place (after the
    upsampling here, a stride-2 transposed conv before the FIR in official conv2d_resample)."""
    from tests.reference_layers import upfirdn2d

    x = torch.randn(1, 2, 6, 6, generator=torch.Generator().manual_seed(0))
    bilinear = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    fir = upfirdn2d(x, torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8, up=2, padding=(2, 1, 2, 1), gain=4)
    torch.testing.assert_close(bilinear[..., 1:-1, 1:-1], fir[..., 1:-1, 1:-1], atol=1e-6, rtol=0)
    assert float((bilinear[..., 0, :] - fir[..., 0, :]).abs().max()) > 0.01  # the border differs


def test_stylegan2_canonical_gets_the_mask_too(tiny_gendef_kwargs):
    g = GenDeF(**dict(tiny_gendef_kwargs, mtm=True, mtm_resolutions=[8, 16], mtm_mask=True))
    convs = [c.conv for c in g.canonical.convs if isinstance(c.conv, ModulatedDeformConv2d)]
    assert convs and all(c.offset.mask and c.offset.weight.shape[0] == 27 for c in convs)

"""ADA "bgc" augmentation and the double-backward-safe resampler it runs on."""
import math

import pytest
import torch
import torch.nn.functional as F

from train.augment import BGC, AdaptiveAugment, augment, color_matrix, geometric_matrix
from train.resample import affine_coords, bilinear_sample

GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")


def only(*names):
    return {k: 1 for k in names}


def _as_grid_sample(coords, h, w):
    return torch.stack([coords[..., 0] / (w - 1) * 2 - 1, coords[..., 1] / (h - 1) * 2 - 1], -1)


def test_resampler_matches_grid_sample_with_reflection():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 9, 7, dtype=torch.float64)
    coords = torch.randn(2, 5, 6, 2, dtype=torch.float64) * 8 + 3  # many points far outside
    ref = F.grid_sample(x, _as_grid_sample(coords, 9, 7), mode="bilinear", padding_mode="reflection", align_corners=True)
    torch.testing.assert_close(bilinear_sample(x, coords), ref, atol=1e-12, rtol=0)


def test_resampler_gradgradcheck():
    torch.manual_seed(1)
    x = torch.rand(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    coords = torch.rand(1, 3, 3, 2, dtype=torch.float64) * 6 - 1
    assert torch.autograd.gradcheck(lambda img: bilinear_sample(img, coords), (x,))
    assert torch.autograd.gradgradcheck(lambda img: bilinear_sample(img, coords), (x,))
    # the weights are differentiable in the coordinates too (first order)
    c = coords.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda cc: bilinear_sample(x.detach(), cc), (c,))


def test_r1_through_resampler_equals_native_double_backward():
    """R1's gradient w.r.t. D's weights through our resampler equals the one through grid_sample
    (whose double backward exists on this CPU build), and needs no grid_sample at all."""
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(3, 4, 3).double()
    real = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    coords = affine_coords(geometric_matrix(2, 8, 8, 1.0, BGC, "cpu"), 8, 8).double()

    def r1_grad(sample):
        x = real.clone().requires_grad_(True)
        logits = conv(sample(x)).square().sum()
        (g,) = torch.autograd.grad(logits, x, create_graph=True)
        return torch.autograd.grad(g.square().sum(), conv.weight)[0]

    native = r1_grad(lambda x: F.grid_sample(x, _as_grid_sample(coords, 8, 8), padding_mode="reflection", align_corners=True))
    ours = r1_grad(lambda x: bilinear_sample(x, coords))
    torch.testing.assert_close(ours, native, atol=1e-10, rtol=1e-8)


def test_integer_ops_copy_pixels_exactly():
    torch.manual_seed(3)
    x = torch.rand(64, 3, 8, 8) * 2 - 1
    y = augment(x, 1.0, only("xflip", "rotate90", "xint"))
    assert torch.isin(y, x).all()  # no interpolation: every value is an input pixel
    flips = augment(x, 1.0, only("xflip"))
    same = [(a == b).all() for a, b in zip(flips, x)]
    mirrored = [(a == b.flip(-1)).all() for a, b in zip(flips, x)]
    assert all(s or m for s, m in zip(same, mirrored)) and 10 < sum(mirrored) < 54
    rot = augment(x, 1.0, only("rotate90"))
    assert all(any((a == torch.rot90(b, r, (1, 2))).all() for r in range(4)) for a, b in zip(rot, x))


def test_geometric_ops_move_content_colour_ops_keep_geometry():
    torch.manual_seed(4)
    x = torch.rand(16, 3, 12, 12) * 2 - 1
    for name in GEOMETRIC[3:]:
        y = augment(x, 1.0, only(name))
        assert (y - x).abs().amax(dim=(1, 2, 3)).min() > 1e-3, name  # every sample moved
        assert y.min() >= x.min() - 1e-6 and y.max() <= x.max() + 1e-6  # bilinear: convex mixtures
    g = geometric_matrix(5, 8, 8, 1.0, only("brightness", "hue"), "cpu")
    assert torch.equal(g, torch.eye(3, dtype=g.dtype).expand(5, 3, 3))


def test_colour_ops_by_their_definition():
    torch.manual_seed(5)
    x = torch.rand(32, 3, 6, 6) * 2 - 1
    luma = lambda t: t.mean(-3)  # noqa: E731  (ADA's luma axis is (1, 1, 1) / sqrt(3))
    for name in ("hue", "saturation"):
        y = augment(x, 1.0, only(name))
        torch.testing.assert_close(luma(y), luma(x), atol=1e-5, rtol=0)
        assert (y - x).abs().amax() > 0.1, name
    flip = augment(x, 1.0, only("lumaflip"))
    flipped = [torch.allclose(luma(a), -luma(b), atol=1e-5) for a, b in zip(flip, x)]
    kept = [torch.allclose(a, b) for a, b in zip(flip, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and 4 < sum(flipped) < 28
    b = augment(x, 1.0, only("brightness")) - x
    assert torch.allclose(b, b.mean(dim=(1, 2, 3), keepdim=True).expand_as(b), atol=1e-5)
    assert 0.1 < b.mean(dim=(1, 2, 3)).std() < 0.3  # N(0, 0.2) offsets
    c = augment(x, 1.0, only("contrast")) / x
    assert torch.allclose(c, c.mean(dim=(1, 2, 3), keepdim=True).expand_as(c), atol=1e-4)


@pytest.mark.parametrize("name", ["xflip", "brightness", "scale"])
def test_each_op_fires_with_probability_p(name):
    torch.manual_seed(6)
    n, p = 4000, 0.3
    if name in GEOMETRIC:
        m = geometric_matrix(n, 8, 8, p, only(name), "cpu")
        changed = (m - torch.eye(3, dtype=m.dtype)).abs().amax(dim=(1, 2)) > 0
    else:
        m = color_matrix(n, p, only(name), "cpu")
        changed = (m - torch.eye(4, dtype=m.dtype)).abs().amax(dim=(1, 2)) > 0
    expect = p / 2 if name == "xflip" else p  # half of the flips draw "no flip"
    assert abs(changed.float().mean().item() - expect) < 0.03


def test_one_draw_per_clip():
    torch.manual_seed(7)
    clip = (torch.rand(6, 1, 3, 16, 16) * 2 - 1).expand(6, 3, 3, 16, 16).contiguous()
    out = augment(clip, 1.0)
    assert out.shape == clip.shape
    torch.testing.assert_close(out[:, 0], out[:, 1], atol=0, rtol=0)
    torch.testing.assert_close(out[:, 1], out[:, 2], atol=0, rtol=0)
    assert (out[0, 0] - out[1, 0]).abs().max() > 0.1  # clips get different draws
    assert augment(clip, 0.0) is clip


def test_augment_keeps_dtype_and_runs_outside_autocast():
    x = (torch.rand(2, 3, 8, 8) * 2 - 1).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = augment(x, 1.0)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()


def test_adaptive_p_follows_ada():
    cfg = {"augment": "ada", "aug_p": 0.0, "ada_target": 0.6, "ada_interval": 4, "ada_kimg": 100, "batch_size": 64}

    class Acc:
        device = "cpu"

        def reduce(self, t, reduction):
            return t

    ada, acc = AdaptiveAugment(cfg), Acc()
    for step in range(1, 4):
        ada.observe(torch.ones(8))
        assert ada.step(acc, step) is None  # only every ada_interval steps
    ada.observe(torch.ones(8))
    assert ada.step(acc, 4) == 1.0 and math.isclose(ada.p, 64 * 4 / 100_000)
    for step in range(5, 13):
        ada.observe(-torch.ones(8))
        ada.step(acc, step)
    assert ada.p == 0.0  # never below 0
    assert AdaptiveAugment({**cfg, "augment": "none", "aug_p": 0.5}).current == 0.0
    fixed = AdaptiveAugment({**cfg, "augment": "fixed", "aug_p": 0.5})
    fixed.observe(torch.ones(8))
    assert fixed.step(acc, 4) is None and fixed.current == 0.5

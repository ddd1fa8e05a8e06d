"""The generator's bilinear resize (``layers.resize_bilinear``): on the CPU it goes through channels-last
for speed, and must give F.interpolate's numbers (to float rounding), its gradients, and a contiguous result."""
import pytest
import torch
import torch.nn.functional as F

from gendef.generator.networks.layers import resize_bilinear

SHAPES = [(16, 48, 32, 32), (3, 5, 7, 9), (1, 3, 4, 4), (2, 96, 32, 32), (5, 2, 16, 16)]


def plain(x, **kw):
    return F.interpolate(x, mode="bilinear", align_corners=False, **kw)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kw", [dict(scale_factor=2.0), dict(size=(11, 6))])
def test_resize_matches_interpolate(shape, kw):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    a, b = plain(x, **kw), resize_bilinear(x, **kw)
    assert b.shape == a.shape and b.is_contiguous()
    assert (a - b).abs().max().item() <= 1e-6 * max(1.0, a.abs().max().item())


def test_resize_is_exact_on_the_generator_shapes():
    """The default model's layers (a few channels, 4..32 px) round exactly like F.interpolate."""
    g = torch.Generator().manual_seed(1)
    for shape in [(2, 64, 4, 4), (2, 64, 8, 8), (2, 32, 16, 16), (16, 3, 16, 16)]:
        x = torch.randn(*shape, generator=g)
        assert torch.equal(resize_bilinear(x, scale_factor=2.0), plain(x, scale_factor=2.0))


def test_resize_gradients_match_interpolate():
    x = torch.randn(4, 24, 8, 8, generator=torch.Generator().manual_seed(2))
    w = torch.randn(4, 24, 16, 16, generator=torch.Generator().manual_seed(3))
    grads = []
    for f in (plain, resize_bilinear):
        xi = x.clone().requires_grad_()
        (f(xi, scale_factor=2.0) * w).sum().backward()
        grads.append(xi.grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)


def test_resize_keeps_a_channels_last_input_channels_last():
    x = torch.randn(2, 8, 5, 5).contiguous(memory_format=torch.channels_last)
    y = resize_bilinear(x, scale_factor=2.0)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y, plain(x, scale_factor=2.0))

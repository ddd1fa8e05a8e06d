"""Shared fixtures: tiny randomly initialised models of the real classes (seconds on 2 cores)."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_GENDEF = dict(
    resolution=16,
    z_dim=16,
    w_dim=16,
    channel_base=256,
    channel_max=32,
    mapping_layers=2,
    canonical_feature_dim=8,
    deformation_channel_base=128,
    deformation_channel_max=16,
    motion_noise_dim=8,
    motion_code_dim=8,
    time_num_freqs=4,
)


@pytest.fixture
def tiny_gendef_kwargs():
    return dict(TINY_GENDEF)


@pytest.fixture
def tiny_model():
    import torch

    from gendef import GenDeF

    torch.manual_seed(0)
    return GenDeF(**TINY_GENDEF)


@pytest.fixture
def tiny_checkpoint(tmp_path, tiny_model):
    """A save_pretrained folder of a tiny random model, whose deformation is non-trivial."""
    import torch

    with torch.no_grad():
        last = tiny_model.deformation.to_outs[-1]
        last.conv.weight.normal_(0, 0.05)
        last.bias.copy_(torch.tensor([1.0, 1.0, 0.0, 0.0]))
    path = tmp_path / "tiny_ckpt"
    tiny_model.save_pretrained(path)
    return path

"""Stage 2's drift start (train/drift_start.py): G_d fitted to a coherent drift before the adversarial steps,
past the blur valley (train/README 11)."""
import torch

from gendef import GenDeF
import pytest

from train.drift_start import UNIFORMITY, drift_loss, fit_drift, row_profile

from tests.test_motion_time import TINY

TIMES = torch.tensor([[0.0, 4.0, 8.0], [2.0, 3.0, 10.0]])


def _uniform(velocity, times, size=8):
    """Offsets [B, T, size, size, 2] of a whole-frame drift at per-clip velocities [B, 2] (px a frame)."""
    off = velocity[:, None, :] * (times - times[:, :1])[..., None]
    return off[:, :, None, None, :].expand(-1, -1, size, size, -1).clone()


def test_a_uniform_drift_at_the_asked_speed_costs_nothing():
    v = torch.tensor([[0.6, 0.0], [0.0, -0.6]])
    loss, speed = drift_loss(_uniform(v, TIMES), TIMES, 0.6)
    assert loss.item() < 1e-10
    torch.testing.assert_close(speed, torch.tensor([0.6, 0.6]))


def test_a_still_field_costs_the_squared_speed_and_spread_costs_its_variance():
    still = torch.zeros(2, 3, 8, 8, 2)
    loss, speed = drift_loss(still, TIMES, 0.5)
    assert abs(loss.item() - 0.25) < 1e-6 and speed.abs().max() < 1e-9
    spread = still.clone()
    spread[..., :4, :, 0] = 1.0  # half the frame 1 px left of the other half, in every frame: variance 0.125 per axis
    loss2, _ = drift_loss(spread, TIMES, 0.5)
    assert abs(loss2.item() - (0.25 + UNIFORMITY * 0.125)) < 1e-6


def test_the_sky_profile_slows_from_the_top_row_to_a_still_ground():
    w = row_profile("sky", 64)
    assert w[0] > 0.99 and w[-14:].abs().max() == 0  # the lowest 22 % (the mean horizon) stand still
    assert bool((w[1:] <= w[:-1]).all()) and 0.5 < float(w.mean()) < 0.6
    assert torch.equal(row_profile("uniform", 8), torch.ones(8))
    with pytest.raises(ValueError, match="drift_start_profile"):
        row_profile("wind", 8)


def test_a_sky_drift_costs_nothing_under_its_profile_and_a_whole_frame_drift_does():
    w = row_profile("sky", 8)
    v = torch.tensor([[0.6, 0.0], [0.0, -0.6]])
    sky = _uniform(v, TIMES) * w[None, None, :, None, None]
    loss, speed = drift_loss(sky, TIMES, 0.6, w)
    assert loss.item() < 1e-10
    torch.testing.assert_close(speed, torch.tensor([0.6, 0.6]))
    whole, _ = drift_loss(_uniform(v, TIMES), TIMES, 0.6, w)
    assert whole.item() > 1e-3  # the ground moves: spread from the profile, and a faster top row


def test_a_bent_path_costs_its_distance_from_the_line():
    bent = _uniform(torch.tensor([[0.5, 0.0], [0.5, 0.0]]), TIMES)
    bent[:, 1, ..., 1] += 1.0  # the middle frame 1 px off the straight path
    loss, _ = drift_loss(bent, TIMES, 0.5)
    assert abs(loss.item() - 1.0 / 6) < 1e-6  # mean over B, T, 2 of the squared deviation


def _times(b):
    return torch.randint(0, 8, (b, 1)).float() + torch.tensor([0.0, 4.0, 8.0])


@torch.no_grad()
def _speed_pct(G, n=64):
    """Mean drift speed of n clips, % of the side a frame."""
    times = _times(n)
    z_c, z_d, noise = G.make_latents(n, 12)
    grid = G.generate(z_c, z_d, noise, times)["grid_norm"]
    offset = (grid - G.base_grid) * ((G.resolution - 1) / 2)
    return float(drift_loss(offset, times, 0.0)[1].mean()) / G.resolution * 100


def test_the_fit_starts_the_field_drifting_and_leaves_g_c_alone():
    torch.manual_seed(0)
    G = GenDeF(**{**TINY, "deformation_init": "xavier", "field_reference_time": 8.0, "time_min_period": 256,
                  "time_max_period": 4096, "motion_anchor_spacing": 256}).train()
    G.deformation.reset_output()
    canonical = {k: v.clone() for k, v in G.canonical.state_dict().items()}
    before = _speed_pct(G)
    history = fit_drift(G, 60, 5.0, 16, _times, lr=0.01, log=lambda _: None)
    after = _speed_pct(G)
    assert before < 0.2 and 2.0 < after < 7.0, (before, after)  # % of the side a frame, target 5
    assert len(history) == 10 and history[-1][0] == 60
    assert all(torch.equal(v, G.canonical.state_dict()[k]) for k, v in canonical.items())
    assert all(p.grad is None for p in G.parameters())

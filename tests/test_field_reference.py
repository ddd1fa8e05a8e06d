"""field_reference_time: every frame's field is G_d's field minus G_d's field at one fixed time, so the
canonical image is that frame and G_d's output is motion only (train/README 11, issue 27)."""
import numpy as np
import torch

from gendef import GenDeF
from train.finetune import retimed_motion

from tests.test_motion_time import TINY


def _model(ref):
    torch.manual_seed(0)
    return GenDeF(**{**TINY, "deformation_init": "xavier", "field_reference_time": ref}).eval()


def _m(video) -> np.ndarray:
    """|grid - identity| per frame, in pixels."""
    h, w = video.grid.shape[1:3]
    ys, xs = np.mgrid[0:h, 0:w]
    ident = np.stack([xs, ys], -1).astype(np.float32)
    return np.abs(video.grid - ident).mean((1, 2, 3))


def test_the_field_is_zero_at_the_reference_time_and_moves_elsewhere():
    absolute, relative = _model(None).sample(seed=3, num_frames=8), _model(5.0).sample(seed=3, num_frames=8)
    assert _m(absolute)[5] > 0.05  # a random G_d displaces every frame
    m = _m(relative)
    assert m[5] < 1e-4 and np.all(np.delete(m, 5) > 1e-3)
    np.testing.assert_array_equal(absolute.canonical, relative.canonical)


def test_the_motion_noise_covers_the_reference_time_and_stays_prefix_stable():
    G = _model(40.0)
    short, long = G.sample(seed=1, num_frames=2), G.sample(seed=1, num_frames=12)  # the noise must reach t = 40
    np.testing.assert_allclose(short.grid, long.grid[:2], atol=1e-5)
    z, _, noise = G.make_latents(2, 4)
    assert noise.shape[1] == G.motion.make_noise(1, 40).shape[1]


def test_stage2_takes_the_reference_time_from_its_config_and_keeps_every_weight():
    G = GenDeF(**TINY)
    new = retimed_motion(G, TINY, {"field_reference_time": 16.0})
    assert new.field_reference_time == 16.0 and G.field_reference_time is None
    old, now = G.state_dict(), new.state_dict()
    assert old.keys() == now.keys() and all(torch.equal(old[k], now[k]) for k in old)


def test_stage2_can_start_the_field_moving_from_a_random_last_layer():
    G = GenDeF(**TINY)
    new = retimed_motion(G, TINY, {"field_reference_time": 4.0, "deformation_init": "xavier"})
    new.deformation.reset_output()
    m = _m(new.eval().sample(seed=0, num_frames=8))
    assert m[4] < 1e-4 and m[0] > 1e-3  # zero at the reference time, moving elsewhere
    assert G.deformation.to_outs[-1].conv.weight.abs().sum() == 0

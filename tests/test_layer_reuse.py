"""``--layers auto`` reuses what it computed: the one-canvas fit is finished only where one canvas
is kept, the trial's one-canvas arm is the fit's own record, and a level can be run in parts."""
from __future__ import annotations

import numpy as np
import pytest

from gendef.data.layered import layered_scene
from gendef.decomposition import decompose
from gendef.decomposition import layer_choice
from gendef.decomposition.fit import Fit, FitSettings
from gendef.decomposition.inputs import working_frames
from tests.test_decompose import _magnifier


def _pan(t_count=8, size=40) -> np.ndarray:
    rng = np.random.default_rng(3)
    big = np.kron(rng.random((size // 4 + 8, size // 4 + 8, 3)), np.ones((4, 4, 1))).astype(np.float32)
    return np.stack([big[t : t + size, 2 * t : 2 * t + size] for t in range(t_count)])


def test_a_level_run_in_parts_is_the_level_in_one_go():
    video = _pan()
    whole, parts = (Fit(video, FitSettings(steps=10, margin=4), lambda f, m: None) for _ in range(2))
    whole.fit_level(2, 10, first_level=True)
    run = parts.start_level(2, 10, first_level=True)
    run.advance(3).advance(4).advance(20).finish()  # past the end: stops at the level's 10 steps
    assert run.it == 10 and len(run.psnrs) == 10
    assert np.array_equal(whole.canonical.detach().numpy(), parts.canonical.detach().numpy())
    for a, b in zip(whole.fields[0].lattices, parts.fields[0].lattices):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())
    assert whole.history == parts.history and len(whole.history[0][1]) == 10


def test_errors_before_the_last_level_are_measured_at_that_level():
    """Half-way, the canonical is half size: its errors are measured against the frames at that
    size (upsampled back), not against the full frames it cannot resolve yet."""
    video = _pan()
    fit = Fit(video, FitSettings(steps=40, margin=4), lambda f, m: None)
    fit.fit_level(2, 24, first_level=True)
    err = fit.errors()
    assert err.shape == video.shape[:3]
    assert float(np.median(err)) < 0.05  # a fitted pan at its level; the full-size 4-px texture is not an error
    assert fit.result(16.0).canonical.shape[:2] == fit.canvas.hw  # an unfinished fit still renders at full size


@pytest.fixture(scope="module")
def disc():
    return layered_scene(2, num_frames=16, size=96, points=8, share=0.05).frames


def test_where_layers_pay_auto_is_exactly_layers_2_and_skips_the_last_one_canvas_level(disc, monkeypatch):
    levels = []
    fit_level = Fit.fit_level

    def counted(self, factor, n_steps, first_level):
        levels.append((self.settings.layers, self.settings.robust, factor, n_steps))
        return fit_level(self, factor, n_steps, first_level)

    monkeypatch.setattr(Fit, "fit_level", counted)
    auto = decompose(disc, steps=60, threads=1)
    one_canvas = [lv for lv in levels if lv[:2] == (1, 0.0)]
    assert one_canvas == [(1, 0.0, 2, 36)]  # the half-size level only: the full-size one (24 steps) is never run
    two = decompose(disc, steps=60, threads=1, layers=2)
    assert auto.metadata["layers_chosen"] == 2 and "before its last level" in auto.metadata["layers_reason"]
    assert np.array_equal(auto.grid, two.grid) and np.array_equal(auto.canonical, two.canonical)
    trial = auto.metadata["layers_trial"]
    assert trial["steps"] == 5 and trial["scale"] == "1/2" and trial["gain_db"] >= layer_choice.TRIAL_GAIN_DB


def test_where_layers_do_not_pay_auto_is_exactly_layers_1():
    frames = _magnifier()
    auto = decompose(frames, steps=40, threads=1)
    one = decompose(frames, steps=40, threads=1, layers=1)
    assert "layers_trial" in auto.metadata and auto.metadata["layers_trial"]["gain_db"] < layer_choice.TRIAL_GAIN_DB
    assert np.array_equal(auto.grid, one.grid) and np.array_equal(auto.canonical, one.canonical)


def test_the_trials_one_canvas_arm_is_the_fits_own_record(disc):
    """The trial's one-canvas PSNR is the one-canvas fit's PSNR at the same step of its first level."""
    video = working_frames(disc, (96, 96))
    settings = FitSettings(steps=60, margin=6, robust=0.0, layers=3, auto_layers=True)
    one = layer_choice._OneCanvas(video, settings, lambda f, m: None)
    assert one.left == [(1, 24)] and len(one.fit.history) == 1
    mask, groups = one.movers(3)
    run = layer_choice._layered(video, settings, one.fit.flows, mask, groups, lambda f, m: None).start_level(2, 36, first_level=True)
    tried = layer_choice.trial(run, one.fit.history[0][1], 5)
    assert tried["one_canvas_db"] == round(one.fit.history[0][1][4], 2) and tried["layers_db"] == round(run.psnrs[4], 2)
    assert run.it == 5 and tried["gain_db"] >= layer_choice.TRIAL_GAIN_DB


def test_the_cpu_adam_is_torch_adam_bit_for_bit():
    """The fit's Adam on the CPU (no torch.optim, whose first use imports torch._dynamo) takes the
    very steps torch.optim.Adam takes: two groups, their lrs changed before every step."""
    import torch

    from gendef.decomposition.adam import CpuAdam, adam

    rng = np.random.default_rng(0)
    start = [torch.from_numpy(rng.standard_normal(s).astype(np.float32)) for s in ((1, 3, 5, 7), (4, 2, 3, 3))]
    runs = []
    for make in (CpuAdam, torch.optim.Adam):
        a, b = (x.clone().requires_grad_(True) for x in start)
        opt = make([{"params": [a]}, {"params": [b]}], betas=(0.9, 0.99))
        for it in range(25):
            for group, lr in zip(opt.param_groups, (0.02 / (1 + it), 0.1 * (it % 3 + 1))):
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            ((a.sin() * 3).square().sum() + (b - 0.5).abs().sum() * (it % 2)).backward()
            opt.step()
        runs.append((a.detach().numpy(), b.detach().numpy()))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    assert float(np.abs(runs[0][0] - start[0].numpy()).max()) > 0.05  # they did move (0.077)
    assert isinstance(adam([{"params": [start[0].clone().requires_grad_(True)]}], (0.9, 0.99), torch.device("cpu")), CpuAdam)

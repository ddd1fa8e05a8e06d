"""Field health: the statistics on hand-made grids, the warnings, and benchmarks/field_health.py."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gendef.metrics.field_health import BANDS, field_stats, health_warnings
from gendef.video.grid import identity_grid

ROOT = Path(__file__).resolve().parents[1]
SITTING = ROOT.parent / "shared" / "gpu" / "h200-2026-12-04" / "sky128-sitting"


def test_a_steady_shift_has_its_length_no_roughness_and_its_speed():
    t, h, w = 5, 16, 20
    grid = identity_grid(h, w, t).astype(np.float64)
    grid[..., 0] += 3.0 + 0.5 * np.arange(t)[:, None, None]  # drifts right 0.5 px per frame
    grid[..., 1] += 4.0
    s = field_stats(grid, canvas_hw=(40, 40))
    assert s["mean"] == pytest.approx(np.mean([np.hypot(3 + 0.5 * i, 4) for i in range(t)]))
    assert s["max"] == pytest.approx(np.hypot(5.0, 4.0))
    assert s["hf"] == pytest.approx(0.0, abs=1e-9)
    assert s["speed"] == pytest.approx(0.25)  # per component: (0.5 + 0) / 2
    assert s["mean_pct"] == pytest.approx(100 * s["mean"] / 20)
    # shifts 3, 3.5, 4, 4.5, 5 round (half to even) to 3, 4, 4, 4, 5: x in 3..24, y in 4..19 of 40x40
    assert s["coverage"] == pytest.approx(22 * 16 / 1600)


def test_a_pixel_scramble_is_rough():
    grid = identity_grid(32, 32, 2).astype(np.float64)
    grid[..., 0] += np.where(np.arange(32) % 2, 1.0, -1.0)[None, None, :]  # neighbours swap places
    s = field_stats(grid)
    assert 0.45 < s["hf"] <= 0.5  # |m - blur(m)| ~ 1 in x, 0 in y
    assert s["speed"] == 0.0


def test_warnings_name_the_statistic_and_a_cause():
    sky = {"mean_pct": 30.3, "hf_pct": 1.55, "speed_pct": 0.006, "coverage": 0.35, "max_pct": 92.5}
    lines = health_warnings(sky)
    assert [ln.split(" ")[0] for ln in lines] == ["field/mean", "field/hf", "field/speed", "field/coverage"]
    assert "unconverged" in lines[0] and "texture" in lines[1] and "static" in lines[2]
    healthy = {"mean_pct": 5.0, "hf_pct": 0.2, "speed_pct": 0.5, "coverage": 0.9, "max_pct": 20.0}
    assert health_warnings(healthy) == []
    assert health_warnings(healthy, data_speed_pct=0.5) == []
    slow = health_warnings(healthy, data_speed_pct=1.0)
    assert len(slow) == 1 and "-50%" in slow[0] and "static" in slow[0]
    assert BANDS["hf_pct"] == pytest.approx(100 * 0.5 / 128)


def _bench(*args):
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "field_health.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_field_health_script_on_a_tiny_model(tmp_path):
    import torch

    from gendef import GenDeF

    torch.manual_seed(0)
    GenDeF(resolution=16, z_dim=8, w_dim=8, channel_base=64, channel_max=8, canonical_feature_dim=4,
           deformation_channel_base=32, deformation_channel_max=4, motion_noise_dim=4, motion_code_dim=4).save_pretrained(tmp_path / "m")
    r = _bench(tmp_path / "m", "--seeds", "0,1", "--frames", "4", "--json", tmp_path / "rows.json")
    assert r.returncode == 0, r.stderr
    assert "| 0 |" in r.stdout and "| 1 |" in r.stdout and "healthy" in r.stdout  # zero-initialised G_d: identity
    bad = _bench(tmp_path / "nothing-here")
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not SITTING.is_dir(), reason=f"the shared GPU export is not beside this checkout ({SITTING})")
def test_field_health_reproduces_the_sky128_sitting_figures(tmp_path):
    import json

    r = _bench(SITTING, "--seeds", "1", "--frames", "64", "--json", tmp_path / "rows.json")
    assert r.returncode == 0, r.stderr
    row = json.loads((tmp_path / "rows.json").read_text())[0]
    for key, issue in (("mean", 38.8), ("max", 118.0), ("hf", 1.99), ("speed", 0.0077)):
        assert abs(row[key] - issue) <= 0.1 * issue, (key, row[key], issue)
    assert r.stdout.count("warning:") == 4


def test_sky128_config_selects_the_guard_and_the_paper_recipe_stays_selectable():
    from train.config import load_config

    cfg = ROOT / "train" / "configs" / "sky128.yaml"
    guarded = load_config(str(cfg), [], "finetune")
    assert guarded["lambda_field_smooth"] > 0 and guarded["health_data_speed"] == pytest.approx(0.4)
    assert load_config(str(cfg), [], "pretrain")["lambda_field_smooth"] == 0  # stage 1 has no field
    paper = load_config(str(cfg), ["lambda_field_smooth=0"], "finetune")
    assert paper["lambda_field_smooth"] == 0 and paper["lr_deformation_mult"] == 1.0

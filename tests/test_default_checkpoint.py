"""The shipped default model (checkpoints/default), whichever it is: what any shipped default must be.

It loads offline from safetensors + config.json, is small, samples deterministically, looks trained on
the sky data, and samples exactly what its fingerprint (tests/default_fingerprint.json) recorded. The
fingerprint is rewritten only by the swap command (``python -m benchmarks.default_card MODEL --install``),
so new weights copied in by hand, or a change to sampling, fail here.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.default_fingerprint import FINGERPRINT, fingerprint_problems
from gendef import GenDeF

DEFAULT = Path(__file__).resolve().parent.parent / "checkpoints" / "default"


@pytest.fixture(scope="module")
def model():
    assert (DEFAULT / "model.safetensors").is_file(), "the default checkpoint must ship with the repository"
    return GenDeF.from_pretrained(DEFAULT)


def test_loads_from_safetensors_and_config_only(model):
    files = {f.name for f in DEFAULT.iterdir() if f.is_file()}
    assert {"config.json", "model.safetensors"} <= files
    assert not {f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))}  # no pickles
    assert model.resolution == json.loads((DEFAULT / "config.json").read_text())["resolution"]


def test_small_enough_to_ship():
    size = sum(f.stat().st_size for f in DEFAULT.iterdir() if f.is_file())
    assert size < 25 * 2**20


@pytest.mark.parametrize("frames", [16, 128])
def test_samples_deterministically(model, frames):
    a = model.sample(seed=11, num_frames=frames)
    b = model.sample(seed=11, num_frames=frames)
    assert a.num_frames == frames and a.frame_size == (model.resolution, model.resolution)
    assert np.array_equal(a.canonical, b.canonical) and np.array_equal(a.grid, b.grid)


def test_trained_not_an_initialisation(model):
    vids = model.sample_batch([0, 1, 2, 3], num_frames=16)
    canon = np.stack([v.canonical for v in vids])
    assert canon.std(axis=(1, 2)).mean() > 0.05  # images have structure
    assert np.abs(canon[0] - canon[1]).mean() > 0.02  # seeds differ
    # sky above, dark horizon silhouettes below, as in the training data
    top = canon[:, : model.resolution // 3].mean()
    bottom = canon[:, -model.resolution // 6 :].mean()
    assert top > bottom + 0.1
    # the deformation moved away from its zero initialisation, but stays small and smooth
    motion = np.stack([v.grid[-1] - v.grid[0] for v in vids])
    assert np.abs(motion).mean() > 0.01
    assert np.abs(motion).max() < model.resolution


def test_samples_what_its_fingerprint_recorded():
    stored = json.loads(FINGERPRINT.read_text())
    assert fingerprint_problems(DEFAULT, stored) == []


def test_cli_and_app_default_point_here():
    from gendef.cli import resolve_checkpoint
    from gendef.generator.shipped import default_checkpoint_path

    assert default_checkpoint_path() == DEFAULT and resolve_checkpoint(None) == str(DEFAULT)

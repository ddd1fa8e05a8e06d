"""`python -m gendef` end to end on a tiny random-init checkpoint, in real subprocesses."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gendef import CanonicalVideo
from gendef.video.reader import read_video

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "gendef", *map(str, args)], capture_output=True, text=True, cwd=cwd or ROOT, env=env, timeout=300)


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """One sample run shared by the tests below (each subprocess imports torch: seconds)."""
    import torch

    from gendef import GenDeF
    from tests.conftest import TINY_GENDEF

    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    m = GenDeF(**TINY_GENDEF)
    with torch.no_grad():
        m.deformation.to_outs[-1].conv.weight.normal_(0, 0.05)
        m.deformation.to_outs[-1].bias.copy_(torch.tensor([1.0, 1.0, 0.0, 0.0]))
    m.save_pretrained(d / "ckpt")
    r = run("sample", "--checkpoint", d / "ckpt", "--seed", 3, "--frames", 12, "--out", d / "doc.npz", "--video", d / "doc.mp4")
    assert r.returncode == 0, r.stderr
    return d, m


def test_sample_writes_the_same_video_as_the_api(sampled):
    d, m = sampled
    doc = CanonicalVideo.load(d / "doc.npz")
    ref = m.sample(seed=3, num_frames=12)
    assert np.allclose(doc.grid, ref.grid, atol=1e-5) and np.allclose(doc.canonical, ref.canonical, atol=1e-6)
    frames, _ = read_video(d / "doc.mp4")
    assert frames.shape == (12, 16, 16, 3)


def test_render(sampled):
    d, _ = sampled
    r = run("render", d / "doc.npz", "--out", d / "r.gif")
    assert r.returncode == 0, r.stderr
    frames, _ = read_video(d / "r.gif")
    ref = CanonicalVideo.load(d / "doc.npz").frames()
    assert frames.shape == ref.shape
    assert np.abs(frames / 255.0 - ref).mean() < 0.05


def test_propagate_rgba_overlay(sampled):
    from PIL import Image

    d, _ = sampled
    doc = CanonicalVideo.load(d / "doc.npz")
    edit = np.zeros((16, 16, 4), np.uint8)
    edit[6:9, 6:9] = (255, 0, 255, 255)
    Image.fromarray(edit, "RGBA").save(d / "edit.png")
    r = run("propagate", d / "doc.npz", "--image", d / "edit.png", "--out", d / "edited.npz")
    assert r.returncode == 0, r.stderr
    edited = CanonicalVideo.load(d / "edited.npz")
    assert np.allclose(edited.canonical[7, 7], [1, 0, 1], atol=1e-6)
    assert np.allclose(edited.canonical[0, 0], doc.canonical[0, 0], atol=1e-6)
    # baked edit == composited overlay wherever the warped alpha is exactly 0 or 1
    a = doc.warp(edit[..., 3].astype(np.float32) / 255.0)
    solid = (a < 1e-6) | (a > 1 - 1e-6)
    assert solid.mean() > 0.5 and (a > 1 - 1e-6).any()
    assert np.abs(edited.frames() - doc.render(edit)).max(-1)[solid].max() < 1e-5
    r = run("propagate", d / "doc.npz", "--image", d / "edit.png", "--out", d / "edited.mp4")
    assert r.returncode == 0 and (d / "edited.mp4").stat().st_size > 0


def test_track_json_matches_api_and_frame0_option(sampled):
    d, _ = sampled
    doc = CanonicalVideo.load(d / "doc.npz")
    r = run("track", d / "doc.npz", "--points", "5,6;10.5,3", "--json", d / "t.json")
    assert r.returncode == 0, r.stderr
    data = json.loads((d / "t.json").read_text())
    pos, vis = doc.track(np.array([[5, 6], [10.5, 3]]))
    assert np.allclose(data["tracks"][1]["x"], pos[:, 1, 0], atol=1e-3)
    assert data["tracks"][0]["visible"] == vis[:, 0].tolist()
    r = run("track", d / "doc.npz", "--points", "4,4", "--frame0", "--json", d / "t0.json")
    assert r.returncode == 0, r.stderr
    t0 = json.loads((d / "t0.json").read_text())["tracks"][0]
    assert abs(t0["x"][0] - 4) < 1e-2 and abs(t0["y"][0] - 4) < 1e-2


@pytest.mark.parametrize(
    "args,needle",
    [
        (["sample", "--checkpoint", "/does/not/exist", "--out", "x.npz"], "no such checkpoint"),
        (["sample", "--checkpoint", "CKPT", "--out", "x.txt"], "--out"),
        (["render", "missing.npz", "--out", "x.mp4"], "no such file"),
        (["render", "BADNPZ", "--out", "x.mp4"], "not a CanonicalVideo"),
        (["track", "DOC", "--points", "1,2;oops"], "bad point"),
        (["propagate", "DOC", "--image", "BADNPZ", "--out", "x.mp4"], "not a readable image"),
    ],
)
def test_bad_input_exits_nonzero_with_one_line(sampled, tmp_path, args, needle):
    d, _ = sampled
    (tmp_path / "bad.npz").write_text("not a zip")
    subst = {"CKPT": str(d / "ckpt"), "BADNPZ": str(tmp_path / "bad.npz"), "DOC": str(d / "doc.npz")}
    r = run(*[subst.get(a, a) for a in args], cwd=tmp_path)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_every_command_has_help():
    for cmd in ("sample", "render", "propagate", "track"):
        r = run(cmd, "--help")
        assert r.returncode == 0 and "usage" in r.stdout

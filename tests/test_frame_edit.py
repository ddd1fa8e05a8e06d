"""Edits made on a frame, carried to the canonical image through the grid (known affine motion)."""
import subprocess
import sys

import numpy as np
import pytest

from gendef.video.canonical_video import CanonicalVideo
from gendef.errors import CanonicalVideoError

T, H, W, HC, WC = 24, 40, 40, 80, 80


def _affine(t):
    """Frame t samples canonical A_t p + b_t: zoom 0.9..1.1, a slow turn and a drift (exact, invertible)."""
    s = 0.9 + 0.2 * t / (T - 1)
    th = 0.012 * t
    a = s * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    centre = np.array([(W - 1) / 2, (H - 1) / 2])
    b = np.array([(WC - 1) / 2 + 0.35 * t - 4, (HC - 1) / 2 + 0.2 * t - 2]) - a @ centre
    return a, b


@pytest.fixture(scope="module")
def video():
    from skimage import data, transform

    canon = np.clip(transform.resize(data.astronaut(), (HC, WC), anti_aliasing=True), 0, 1).astype(np.float32)
    ys, xs = np.mgrid[:H, :W].astype(np.float64)
    p = np.stack([xs, ys], -1)
    grid = np.stack([p @ a.T + b for a, b in map(_affine, range(T))]).astype(np.float32)
    return CanonicalVideo(canon, grid, fps=12.0)


def _dot(centre, radius=2.5):
    """Anti-aliased red disc on a transparent frame-size layer (4x4 supersampled)."""
    ss = 4
    ys, xs = np.mgrid[: H * ss, : W * ss]
    inside = np.hypot((xs + 0.5) / ss - 0.5 - centre[0], (ys + 0.5) / ss - 0.5 - centre[1]) <= radius
    alpha = inside.reshape(H, ss, W, ss).mean((1, 3)).astype(np.float32)
    rgba = np.zeros((H, W, 4), np.float32)
    rgba[..., 0], rgba[..., 3] = 1.0, alpha
    return rgba


def _centroid(weight):
    ys, xs = np.mgrid[: weight.shape[0], : weight.shape[1]]
    return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()


def test_dot_on_frame_5_lands_on_the_analytic_pixel_of_frame_20(video):
    d5 = np.array([14.3, 22.7])
    layer = video.frame_edit_to_canonical(_dot(d5), 5)
    assert layer.shape == (HC, WC, 4) and layer.dtype == np.float32
    a5, b5 = _affine(5)
    a20, b20 = _affine(20)
    c = a5 @ d5 + b5
    want = np.linalg.solve(a20, c - b20)  # where frame 20 shows canonical c
    alpha20 = video.render(layer[..., 3])[20]
    err = np.linalg.norm(_centroid(alpha20) - want)
    assert err <= 0.5, err
    assert err <= 0.1, err  # measured ~0.02 px: the inversion is sub-pixel
    # the painted frame itself gets its dot back (same centroid and area)
    alpha5 = video.render(layer[..., 3])[5]
    assert np.linalg.norm(_centroid(alpha5) - d5) < 0.1
    assert alpha5.sum() == pytest.approx(_dot(d5)[..., 3].sum(), rel=0.05)


def test_canonical_changes_only_under_the_dot(video):
    d5 = np.array([14.3, 22.7])
    baked = video.with_edit(video.frame_edit_to_canonical(_dot(d5), 5)).canonical
    changed = np.abs(baked - video.canonical).max(-1) > 1e-6
    ys, xs = np.nonzero(changed)
    a5, b5 = _affine(5)
    in_frame5 = np.linalg.solve(a5, np.stack([xs, ys]).astype(np.float64) - b5[:, None]).T
    assert changed.sum() > 10
    assert np.hypot(*(in_frame5 - d5).T).max() <= 2.5 + 1.5  # dot radius + bilinear reach
    assert baked[changed][:, 0].max() == pytest.approx(1.0, abs=1e-3)  # red where opaque


def test_full_frame_replacement_touches_only_what_the_frame_shows(video):
    yy, xx = np.mgrid[:H, :W]
    repl = np.stack([xx / (W - 1), yy / (H - 1), np.full((H, W), 0.5)], -1).astype(np.float32)  # smooth ramp
    edited = video.with_edit(video.frame_edit_to_canonical(repl, 7))
    ys, xs = np.mgrid[:HC, :WC]
    a7, b7 = _affine(7)
    p = np.linalg.solve(a7, np.stack([xs.ravel(), ys.ravel()]).astype(np.float64) - b7[:, None]).T.reshape(HC, WC, 2)
    changed = np.abs(edited.canonical - video.canonical).max(-1) > 1e-6
    outside = (p[..., 0] < -1.5) | (p[..., 0] > W + 0.5) | (p[..., 1] < -1.5) | (p[..., 1] > H + 0.5)
    inside = (p[..., 0] > 0.5) & (p[..., 0] < W - 1.5) & (p[..., 1] > 0.5) & (p[..., 1] < H - 1.5)
    assert not (changed & outside).any() and changed[inside].all()
    assert (~changed).sum() > 0.4 * HC * WC  # most of the canvas is never shown by frame 7
    # frame 7 of the edited video is the replacement (away from the frame border)
    f7 = edited.frames()[7]
    assert np.abs(f7 - repl)[2:-2, 2:-2].max() < 0.02


def test_bad_frame_edits_are_one_line_errors(video):
    with pytest.raises(CanonicalVideoError, match="frame size 40x40"):
        video.frame_edit_to_canonical(np.zeros((10, 10, 4), np.float32), 0)
    with pytest.raises(CanonicalVideoError, match="out of range 0..23"):
        video.frame_edit_to_canonical(np.zeros((H, W, 4), np.float32), 24)
    assert not video.frame_edit_to_canonical(np.zeros((H, W, 4), np.float32), 3).any()  # nothing painted
    mask = np.zeros((H, W), bool)
    mask[10:20, 10:20] = True
    m = video.frame_edit_to_canonical(mask, 3)
    assert m.shape == (HC, WC) and (video.propagate_mask(m)[3] == mask)[1:-1, 1:-1].mean() > 0.97


def test_cli_propagate_on_a_frame(video, tmp_path):
    from PIL import Image

    doc = video.save(tmp_path / "v.npz")
    dot = (np.clip(_dot(np.array([14.3, 22.7])), 0, 1) * 255 + 0.5).astype(np.uint8)
    Image.fromarray(dot, "RGBA").save(tmp_path / "edit_on_frame_5.png")
    run = [sys.executable, "-m", "gendef", "propagate", str(doc), "--frame", "5", "--image", str(tmp_path / "edit_on_frame_5.png")]
    r = subprocess.run(run + ["--out", str(tmp_path / "e.npz")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    want = video.with_edit(video.frame_edit_to_canonical(dot, 5)).canonical
    np.testing.assert_allclose(CanonicalVideo.load(tmp_path / "e.npz").canonical, want, atol=1e-6)
    r = subprocess.run(run[:6] + ["99"] + run[7:] + ["--out", str(tmp_path / "e.mp4")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == "error: --frame 99: the video has frames 0..23"


def test_frame_edit_at_a_larger_output_size(video):
    """Output size 2x the grid: the edit is given at output size and lands at the same canonical place."""
    big = CanonicalVideo(video.canonical, video.grid, video.fps, size=(2 * H, 2 * W))
    d5 = np.array([14.3, 22.7])
    dot = _dot(d5)
    big_dot = np.repeat(np.repeat(dot, 2, 0), 2, 1)  # the same dot, output pixels twice as small
    a = video.frame_edit_to_canonical(dot, 5)[..., 3]
    b = big.frame_edit_to_canonical(big_dot, 5)[..., 3]
    assert np.linalg.norm(_centroid(a) - _centroid(b)) < 0.1

"""CanonicalVideo: rendering, tracking, propagation and persistence against ground truth by construction."""
import numpy as np
import pytest

from gendef import CanonicalVideo, CanonicalVideoError
from gendef.video import identity_grid, normalized_to_pixels, pixels_to_normalized
from gendef.videoio import read_video

H = W = 64
T = 10
AMP = 2.0


def photo(h=H, w=W):
    from skimage import data, transform

    img = data.astronaut().astype(np.float32) / 255.0
    return transform.resize(img, (h, w), anti_aliasing=True).astype(np.float32)


def forward_motion(c, t):
    """Canonical -> frame position (the ground truth): drift plus a smooth wobble."""
    x, y = c[..., 0], c[..., 1]
    fx = x + 1.5 * t + AMP * np.sin(y / 15.0 + 0.2 * t)
    fy = y + 0.5 * t + AMP * np.cos(x / 17.0)
    return np.stack([fx, fy], axis=-1)


def inverse_grid(t):
    """grid[t](p) = forward_motion^-1(p), solved to machine precision by fixed-point iteration."""
    p = identity_grid(H, W)[0].astype(np.float64)
    c = p.copy()
    for _ in range(200):
        c = c - (forward_motion(c, t) - p)
    assert np.abs(forward_motion(c, t) - p).max() < 1e-9
    return c.astype(np.float32)


@pytest.fixture(scope="module")
def moving_video():
    grid = np.stack([inverse_grid(t) for t in range(T)])
    return CanonicalVideo(photo(), grid, fps=8)


def test_identity_grid_renders_canonical_exactly():
    img = photo()
    vid = CanonicalVideo(img, identity_grid(H, W, 4), fps=10)
    assert np.abs(vid.render() - img[None]).max() < 1e-5


def test_offset_identity_on_larger_canvas_crops_the_canvas():
    big = photo(80, 96)
    vid = CanonicalVideo(big, identity_grid(H, W, 2, offset=(7, 5)), fps=10)
    assert np.abs(vid.render()[1] - big[5 : 5 + H, 7 : 7 + W]).max() < 1e-5


def test_normalized_pixel_conversion_round_trip():
    g = np.random.default_rng(0).uniform(-3, 70, size=(5, 2)).astype(np.float32)
    assert np.allclose(normalized_to_pixels(pixels_to_normalized(g, (50, 70)), (50, 70)), g, atol=1e-4)
    corners = normalized_to_pixels(np.array([[-1.0, -1.0], [1.0, 1.0]], dtype=np.float32), (50, 70))
    assert np.allclose(corners, [[0, 0], [69, 49]])


def test_track_matches_ground_truth_within_005px(moving_video):
    rng = np.random.default_rng(1)
    pts = rng.uniform(10, 40, size=(40, 2))
    pos, vis = moving_video.track(pts)
    truth = np.stack([forward_motion(pts, t) for t in range(T)])
    inside = (truth[..., 0] >= -0.5) & (truth[..., 0] <= W - 0.5) & (truth[..., 1] >= -0.5) & (truth[..., 1] <= H - 0.5)
    err = np.linalg.norm(pos - truth, axis=-1)
    assert inside.sum() > 300
    assert err[inside].max() < 0.05
    assert np.array_equal(vis, inside)


def test_points_leaving_the_frame_are_invisible(moving_video):
    pts = np.array([[56.0, 30.0], [-30.0, 20.0]])  # drifts out right; outside the canvas
    pos, vis = moving_video.track(pts)
    truth = np.stack([forward_motion(pts, t) for t in range(T)])
    assert vis[0, 0] and not vis[-1, 0]
    expected = truth[:, 0, 0] <= W - 0.5
    assert np.array_equal(vis[:, 0], expected)
    assert not vis[:, 1].any()


def test_rgba_scribble_lands_at_tracked_positions(moving_video):
    centres = np.array([[20.0, 20.0], [35.0, 28.0], [28.0, 40.0]])
    colours = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    edit = np.zeros((H, W, 4), np.float32)
    for (cx, cy), col in zip(centres.astype(int), colours):
        edit[cy - 1 : cy + 2, cx - 1 : cx + 2, :3] = col
        edit[cy - 1 : cy + 2, cx - 1 : cx + 2, 3] = 1.0
    out = moving_video.render(edit)
    base = moving_video.render()
    pos, _ = moving_video.track(centres)
    ys, xs = np.mgrid[0:H, 0:W]
    for t in range(T):
        diff = np.abs(out[t] - base[t]).max(-1)
        changed = diff > 1e-4
        dist = np.min(np.linalg.norm(np.stack([xs, ys], -1)[:, :, None, :] - pos[t][None, None], axis=-1), axis=-1)
        assert not changed[dist > 3.5].any(), f"frame {t}: edit leaked away from its tracked pixels"
        for k in range(len(centres)):
            # where this blob's colour dominates, the alpha-weighted centroid is the tracked centre
            dist_k = np.linalg.norm(np.stack([xs, ys], -1) - pos[t, k], axis=-1)
            mask = dist_k < 3.5
            w_ = diff * mask
            cxy = np.array([(w_ * xs).sum(), (w_ * ys).sum()]) / w_.sum()
            assert np.linalg.norm(cxy - pos[t, k]) < 0.35, (t, k, cxy, pos[t, k])
            assert dist_k.min() < 0.75


def test_propagated_mask_follows_the_motion(moving_video):
    ys, xs = np.mgrid[0:H, 0:W]
    disc = (xs - 30) ** 2 + (ys - 30) ** 2 <= 8**2
    masks = moving_video.propagate_mask(disc)
    assert masks.shape == (T, H, W) and masks.dtype == bool
    for t in range(T):
        c = moving_video.grid[t]
        truth = (c[..., 0] - 30) ** 2 + (c[..., 1] - 30) ** 2 <= 8**2
        iou = (masks[t] & truth).sum() / (masks[t] | truth).sum()
        assert iou > 0.9


def test_flows_for_a_translation():
    img = photo()
    grid = np.stack([identity_grid(H, W)[0] + np.array([2.0 * t, -1.0 * t], np.float32) for t in range(4)])
    vid = CanonicalVideo(img, grid, fps=8)
    canon = vid.flows(space="canonical")
    assert canon.shape == (3, H, W, 2) and np.allclose(canon[..., 0], 2.0) and np.allclose(canon[..., 1], -1.0)
    frame = vid.flows(space="frame")
    # content moves opposite to the sampling offset
    assert np.allclose(frame[..., 0], -2.0, atol=1e-3) and np.allclose(frame[..., 1], 1.0, atol=1e-3)


def test_frame_to_canonical_inverts_track(moving_video):
    pts = np.array([[10.0, 12.0], [30.5, 40.25]])
    c = moving_video.frame_to_canonical(pts, frame=0)
    pos, vis = moving_video.track(c)
    assert vis[0].all() and np.abs(pos[0] - pts).max() < 1e-3


def test_save_load_round_trip(tmp_path, moving_video):
    vid = CanonicalVideo(moving_video.canonical, moving_video.grid, fps=12.5, metadata={"seed": 3})
    p = vid.save(tmp_path / "doc.npz")
    back = CanonicalVideo.load(p)
    assert np.array_equal(back.canonical, vid.canonical) and np.array_equal(back.grid, vid.grid)
    assert back.fps == 12.5 and back.metadata["seed"] == 3
    assert np.array_equal(back.render(), vid.render())


@pytest.mark.parametrize("damage", ["truncate", "garbage", "text", "missing_key"])
def test_damaged_files_give_clear_errors(tmp_path, moving_video, damage):
    p = moving_video.save(tmp_path / "doc.npz")
    raw = p.read_bytes()
    if damage == "truncate":
        p.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        p.write_bytes(raw[:100] + bytes(range(256)) * 20 + raw[-50:])
    elif damage == "text":
        p.write_text("hello")
    else:
        np.savez(p, canonical=moving_video.canonical)
    with pytest.raises(CanonicalVideoError, match="doc.npz"):
        CanonicalVideo.load(p)


@pytest.mark.parametrize(
    "canonical,grid,msg",
    [
        (np.zeros((8, 8)), np.zeros((1, 4, 4, 2), np.float32), r"\[Hc, Wc, 3\]"),
        (np.zeros((8, 8, 3), np.float32), np.zeros((4, 4, 2), np.float32), r"\[T, H, W, 2\]"),
        (np.full((8, 8, 3), np.nan, np.float32), np.zeros((1, 4, 4, 2), np.float32), "NaN"),
        (np.zeros((8, 8, 3), np.float32), np.full((1, 4, 4, 2), np.inf, np.float32), "NaN or inf"),
        (np.zeros((8, 8, 3), np.float32), np.zeros((1, 4, 4, 2), np.int32), "float32"),
        (np.full((8, 8, 3), 3.0, np.float32), np.zeros((1, 4, 4, 2), np.float32), r"\[0, 1\]"),
    ],
)
def test_construction_validates(canonical, grid, msg):
    with pytest.raises(CanonicalVideoError, match=msg):
        CanonicalVideo(canonical, grid, fps=8)


def test_to_video_mp4_and_gif(tmp_path, moving_video):
    for ext in (".mp4", ".gif"):
        out = moving_video.to_video(tmp_path / f"v{ext}")
        frames, _ = read_video(out)
        assert frames.shape == (T, H, W, 3)
        ref = (moving_video.frames() * 255).astype(np.float32)
        assert np.abs(frames.astype(np.float32) - ref).mean() < 12  # lossy codecs, same content

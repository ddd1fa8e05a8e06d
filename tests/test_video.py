"""CanonicalVideo: rendering, tracking, propagation and persistence against ground truth by construction."""
import numpy as np
import pytest

from gendef import CanonicalVideo
from gendef.errors import CanonicalVideoError
from gendef.video.grid import identity_grid, normalized_to_pixels, pixels_to_normalized
from gendef.video.reader import read_video

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


# --------------------------------------------------------------------------------------
# output size != grid size: the grid is upsampled per frame (pixel centres aligned)
# --------------------------------------------------------------------------------------
K = 4  # output pixels per grid pixel
HG, WG = 24, 32  # working grid
HF, WF = HG * K, WG * K  # output size


def full_forward(c, t):
    """Canonical -> output-pixel position at full size: a slow zoom/rotation, drift and a gentle wobble."""
    ang, zoom = 0.01 * t, 1.0 + 0.01 * t
    x, y = c[..., 0] - 60.0, c[..., 1] - 50.0
    fx = zoom * (np.cos(ang) * x - np.sin(ang) * y) + 60.0 + 2.0 * t + 1.5 * np.sin(c[..., 1] / 40.0 + 0.3 * t)
    fy = zoom * (np.sin(ang) * x + np.cos(ang) * y) + 50.0 - 1.0 * t + 1.5 * np.cos(c[..., 0] / 45.0)
    return np.stack([fx, fy], axis=-1)


def full_inverse(p, t):
    """Solve full_forward(c, t) = p by Newton iterations with a numerical Jacobian."""
    c = p.astype(np.float64).copy()
    for _ in range(30):
        r = full_forward(c, t) - p
        e = 1e-4
        jx = (full_forward(c + [e, 0], t) - full_forward(c - [e, 0], t)) / (2 * e)
        jy = (full_forward(c + [0, e], t) - full_forward(c - [0, e], t)) / (2 * e)
        det = jx[..., 0] * jy[..., 1] - jy[..., 0] * jx[..., 1]
        c[..., 0] -= (jy[..., 1] * r[..., 0] - jy[..., 0] * r[..., 1]) / det
        c[..., 1] -= (-jx[..., 1] * r[..., 0] + jx[..., 0] * r[..., 1]) / det
    assert np.abs(full_forward(c, t) - p).max() < 1e-8
    return c


@pytest.fixture(scope="module")
def upsampled_pair():
    """The same analytic motion as a working-size grid (output size 4x) and as the exact full-size grid."""
    frames = 4
    canon = photo(HF + 40, WF + 40)
    ug = (np.arange(WG) + 0.5) * K - 0.5  # output-pixel positions of the grid's pixel centres
    vg = (np.arange(HG) + 0.5) * K - 0.5
    coarse = np.stack([np.stack(np.meshgrid(ug, vg), -1)] * frames)
    full = identity_grid(HF, WF, frames).astype(np.float64)
    grid = np.stack([full_inverse(coarse[t], t) for t in range(frames)]).astype(np.float32)
    exact = np.stack([full_inverse(full[t], t) for t in range(frames)]).astype(np.float32)
    return CanonicalVideo(canon, grid, fps=8, size=(HF, WF)), exact


def test_render_at_4x_grid_size_matches_remap_of_the_exact_full_size_grid(upsampled_pair):
    import cv2

    vid, exact = upsampled_pair
    assert vid.frame_size == (HF, WF) and vid.grid_size == (HG, WG)
    out = vid.render()
    assert out.shape == (4, HF, WF, 3)
    for t in range(4):
        up = vid.frame_grid(t)
        assert np.abs(up - exact[t]).max() < 0.005  # bilinear upsampling of a smooth field
        ref = cv2.remap(vid.canonical, exact[t, ..., 0], exact[t, ..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        diff = np.abs(out[t] - ref)
        assert diff.mean() < 1e-3 and diff.max() < 5e-3, (t, diff.mean(), diff.max())
    # frame by frame and an RGBA edit give the same frames at output size
    assert np.array_equal(vid.render_frame(2), out[2])
    edit = np.zeros(vid.canvas_size + (4,), np.float32)
    assert np.abs(vid.render(edit) - out).max() < 1e-6


def test_upsampling_an_affine_grid_is_exact_including_the_borders():
    from gendef.video.grid import upsample_grid

    ys, xs = np.mgrid[0:HG, 0:WG].astype(np.float64)
    g = np.stack([3.0 * xs + 0.5 * ys + 7.0, -0.25 * xs + 2.0 * ys + 1.0], -1).astype(np.float32)
    up = upsample_grid(g, (HF + 3, WF - 5))  # also a non-integer factor
    v = (np.arange(HF + 3) + 0.5) * HG / (HF + 3) - 0.5
    u = (np.arange(WF - 5) + 0.5) * WG / (WF - 5) - 0.5
    uu, vv = np.meshgrid(u, v)
    truth = np.stack([3.0 * uu + 0.5 * vv + 7.0, -0.25 * uu + 2.0 * vv + 1.0], -1)
    assert np.abs(up - truth).max() < 2e-4


def test_tracks_at_output_size_agree_with_the_analytic_motion_within_005px(upsampled_pair):
    vid, _ = upsampled_pair
    pts = np.random.default_rng(3).uniform(30, 110, size=(50, 2))
    pos, vis = vid.track(pts)
    truth = np.stack([full_forward(pts, t) for t in range(4)])
    inside = (truth[..., 0] >= -0.5) & (truth[..., 0] <= WF - 0.5) & (truth[..., 1] >= -0.5) & (truth[..., 1] <= HF - 0.5)
    assert inside.sum() > 150 and np.array_equal(vis, inside)
    assert np.linalg.norm(pos - truth, axis=-1)[inside].max() < 0.05
    # frame_to_canonical takes output pixels and inverts track
    q = np.array([[5.0, 7.0], [100.25, 60.5], [WF - 1.0, HF - 1.0]])
    c = vid.frame_to_canonical(q, frame=1)
    assert np.abs(full_forward(c.astype(np.float64), 1) - q).max() < 0.05
    back, _ = vid.track(c)
    assert np.abs(back[1] - q).max() < 1e-3


def test_masks_and_flows_at_output_size(upsampled_pair):
    vid, exact = upsampled_pair
    hc, wc = vid.canvas_size
    ys, xs = np.mgrid[0:hc, 0:wc]
    disc = (xs - 70) ** 2 + (ys - 50) ** 2 <= 20**2
    masks = vid.propagate_mask(disc)
    assert masks.shape == (4, HF, WF) and masks.dtype == bool
    truth = (exact[..., 0] - 70) ** 2 + (exact[..., 1] - 50) ** 2 <= 20**2
    iou = (masks & truth).sum() / (masks | truth).sum()
    assert iou > 0.97
    canon = vid.flows(space="canonical")
    assert canon.shape == (3, HF, WF, 2) and np.abs(canon - (exact[1:] - exact[:-1])).max() < 0.02
    frame = vid.flows(space="frame")
    assert frame.shape == (3, HF, WF, 2)
    base = identity_grid(HF, WF)[0].astype(np.float64)
    for t in range(3):  # content at pixel p of frame t is canonical exact[t][p]; it appears at F_{t+1}(that)
        want = full_forward(exact[t].astype(np.float64), t + 1) - base
        err = np.abs(frame[t] - want)
        assert err[4:-4, 4:-4].max() < 0.02 and err.max() < 0.05


def test_output_size_round_trips_and_old_files_load_at_grid_size(tmp_path, upsampled_pair):
    vid, _ = upsampled_pair
    back = CanonicalVideo.load(vid.save(tmp_path / "big.npz"))
    assert back.frame_size == (HF, WF) and back.grid_size == (HG, WG)
    old = tmp_path / "old.npz"
    np.savez(old, canonical=vid.canonical, grid=vid.grid, fps=np.array(8.0))
    assert CanonicalVideo.load(old).frame_size == (HG, WG)
    np.savez(old, canonical=vid.canonical, grid=vid.grid, fps=np.array(8.0), size=np.array([1.5, 2.0]))
    with pytest.raises(CanonicalVideoError, match="old.npz"):
        CanonicalVideo.load(old)
    for bad in [(0, 10), (10,), (HF, 10**6), ("a", "b")]:
        with pytest.raises(CanonicalVideoError, match="size"):
            CanonicalVideo(vid.canonical, vid.grid, size=bad)


def test_rescaled_canonical_shows_the_same_frames(upsampled_pair):
    import cv2

    vid, _ = upsampled_pair
    hc, wc = vid.canvas_size
    small = cv2.resize(vid.canonical, (wc // 2, hc // 2), interpolation=cv2.INTER_AREA)
    a = vid.with_canonical_resolution(small)
    b = a.with_canonical_resolution(vid.canonical)  # back: grid values exactly restored
    assert np.abs(b.grid - vid.grid).max() < 1e-4
    assert a.frame_size == vid.frame_size
    # the half-resolution canonical renders the same content, blurrier
    assert np.abs(a.render() - vid.render()).mean() < 0.03
    pos_a, _ = a.track(np.array([[30.0, 20.0]]))
    pos, _ = vid.track(np.array([[60.5, 40.5]]))  # same canvas point: (x + 0.5) * 2 - 0.5
    assert np.abs(pos_a - pos).max() < 1e-3


def test_uint8_frames_match_the_float_render(upsampled_pair):
    vid, _ = upsampled_pair
    ref = np.round(vid.render() * 255)
    assert np.abs(vid.frames_uint8().astype(np.float32) - ref).max() <= 1.0
    edit = np.zeros(vid.canvas_size + (4,), np.float32)
    edit[40:60, 40:90] = (1, 0, 0, 0.5)
    assert np.abs(vid.frames_uint8(edit).astype(np.float32) - np.round(vid.render(edit) * 255)).max() <= 1.0

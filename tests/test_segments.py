"""SegmentedVideo against ground truth by construction: a real photo panned with a known smooth motion,
split into overlapping segments whose canonical images are different crops of the photo."""
import json

import numpy as np
import pytest

import gendef
from gendef import CanonicalVideo, SegmentedVideo
from gendef.errors import CanonicalVideoError
from gendef.video.grid import identity_grid

H, W = 48, 64
N = 40
SPANS = [(0, 18), (14, 32), (28, 40)]  # clip frames [start, end) of three segments: 4-frame overlaps
RED = np.array([1.0, 0.0, 0.0], np.float32)


def photo():
    from skimage import data, transform

    img = data.astronaut().astype(np.float32) / 255.0
    return transform.resize(img, (170, 250), anti_aliasing=True).astype(np.float32)


def offset(t):
    return np.array([12.0 + 2.5 * t, 14.0 + 0.6 * t])


def forward(c, t):
    """Photo position -> frame position at clip frame t (the ground truth): a pan plus a smooth wobble."""
    x, y = c[..., 0], c[..., 1]
    o = offset(t)
    return np.stack([x - o[0] + 1.5 * np.sin(y / 13.0 + 0.15 * t), y - o[1] + 1.2 * np.cos(x / 17.0)], -1)


def true_grid(t):
    """grid[t](p) = forward^-1(p), by fixed-point iteration to machine precision."""
    p = identity_grid(H, W)[0].astype(np.float64)
    c = p + offset(t)
    for _ in range(200):
        c = c - (forward(c, t) - p)
    assert np.abs(forward(c, t) - p).max() < 1e-9
    return c.astype(np.float32)


@pytest.fixture(scope="module")
def truth():
    """The whole clip as one CanonicalVideo on the whole photo (the reference)."""
    return CanonicalVideo(photo(), np.stack([true_grid(t) for t in range(N)]), fps=10.0)


def crop_segment(truth, start, end):
    """Segment over clip frames [start, end): the photo cropped to what those frames show (+2 px)."""
    g = truth.grid[start:end]
    x0, y0 = (np.floor(g.reshape(-1, 2).min(0)) - 2).astype(int)
    x1, y1 = (np.ceil(g.reshape(-1, 2).max(0)) + 3).astype(int)
    canon = truth.canonical[y0:y1, x0:x1]
    return CanonicalVideo(canon, g - np.array([x0, y0], np.float32), fps=truth.fps), np.array([x0, y0])


@pytest.fixture(scope="module")
def chain(truth):
    parts = [crop_segment(truth, s, e) for s, e in SPANS]
    clip = SegmentedVideo([(s, v) for (s, _), (v, _) in zip(SPANS, parts)], fps=10.0, metadata={"name": "pan"})
    return clip, [o for _, o in parts]


def dot_rgba(hw, centre, radius=3.0):
    yy, xx = np.mgrid[: hw[0], : hw[1]].astype(np.float32)
    a = np.clip(radius + 0.5 - np.hypot(xx - centre[0], yy - centre[1]), 0.0, 1.0)
    return np.concatenate([np.broadcast_to(RED, hw + (3,)), a[..., None]], -1).astype(np.float32)


def centroid(diff):
    w = diff.sum(-1)
    yy, xx = np.mgrid[: w.shape[0], : w.shape[1]]
    return np.array([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()])


# ------------------------------------------------------------------------- structure
def test_chain_structure_and_blend_weights(chain):
    clip, _ = chain
    assert clip.num_frames == N and clip.size == (H, W) and clip.num_segments == 3 and clip.fps == 10.0
    assert clip.coverage(5) == ((0, 5, 1.0),)
    # overlap 14..17 (4 frames): segment 1 rises 1/5, 2/5, 3/5, 4/5
    assert [c[1][2] for c in (clip.coverage(t) for t in range(14, 18))] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert clip.coverage(14)[0] == (0, 14, pytest.approx(0.8)) and clip.coverage(17)[1][:2] == (1, 3)
    assert [clip.segment_of(t) for t in (13, 15, 16, 29, 31)] == [0, 0, 1, 1, 2]


def test_render_matches_the_whole_clip(chain, truth):
    clip, _ = chain
    frames = clip.render()
    assert frames.shape == (N, H, W, 3) and frames.dtype == np.float32
    ref = truth.render()
    inner = (slice(None), slice(2, -2), slice(2, -2))  # the crops' borders are interpolated from 2 px of margin
    assert np.abs(frames - ref)[inner].max() < 1e-4
    streamed = np.stack(list(clip.iter_frames()))
    np.testing.assert_array_equal(streamed, frames)


@pytest.mark.parametrize(
    "spans,cuts,message",
    [
        ([(0, 10), (12, 20)], (), "overlap"),  # a gap
        ([(0, 10), (10, 20)], (), "overlap"),  # zero overlap without a cut
        ([(0, 10), (8, 20)], (8,), "zero overlap"),  # overlap at a cut
        ([(2, 10), (8, 20)], (), "frame 0"),
        ([(0, 10), (0, 20)], (), "after the previous"),
        ([(0, 10), (5, 14), (8, 20)], (), "at most two"),
        ([(0, 10), (8, 20)], (9,), "not the start"),
    ],
)
def test_chain_is_validated(truth, spans, cuts, message):
    segs = [(s, CanonicalVideo(truth.canonical, truth.grid[: e - s])) for s, e in spans]
    with pytest.raises(CanonicalVideoError, match=message):
        SegmentedVideo(segs, cuts=cuts)


# ------------------------------------------------------------------------- one segment = a CanonicalVideo
def test_one_segment_behaves_exactly_like_its_canonical_video(truth, tmp_path):
    clip = SegmentedVideo([(0, truth)])
    assert clip.num_frames == truth.num_frames and clip.size == truth.size and clip.fps == truth.fps
    np.testing.assert_array_equal(clip.render(), truth.render())
    edit = dot_rgba(truth.canvas_size, (60.0, 50.0))
    np.testing.assert_array_equal(clip.render(edit), truth.render(edit))
    mask = np.zeros(truth.canvas_size, np.float32)
    mask[40:90, 50:120] = 1.0
    np.testing.assert_array_equal(clip.propagate_mask(mask), truth.propagate_mask(mask))
    pts = np.array([[60.0, 50.0], [100.5, 70.25], [5.0, 5.0]])
    for a, b in zip(clip.track(pts), truth.track(pts)):
        np.testing.assert_array_equal(a, b)
    layer = truth.frame_edit_to_canonical(dot_rgba((H, W), (20.0, 30.0)), 7)
    np.testing.assert_array_equal(clip.frame_edit_to_canonical(dot_rgba((H, W), (20.0, 30.0)), 7)[0], layer)
    np.testing.assert_array_equal(clip.with_edit(edit).segments[0].canonical, truth.with_edit(edit).canonical)
    np.testing.assert_array_equal(np.stack(list(clip.frames_uint8_iter(edit))), truth.frames_uint8(edit))
    # saved as a one-segment chain, the one call gives the CanonicalVideo back
    back = gendef.load(clip.save(tmp_path / "one.npz"))
    assert isinstance(back, CanonicalVideo)
    np.testing.assert_array_equal(back.grid, truth.grid)
    np.testing.assert_array_equal(back.canonical, truth.canonical)


def test_an_old_npz_opens_exactly_as_today(truth, tmp_path):
    path = truth.save(tmp_path / "old.npz")
    got = gendef.load(path)
    ref = CanonicalVideo.load(path)
    assert isinstance(got, CanonicalVideo) and got.fps == ref.fps and got.size == ref.size and got.metadata == ref.metadata
    np.testing.assert_array_equal(got.canonical, ref.canonical)
    np.testing.assert_array_equal(got.grid, ref.grid)
    # a file from before ``size`` and ``format_version`` existed
    legacy = tmp_path / "legacy.npz"
    np.savez_compressed(legacy, canonical=truth.canonical, grid=truth.grid[:3], fps=np.array(8.0), metadata=np.array('{"a": 1}'))
    old = gendef.video.load_video_npz(legacy)
    assert isinstance(old, CanonicalVideo) and old.size == (H, W) and old.fps == 8.0 and old.metadata == {"a": 1}
    with open(legacy, "rb") as fh:  # file objects too
        np.testing.assert_array_equal(gendef.load(fh).grid, truth.grid[:3])


# ------------------------------------------------------------------------- persistence
def test_save_load_roundtrip(chain, tmp_path):
    clip, _ = chain
    path = clip.save(tmp_path / "clip.npz")
    import zipfile

    with zipfile.ZipFile(path) as z:
        names = sorted(n[:-4] for n in z.namelist())
    assert names == sorted(["cuts", "fps", "metadata", "segment_metadata", "size", "starts"]
                           + [f"seg{i}_{k}" for i in range(3) for k in ("canonical", "grid")])
    back = gendef.load(path)
    assert isinstance(back, SegmentedVideo)
    assert back.starts == clip.starts and back.cuts == clip.cuts and back.fps == clip.fps
    assert back.metadata["name"] == "pan" and back.metadata["format_version"] == 1
    for a, b in zip(back.segments, clip.segments):
        np.testing.assert_array_equal(a.canonical, b.canonical)
        np.testing.assert_array_equal(a.grid, b.grid)
    np.testing.assert_array_equal(back.render(), clip.render())


def test_segmented_file_limits_are_checked_before_reading(tmp_path, monkeypatch):
    from gendef.video import npzformat
    from tests.test_faults import write_npz_streamed

    base = {"starts": np.array([0, 3]), "cuts": np.array([3]), "fps": np.array(8.0),
            "seg0_canonical": np.zeros((8, 8, 3), np.float32), "seg0_grid": np.zeros((3, 4, 4, 2), np.float32),
            "seg1_canonical": np.zeros((8, 8, 3), np.float32), "seg1_grid": np.zeros((3, 4, 4, 2), np.float32)}
    ok = write_npz_streamed(tmp_path / "ok.npz", base)
    assert isinstance(gendef.load(ok), SegmentedVideo)
    cases = {
        "long segment": ({"seg1_grid": ((npzformat.MAX_FILE_FRAMES + 1, 2, 2, 2), "<f4")}, "segment 1: 4097 frames"),
        "many frames": ({"seg0_grid": ((3000, 2, 2, 2), "<f4"), "seg1_grid": ((3000, 2, 2, 2), "<f4")}, "in all segments"),
        "missing": ({"starts": np.array([0, 3, 6])}, "missing seg2_canonical"),
        "starts 2-D": ({"starts": np.zeros((2, 2), np.int64)}, "starts must"),
        "metadata": ({"segment_metadata": ((npzformat.MAX_METADATA_BYTES,), "<U8")}, "segment_metadata"),
    }
    for what, (override, needle) in cases.items():
        path = write_npz_streamed(tmp_path / f"{what.replace(' ', '_')}.npz", {**base, **override})
        with pytest.raises(CanonicalVideoError, match=needle) as e:
            gendef.load(path)
        assert path.name in str(e.value), what
    monkeypatch.setattr(npzformat, "MAX_CLIP_GRID_VALUES", 150)  # the two grids hold 2 x 96 values
    with pytest.raises(CanonicalVideoError, match="grids hold 192 values"):
        gendef.load(ok)
    monkeypatch.undo()
    bad_chain = write_npz_streamed(tmp_path / "gap.npz", {**base, "starts": np.array([0, 5]), "cuts": np.array([], np.int64)})
    with pytest.raises(CanonicalVideoError, match="gap.npz: .*overlap"):
        gendef.load(bad_chain)


# ------------------------------------------------------------------------- edits carried along the chain
def test_painted_dot_follows_its_path_through_both_boundaries(chain, truth):
    clip, offsets = chain
    c_photo = np.array([100.0, 52.0])  # in view from frame 10 to 35: crosses boundaries 0|1 and 1|2
    edits = clip.carry(dot_rgba(clip.segments[0].canvas_size, c_photo - offsets[0]), segment=0)
    assert all(e is not None for e in edits)
    edited, plain = clip.render(edits), clip.render()
    errs, colours = [], []
    for t in range(N):
        true = forward(c_photo, t)
        if not (4 <= true[0] <= W - 5 and 4 <= true[1] <= H - 5):
            continue
        errs.append(np.hypot(*(centroid(np.abs(edited[t] - plain[t])) - true)))
        ix, iy = np.round(true).astype(int)
        colours.append(np.abs(edited[t, iy, ix] - RED).max())
    assert len(errs) >= 20
    assert max(errs) < 1.0, np.round(errs, 2)
    assert max(colours) < 0.12, np.round(colours, 3)
    # the same dot painted on the whole photo, rendered through the one true canonical video
    ref = truth.render(dot_rgba(truth.canvas_size, c_photo))
    assert np.abs(edited - ref)[:, 2:-2, 2:-2].max() < 0.3 and np.abs(edited - ref)[:, 2:-2, 2:-2].mean() < 1e-3


def test_no_seam_at_the_boundaries(chain):
    clip, offsets = chain
    edits = clip.carry(dot_rgba(clip.segments[0].canvas_size, np.array([100.0, 52.0]) - offsets[0]), segment=0)
    edited = clip.render(edits)
    dot = np.abs(edited - clip.render()).sum(-1)  # the dot alone, frame by frame
    step = np.array([np.abs(dot[t + 1] - dot[t]).sum() for t in range(N - 1)])
    boundary = [t for s, e in SPANS[1:] for t in range(s - 1, s + 5)]  # entering, across and leaving each overlap
    elsewhere = [t for t in range(N - 1) if t not in boundary and dot[t].sum() > 0 and dot[t + 1].sum() > 0]
    assert max(step[t] for t in boundary if dot[t].sum() > 0) <= 1.05 * max(step[t] for t in elsewhere)
    # motion-compensated: the dot's path has no kink at a boundary (a carried copy 0.5 px off gives 3x the kink)
    plain = clip.render()
    ts = [t for t in range(N) if 4 <= forward(np.array([100.0, 52.0]), t)[0] <= W - 5]
    cen = {t: centroid(np.abs(edited[t] - plain[t])) for t in ts}
    vel = {t: cen[t + 1] - cen[t] for t in ts if t + 1 in cen}
    kink = {t: np.hypot(*(vel[t + 1] - vel[t])) for t in vel if t + 1 in vel}
    near = [t for t in kink if any(s - 2 <= t <= s + 4 for s, _ in SPANS[1:])]
    assert len(near) >= 10 and len(kink) - len(near) >= 5
    assert max(kink[t] for t in near) <= 1.25 * max(kink[t] for t in kink if t not in near)


def test_content_a_segment_never_shows_stays_unedited(chain):
    clip, offsets = chain
    c_photo = np.array([30.0, 40.0])  # leaves the view by frame 10, before the first overlap
    assert forward(c_photo, 12)[0] < -3
    edit = dot_rgba(clip.segments[0].canvas_size, c_photo - offsets[0])
    edits = clip.carry(edit, segment=0)
    assert edits[1] is None and edits[2] is None
    edited = clip.with_edit(edit, segment=0)
    for a, b in zip(edited.segments[1:], clip.segments[1:]):
        np.testing.assert_array_equal(a.canonical, b.canonical)
    assert not np.array_equal(edited.segments[0].canonical, clip.segments[0].canonical)
    # a dot seen by segment 0 and 1 only: segment 2's canonical is untouched, 1's is painted
    c2 = np.array([75.0, 40.0])
    assert forward(c2, 16)[0] > 5 and forward(c2, 28)[0] < -3
    edited = clip.with_edit(dot_rgba(clip.segments[0].canvas_size, c2 - offsets[0]), segment=0)
    np.testing.assert_array_equal(edited.segments[2].canonical, clip.segments[2].canonical)
    changed = np.abs(edited.segments[1].canonical - clip.segments[1].canonical).max(-1) > 0.1
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 10 and np.hypot(xs.mean() - (c2[0] - offsets[1][0]), ys.mean() - (c2[1] - offsets[1][1])) < 0.5


def test_an_edit_on_a_middle_segment_and_on_a_frame_reaches_both_sides(chain, truth):
    clip, offsets = chain
    c_photo = np.array([100.0, 52.0])
    from_middle = clip.render(dot_rgba(clip.segments[1].canvas_size, c_photo - offsets[1]), segment=1)
    ref = truth.render(dot_rgba(truth.canvas_size, c_photo))
    assert np.abs(from_middle - ref)[:, 2:-2, 2:-2].max() < 0.3
    t = 15  # an overlap frame: both segments take the frame edit directly
    on_frame = dot_rgba((H, W), forward(c_photo, t))
    edits = clip.frame_edit_to_canonical(on_frame, t)
    assert all(e is not None and e.shape[2] == 4 for e in edits)
    from_frame = clip.render(edits)
    assert np.abs(from_frame - ref)[:, 2:-2, 2:-2].max() < 0.3


def test_a_mask_stays_on_its_object(chain, truth):
    clip, offsets = chain
    yy, xx = np.mgrid[: truth.canvas_size[0], : truth.canvas_size[1]]
    photo_mask = (np.hypot(xx - 88, yy - 52) < 12).astype(np.float32)  # in full view across boundary 0|1
    x0, y0 = offsets[0]
    h0, w0 = clip.segments[0].canvas_size
    masks = clip.propagate_mask(photo_mask[y0 : y0 + h0, x0 : x0 + w0], segment=0)
    ref = truth.propagate_mask(photo_mask)
    assert masks.shape == (N, H, W) and masks.dtype == bool
    for t in range(N):
        if ref[t].sum() > 50:
            iou = (masks[t] & ref[t]).sum() / (masks[t] | ref[t]).sum()
            assert iou > 0.95, (t, iou)


def test_tracking_hands_over_at_the_boundaries(chain):
    clip, offsets = chain
    c_photo = np.array([[100.0, 52.0], [112.0, 70.0], [30.0, 40.0]])
    pos, vis = clip.track(c_photo - offsets[0], segment=0)
    assert pos.shape == (N, 3, 2) and vis.shape == (N, 3)
    true = np.stack([forward(c_photo, t) for t in range(N)])
    inside = (true[..., 0] >= -0.5) & (true[..., 0] <= W - 0.5) & (true[..., 1] >= -0.5) & (true[..., 1] <= H - 0.5)
    np.testing.assert_array_equal(vis[:, :2], inside[:, :2])
    assert np.abs(pos - true)[vis].max() < 0.02
    assert vis[:, 1].sum() > 20 and vis[30:, 1].all()  # point 1 is still tracked in segment 2
    # point 2 leaves before the first overlap: later segments never receive it
    assert vis[:7, 2].all() and not vis[8:, 2].any() and np.isnan(pos[18:, 2]).all()
    # starting from segment 2's canonical gives the same trajectory
    pos2, vis2 = clip.track(c_photo[:2] - offsets[2], segment=2)
    assert np.abs(pos2 - true[:, :2])[vis2].max() < 0.02 and vis2.sum() >= vis[:, :2].sum() - 2
    f2c = clip.frame_to_canonical(forward(c_photo[:1], 20), frame=20)
    np.testing.assert_allclose(f2c, c_photo[:1] - offsets[1], atol=1e-3)


# ------------------------------------------------------------------------- hard cuts
def test_a_hard_cut_blends_nothing_and_stops_edits_and_tracks(truth):
    from skimage import data, transform

    other = transform.resize(data.coffee().astype(np.float32) / 255.0, (100, 120)).astype(np.float32)
    a = CanonicalVideo(truth.canonical, truth.grid[:10], fps=10.0)
    b = CanonicalVideo(other, identity_grid(H, W, 8, offset=(5.0, 5.0)), fps=10.0)
    clip = SegmentedVideo([(0, a), (10, b)], cuts={10})
    assert clip.num_frames == 18 and clip.coverage(10) == ((1, 0, 1.0),)
    frames = clip.render()
    np.testing.assert_array_equal(frames[9], a.render()[9])
    np.testing.assert_array_equal(frames[10], b.render()[0])
    assert clip.carry(dot_rgba(a.canvas_size, (50.0, 40.0)), segment=0)[1] is None
    pos, vis = clip.track([[50.0, 40.0]], segment=0)
    assert vis[:10, 0].all() and not vis[10:].any()


# ------------------------------------------------------------------------- export with sound
def test_to_video_streams_the_whole_clip_with_sound(chain, tmp_path):
    from gendef.video.reader import read_video
    from tests.test_audio import _decoded, make_tone_clip

    clip, offsets = chain
    src = make_tone_clip(tmp_path / "tone.mp4")
    clip.metadata["audio"] = {"path": str(src), "start": 0.5, "duration": N / clip.fps}
    out = clip.to_video(tmp_path / "out.mp4", dot_rgba(clip.segments[0].canvas_size, np.array([100.0, 52.0]) - offsets[0]))
    frames, _ = read_video(out)
    assert frames.shape == (N, H, W, 3)
    assert np.abs(frames / 255.0 - clip.render(clip.carry(dot_rgba(clip.segments[0].canvas_size, np.array([100.0, 52.0]) - offsets[0])))).mean() < 0.03
    assert abs(len(_decoded(out)) / 44100 - N / clip.fps) < 0.15
    silent = clip.to_video(tmp_path / "silent.gif")
    assert read_video(silent)[0].shape == (N, H, W, 3)
    clip.metadata.pop("audio")


# ------------------------------------------------------------------------- the CLI takes a segmented .npz
def test_cli_render_propagate_track_accept_a_segmented_npz(chain, tmp_path):
    from PIL import Image

    from gendef.video.reader import read_video
    from tests.test_cli import run

    clip, offsets = chain
    doc = clip.save(tmp_path / "clip.npz")
    r = run("render", doc, "--out", tmp_path / "r.mp4", "--audio", "none")
    assert r.returncode == 0, r.stderr
    frames, _ = read_video(tmp_path / "r.mp4")
    assert frames.shape == (N, H, W, 3) and np.abs(frames / 255.0 - clip.render()).mean() < 0.02

    c_photo = np.array([100.0, 52.0])
    edit = dot_rgba(clip.segments[1].canvas_size, c_photo - offsets[1])
    Image.fromarray((edit * 255).round().astype(np.uint8)).save(tmp_path / "dot.png")
    r = run("propagate", doc, "--image", tmp_path / "dot.png", "--segment", 1, "--out", tmp_path / "edited.npz")
    assert r.returncode == 0, r.stderr
    edited = gendef.load(tmp_path / "edited.npz")
    assert isinstance(edited, SegmentedVideo) and edited.starts == clip.starts
    want = clip.render(np.asarray(Image.open(tmp_path / "dot.png")), segment=1)
    diff = np.abs(edited.render() - want)  # baked in vs composited per frame: they differ only at the dot's rim
    assert diff.max() < 0.03 and diff.mean() < 1e-4 and np.abs(edited.render() - clip.render()).max() > 0.5
    r = run("propagate", doc, "--image", tmp_path / "dot.png", "--segment", 3, "--out", tmp_path / "x.npz")
    assert r.returncode == 2 and "segments 0..2" in r.stderr

    on_frame = dot_rgba((H, W), forward(c_photo, 20))
    Image.fromarray((on_frame * 255).round().astype(np.uint8)).save(tmp_path / "frame20.png")
    r = run("propagate", doc, "--image", tmp_path / "frame20.png", "--frame", 20, "--out", tmp_path / "f.npz")
    assert r.returncode == 0, r.stderr
    got = gendef.load(tmp_path / "f.npz").render()
    for t in (12, 20, 30):  # segment 0 only, segment 1 only (the painted frame), segment 2 only
        dot = np.abs(got[t] - clip.render()[t])
        assert np.hypot(*(centroid(dot) - forward(c_photo, t))) < 1.0, t

    start = forward(np.array([30.0, 40.0]), 0)  # on frame 0, leaves the view by frame 8
    r = run("track", doc, "--points", f"{start[0]},{start[1]}", "--frame0", "--json", tmp_path / "t.json")
    assert r.returncode == 0, r.stderr
    tr = json.loads((tmp_path / "t.json").read_text())
    assert tr["segment"] == 0 and tr["tracks"][0]["visible"][:7] == [True] * 7 and tr["tracks"][0]["x"][-1] is None
    assert abs(tr["tracks"][0]["x"][5] - forward(np.array([30.0, 40.0]), 5)[0]) < 0.02

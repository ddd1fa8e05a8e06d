"""The studio on a whole clip's chain of segments: load, pick a segment, edit it, see the edit carried, export.

Ground truth by construction: a scikit-image photo panned 1 px a frame to the left; three
overlapping segments each hold the crop of the photo their frames show, and a fourth, after a
hard cut, shows another photo (content the first three never show).
"""
import os

import numpy as np
import pytest

from app import export, scribble, segment, sources, track, viewer, views
from app.segment import SegmentPart
from app.state import StudioState
from gendef.video.audio import AudioSpan
from gendef.video.canonical_video import CanonicalVideo
from gendef.video.grid import identity_grid
from gendef.video.segments import SegmentedVideo

H, W = 32, 48
FPS = 16.0
SPANS = [(0, 12), (10, 22), (20, 30)]  # clip frames [start, end): overlaps of 2 frames
CUT, N = 30, 38  # a hard cut at frame 30 to another photo, 8 frames
DOT = np.array([40.0, 16.0])  # a photo point every frame before the cut shows
DOT_RADIUS = 3.0


def _photo(name, hw):
    from skimage import data, transform

    return np.clip(transform.resize(getattr(data, name)(), hw, anti_aliasing=True), 0, 1).astype(np.float32)


def offset(t):
    """Where frame t's top-left pixel samples the photo: a pan of 1 px a frame."""
    return np.array([2.0 + t, 8.0], np.float32)


def photo_to_frame(p, t):
    return np.asarray(p, np.float32) - offset(t)


def _segment(photo, start, end):
    """The segment over clip frames [start, end): the photo cropped to what they show (+2 px)."""
    grid = np.stack([identity_grid(H, W)[0] + offset(t) for t in range(start, end)])
    x0, y0 = (np.floor(grid.reshape(-1, 2).min(0)) - 2).astype(int)
    x1, y1 = (np.ceil(grid.reshape(-1, 2).max(0)) + 3).astype(int)
    return CanonicalVideo(photo[y0:y1, x0:x1], grid - np.array([x0, y0], np.float32), fps=FPS), np.array([x0, y0])


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """(the chain saved to a .npz, the photo origin of each segment's canonical image, the tone clip)."""
    from tests.test_audio import make_tone_clip

    folder = tmp_path_factory.mktemp("chain")
    photo = _photo("astronaut", (56, 100))
    parts = [_segment(photo, s, e) for s, e in SPANS]
    after = CanonicalVideo(_photo("coffee", (40, 56)), identity_grid(H, W, N - CUT, offset=(4.0, 4.0)), fps=FPS)
    tone = make_tone_clip(folder / "tone.mp4", size=48)  # 3 s with a chirp soundtrack
    meta = {"audio": AudioSpan(str(tone), 0.5, N / FPS).to_metadata()}
    chain = SegmentedVideo([(s, v) for (s, _), (v, _) in zip(SPANS, parts)] + [(CUT, after)], fps=FPS, metadata=meta, cuts=[CUT])
    return chain.save(folder / "chain.npz"), [o for _, o in parts], tone


def _dot_editor(state, centre):
    """The scribble editor's value with a red dot painted at canonical ``centre`` of the edited segment."""
    background = views.display_canonical(state)
    dh, dw = background.shape[:2]
    (cx, cy), = views.to_display_xy(state, [tuple(centre)])
    yy, xx = np.mgrid[:dh, :dw].astype(np.float32)
    a = (np.hypot(xx - cx, yy - cy) <= DOT_RADIUS * state.scale).astype(np.uint8) * 255
    layer = np.zeros((dh, dw, 4), np.uint8)
    layer[..., 0], layer[..., 3] = 255, a
    return {"background": background, "layers": [layer], "composite": background}


def _red_at(frame, xy) -> bool:
    x, y = np.round(xy).astype(int)
    r, g, b = frame[y, x]
    return r > 0.8 and g < 0.25 and b < 0.25


def test_open_pick_paint_carry_and_export(clip):
    path, origins, tone = clip
    out = sources.open_npz(StudioState(), str(path))
    state = out["state"]
    assert state.chain and state.video.num_segments == 4 and state.video.num_frames == N
    labels = out["segment_pick"]["choices"]
    assert [c[0] if isinstance(c, tuple) else c for c in labels] == [
        "segment 0: frames 0-11", "segment 1: frames 10-21", "segment 2: frames 20-29", "segment 3: frames 30-37 (after a cut)"]
    info = out["segments_info"]["value"]
    assert "0|1: frames 10-11" in info and "1|2: frames 20-21" in info and "Hard cuts at frames 30" in info
    assert out["strip"].dtype == np.uint8 and out["strip"].ndim == 3  # the segments' timeline

    out = viewer.pick_segment(state, "segment 1: frames 10-21")
    state = out["state"]
    assert state.segment == 1 and "editing segment 1 (frames 10-21)" in out["status"]
    assert np.array_equal(state.canvas.canonical, state.video.segments[1].canonical)
    assert out["canonical"].shape[:2] == views.display_hw(state, state.video.segments[1].canvas_size)

    centre = DOT - origins[1]  # the dot on segment 1's canonical image
    res = scribble.apply_scribble(state, _dot_editor(state, centre))
    frames = state.result.frames
    assert frames.shape == (N, H, W, 3) and "carried to segments 0, 1, 2" in res["status"]
    reds = [_red_at(frames[t], photo_to_frame(DOT, t)) for t in range(CUT)]
    assert all(reds), [t for t, ok in enumerate(reds) if not ok]  # segments 0-2: the dot where the photo point is
    original = state.video.frames()
    far = np.hypot(*(np.mgrid[:H, :W][::-1] - photo_to_frame(DOT, 5)[:, None, None])) > 2 * DOT_RADIUS + 2
    assert np.abs(frames[5] - original[5])[far].max() < 1e-5  # the rest of the frame untouched
    assert np.abs(frames[CUT:] - original[CUT:]).max() < 1e-6  # after the cut: another photo, unedited

    files = export.export_all(state, "result")["export_files"]
    mp4, gif, npz = files[:3]
    from gendef.video.audio import has_audio
    from gendef.video.reader import iter_frames

    decoded = list(iter_frames(mp4))
    assert len(decoded) == N and has_audio(mp4) and os.path.getsize(gif) > 0
    reopened = SegmentedVideo.load(npz)
    assert reopened.num_segments == 4 and reopened.metadata["studio_source"] == state.source
    again = reopened.frames()
    assert all(_red_at(again[t], photo_to_frame(DOT, t)) for t in (0, 11, 15, 21, 29))
    assert np.abs(again[CUT:] - original[CUT:]).max() < 1e-6


def test_mask_and_track_on_a_segment_reach_the_whole_clip(clip):
    path, origins, _ = clip
    state = viewer.pick_segment(sources.open_npz(StudioState(), str(path))["state"], "segment 2: frames 20-29")["state"]
    centre = DOT - origins[2]
    hc, wc = state.canvas.canvas_size
    yy, xx = np.mgrid[:hc, :wc]
    state.part(SegmentPart).mask = np.hypot(xx - centre[0], yy - centre[1]) <= 4
    segment.apply_segment(state)
    masks = state.result.extra["masks"]
    assert masks.shape == (N, H, W)
    for t in range(CUT):
        x, y = np.round(photo_to_frame(DOT, t)).astype(int)
        assert masks[t, y, x], t
    assert not masks[CUT:].any()
    from gendef.video.reader import iter_frames

    mp4 = export.export_all(state, "result")["export_files"][0]
    tinted = np.stack(list(iter_frames(mp4))).astype(np.float32) / 255
    original = state.video.render_frame(3)  # segment 0 only
    expected = (1 - export.SEGMENT_TINT) * original + export.SEGMENT_TINT * np.float32(segment.MASK_COLOR)
    inside = masks[3]
    err, tint = (np.abs(x[inside] - expected[inside]).mean() for x in (tinted[3], original))
    assert len(tinted) == N and err < tint / 3  # the tint, carried to segment 0 (an mp4's colours are approximate)

    state.part(track.TrackPart).track_points.append((float(centre[0]), float(centre[1])))
    out = track._track_result(state, track.TRACK_ON_CANONICAL, lambda *a, **k: None)
    pos, vis = state.part(track.TrackPart).tracks
    truth = np.stack([photo_to_frame(DOT, t) for t in range(CUT)])
    assert vis[:CUT].all() and np.abs(pos[:CUT, 0] - truth).max() < 0.05
    assert not vis[CUT:].any() and '"num_points": 1' in out["track_json"]


def test_frame_clicks_outside_the_picked_segment_are_refused(clip):
    import gradio as gr

    path, _, _ = clip
    state = sources.open_npz(StudioState(), str(path))["state"]  # segment 0: frames 0-11
    sel = gr.SelectData(None, {"index": [10, 10], "value": None})
    with pytest.raises(gr.Error, match="Frame 25 is not in segment 0"):
        segment.segment_click(state, "positive", segment.SEG_GRABCUT, sel, on=views.EDIT_ON_FRAME, frame=25)


def test_a_scribble_on_a_frame_reaches_the_segments_sharing_it(clip):
    path, _, _ = clip
    state = sources.open_npz(StudioState(), str(path))["state"]
    t = 11  # rendered by segments 0 and 1
    value = _frame_dot(state, photo_to_frame(DOT, t))
    res = scribble.apply_scribble(state, value, views.EDIT_ON_FRAME, t)
    assert "on frame 11 carried to segments 0, 1, 2" in res["status"]
    frames = state.result.frames
    assert all(_red_at(frames[f], photo_to_frame(DOT, f)) for f in range(CUT))


def _frame_dot(state, xy):
    img = views.display_target(state, 0)
    dh, dw = img.shape[:2]
    (cx, cy), = views.to_display_xy(state, [tuple(xy)], state.video.frame_size)
    yy, xx = np.mgrid[:dh, :dw].astype(np.float32)
    layer = np.zeros((dh, dw, 4), np.uint8)
    layer[..., 0], layer[..., 3] = 255, (np.hypot(xx - cx, yy - cy) <= DOT_RADIUS * state.scale) * 255
    return {"background": img, "layers": [layer], "composite": img}


def test_one_segment_chain_is_the_canonical_video(clip, tmp_path):
    path, _, _ = clip
    one = SegmentedVideo([(0, SegmentedVideo.load(path).segments[0])], fps=FPS)
    out = sources.open_npz(StudioState(), str(one.save(tmp_path / "one.npz")))
    state = out["state"]
    assert isinstance(state.video, CanonicalVideo) and not state.chain
    assert out["segment_pick"]["visible"] is False and out["segments_info"]["visible"] is False


def test_decompose_takes_a_chain_and_passes_progress_through(clip, monkeypatch):
    from gendef import decomposition

    path, _, tone = clip
    chain = SegmentedVideo.load(path)
    seen = []

    def fake(p, progress=None, **kwargs):
        progress(0.5, "segment 2 of 4")
        return chain

    monkeypatch.setattr(decomposition, "decompose_file", fake)

    def progress(fraction, desc=""):
        seen.append((round(fraction, 3), desc))

    out = sources.decompose_upload(StudioState(), str(tone), 16, 64, 0, 4, progress=progress)
    assert out["state"].chain and out["state"].video.num_segments == 4
    assert (0.375, "segment 2 of 4") in seen  # the decomposer's own message, its fraction scaled to 0..0.75


def test_a_chain_longer_than_the_studio_keeps_is_cut_at_a_segment(clip):
    path, _, _ = clip
    chain = SegmentedVideo.load(path)
    assert chain.head(21).ends == (12, 21) and chain.head(11).num_segments == 1
    assert chain.head(35).cuts == frozenset({CUT}) and chain.head(35).num_frames == 35


def test_a_look_on_one_segment_restyles_the_clip_up_to_the_cut(clip):
    from app import stylize

    path, _, _ = clip
    state = viewer.pick_segment(sources.open_npz(StudioState(), str(path))["state"], "segment 1: frames 10-21")["state"]
    stylize.apply_look(state, stylize.look_names()[0], 1.0)
    frames, original = state.result.frames, state.video.frames()
    styled = state.video.segments[1].render(state.result.canonical)
    assert np.abs(frames[12:20] - styled[2:10]).max() < 1e-5  # frames only segment 1 renders: its restyled image
    changed = np.abs(frames - original).max(axis=(1, 2, 3))
    assert (changed[:CUT] > 0.05).all() and changed[CUT:].max() < 1e-6  # carried to segments 0 and 2, not past the cut
    mp4 = export.export_all(state, "result")["export_files"][0]
    from gendef.video.reader import iter_frames

    exported = np.stack(list(iter_frames(mp4))).astype(np.float32) / 255
    assert exported.shape == (N, H, W, 3) and np.abs(exported[15] - frames[15]).mean() < 0.04  # the export is the result


def test_timeline_marks_segments_cut_and_pick(clip):
    from gendef import viz

    path, _, _ = clip
    chain = SegmentedVideo.load(path)
    img = viz.segment_timeline(chain, picked=2, tile=32, gap=4, bar=14)
    width = img.shape[1]
    lanes = img[-(2 * 14 + 4):]
    cut_x = int(round(CUT * (width - 1) / N))
    assert (lanes[:, cut_x] == viz.TIMELINE_CUT).all()  # the hard cut, over both lanes
    lane = lambda i: lanes[2 + (i % 2) * 14 + 5]  # noqa: E731 - the middle row of segment i's lane
    x = lambda t: int(round(t * (width - 1) / N))  # noqa: E731
    assert (lane(0)[x(11)] != 255).any() and (lane(1)[x(11)] != 255).any()  # frame 11: segments 0 and 1 overlap
    assert (lane(0)[x(5)] != 255).any() and (lane(1)[x(5)] == 255).all()  # frame 5: segment 0 alone
    thumbs = img[: 32 + 6]
    assert (thumbs == viz.TIMELINE_PICKED).all(-1).sum() > 4 * 32  # segment 2's canonical framed in blue

"""Studio callbacks on tiny models, without a browser (the browser path is tests/test_browser.py)."""
import json
import os
import zipfile

import gradio as gr
import numpy as np
import pytest

from app import errors, export, checkpoints, scribble, segment, sources, stylize, track, views
from app.services import Services
from app.state import StudioState, cleanup
from app.studio import default_studio
from gendef.video.canonical_video import CanonicalVideo
from gendef.video.grid import identity_grid
from gendef.imageutil import to_uint8


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch):
    monkeypatch.delenv("GENDEF_CHECKPOINT", raising=False)
    yield


def _select(x, y):
    return gr.SelectData(None, {"index": [x, y], "value": None})


def _photo(h, w, seed=0):
    from skimage import data, transform

    img = transform.resize(data.astronaut(), (h, w), anti_aliasing=True).astype(np.float32)
    return np.clip(img, 0, 1)


def _panning_video(num_frames=16, frame=24, canvas=32):
    """Known motion: frame t shows the canvas shifted right by t/2 pixels."""
    grid = identity_grid(frame, frame, num_frames, offset=(2.0, 4.0))
    grid[..., 0] += (np.arange(num_frames, dtype=np.float32) * 0.5)[:, None, None]
    return CanonicalVideo(_photo(canvas, canvas), grid, fps=8.0)


def _loaded(video):
    state = StudioState()
    state.set_video(video, "test")
    state.scale = views.display_scale(max(video.canvas_size))
    return state


# ------------------------------------------------------------------------------ sources
def test_sample_new_motion_and_views(tiny_checkpoint):
    from gendef import GenDeF

    out = sources.sample(StudioState(), str(tiny_checkpoint), 5, 16, 1.0, 12)
    assert set(out) == set(default_studio().load_views)
    state, video_path, field_path, canon, strip, editor = (out[k] for k in ("state", "video", "field", "canonical", "strip", "editor"))
    notice = out["notice"]
    assert notice.startswith("Model:") and "untrained" not in notice.lower()
    ref = GenDeF.from_pretrained(str(tiny_checkpoint)).sample(seed=5, num_frames=16, fps=12)
    np.testing.assert_allclose(state.video.grid, ref.grid, atol=1e-5)
    assert state.video.fps == 12
    assert os.path.getsize(video_path) > 0 and os.path.getsize(field_path) > 0
    k = views.display_scale(16)
    assert k == 32 and canon.shape == (16 * k, 16 * k, 3) and canon.dtype == np.uint8
    assert editor["value"]["background"].shape == canon.shape and editor["value"]["layers"] == []
    assert strip.ndim == 3 and strip.dtype == np.uint8

    moved = sources.new_motion(state, "ignored", 0, 16, 1.0, 12)["state"]
    np.testing.assert_array_equal(moved.video.canonical, ref.canonical)  # Fig. 6: same image
    assert np.abs(moved.video.grid - ref.grid).max() > 1e-3  # new motion
    assert moved.motion_seed == 6 and "motion seed 6" in moved.source
    again = sources.new_motion(moved, "", 0, 16, 1.0, 12)["state"]
    assert again.motion_seed == 7


def test_untrained_demo_fallback_is_labelled(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(checkpoints, "REPO_ROOT", tmp_path)  # no checkpoints/default anywhere
    services = Services()
    loaded = services.model(None)
    assert loaded.untrained and loaded.checkpoint == checkpoints.DEMO_CHECKPOINT
    assert loaded.model.resolution == checkpoints.DEMO_RESOLUTION
    assert "Untrained demo model" in loaded.notice
    assert services.model("") is loaded  # cached, built once


def test_bad_checkpoints_and_caps_give_one_line_errors(tmp_path):
    st = StudioState()
    with pytest.raises(gr.Error, match="no such checkpoint folder"):
        sources.sample(st, str(tmp_path / "missing"), 0, 16, 1.0, 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(gr.Error, match="missing config.json"):
        sources.sample(st, str(tmp_path / "empty"), 0, 16, 1.0, 16)
    with pytest.raises(gr.Error, match="cannot load|cannot fetch"):
        sources.sample(st, "nobody/no-such-gendef-model", 0, 16, 1.0, 16)  # HF_HUB_OFFLINE=1 in conftest
    for frames in (8, 129, "many"):
        with pytest.raises(gr.Error, match="between 16 and 128|whole number"):
            sources.sample(st, "", 0, frames, 1.0, 16)
    with pytest.raises(gr.Error, match="Truncation"):
        sources.sample(st, "", 0, 16, 3.0, 16)
    with pytest.raises(gr.Error, match="fps"):
        sources.sample(st, "", 0, 16, 1.0, 0)
    with pytest.raises(gr.Error, match="No video yet"):
        scribble.apply_scribble(StudioState(), None)


def test_open_npz_roundtrip_limits_and_damage(tmp_path):
    v = _panning_video()
    path = v.save(tmp_path / "v.npz")
    state = sources.open_npz(StudioState(), str(path))["state"]
    np.testing.assert_array_equal(state.video.grid, v.grid)
    assert "Opened v.npz" in state.source

    long = CanonicalVideo(v.canonical, np.concatenate([v.grid] * 9), v.fps)  # 144 frames
    state = sources.open_npz(StudioState(), str(long.save(tmp_path / "long.npz")))["state"]
    assert state.video.num_frames == sources.MAX_FRAMES

    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(gr.Error, match="corrupt or truncated"):
        sources.open_npz(StudioState(), str(tmp_path / "bad.npz"))
    (tmp_path / "clip.txt").write_text("x")
    with pytest.raises(gr.Error, match="expected a .npz"):
        sources.open_npz(StudioState(), str(tmp_path / "clip.txt"))
    with pytest.raises(gr.Error, match="Choose a file"):
        sources.open_npz(StudioState(), None)


def test_example_assets_are_small_and_open():
    sizes = [p.stat().st_size for p in sources.EXAMPLES.iterdir() if p.is_file()]
    assert sum(sizes) < 1_000_000
    state = sources.open_example(StudioState())["state"]
    assert state.video.num_frames == 24 and state.video.canvas_size == (96, 96)


def test_upload_checks_and_decompose(tmp_path, monkeypatch):
    with pytest.raises(gr.Error, match="unsupported type"):
        (tmp_path / "a.txt").write_text("x")
        sources.decompose_upload(StudioState(), str(tmp_path / "a.txt"), 16, 64)
    big = tmp_path / "big.mp4"
    with open(big, "wb") as fh:
        fh.truncate((sources.MAX_UPLOAD_MB + 1) * 2**20)
    with pytest.raises(gr.Error, match="the limit is"):
        sources.decompose_upload(StudioState(), str(big), 16, 64)
    with pytest.raises(gr.Error, match="Size must be between"):
        sources.decompose_upload(StudioState(), str(sources.EXAMPLE_CLIP), 16, 1024)
    assert sources.clip_length(sources.EXAMPLE_CLIP) == (24, pytest.approx(12.0))
    with pytest.raises(gr.Error, match="past the end"):
        sources.decompose_upload(StudioState(), str(sources.EXAMPLE_CLIP), 16, 64, 24)
    with monkeypatch.context() as m, pytest.raises(gr.Error, match="the limit is"):
        m.setattr(sources, "MAX_CLIP_SECONDS", 1)  # the 2 s example clip is now too long
        sources.decompose_upload(StudioState(), str(sources.EXAMPLE_CLIP), 16, 64)

    import gendef.decomposition as dec

    calls = {}

    def fake_decompose(path, start=0, frames=None, size=256, steps=None, progress=None, output_size=None, info=None, threads=1):
        calls.update(path=path, start=start, frames=frames, size=size, steps=steps, output_size=output_size)
        progress(0.5, "halfway")
        return _panning_video(frames)

    monkeypatch.setattr(dec, "decompose_file", fake_decompose)
    state = sources.decompose_upload(StudioState(), str(sources.EXAMPLE_CLIP), 20, 96, 2, 50)["state"]
    assert calls == dict(path=str(sources.EXAMPLE_CLIP), start=2, frames=20, size=96, steps=50, output_size="64x64")
    assert state.video.num_frames == 20 and "Decomposed astronaut_pan.mp4" in state.source


def test_decompose_example_clip_for_real():
    """The real decomposer on the shipped clip (few steps): a video that reproduces the clip."""
    from gendef.video.reader import read_video

    state = sources.decompose_upload(StudioState(), str(sources.EXAMPLE_CLIP), 16, 64, 0, 10)["state"]
    v = state.video
    assert v.num_frames == 16 and v.frame_size == (64, 64) and v.fps == pytest.approx(12.0)
    assert "; 1 layer: " in state.source  # --layers auto says what it chose (a pan: one canvas)
    clip, _ = read_video(sources.EXAMPLE_CLIP, num_frames=16)
    err = np.abs(v.frames() - clip.astype(np.float32) / 255).mean()
    assert err < 0.05  # a reconstruction (~0.01 here); the clip against itself flipped differs by ~0.3


# ------------------------------------------------------------------------------ scribble
def _editor_value(state, rect, background=None):
    """An ImageEditor value (display resolution) with one painted rectangle in display pixels."""
    bg = views.display_canonical(state) if background is None else background
    h, w = bg.shape[:2]
    layer = np.zeros((h, w, 4), np.uint8)
    x0, y0, x1, y1 = rect
    layer[y0:y1, x0:x1] = (255, 40, 40, 255)
    bg4 = np.dstack([bg, np.full((h, w), 255, np.uint8)])
    return {"background": bg4, "layers": [layer], "composite": bg4}


def test_scribble_changes_exactly_the_propagated_pixels():
    v = _panning_video()
    state = _loaded(v)
    k = state.scale
    assert k == views.DISPLAY_SIZE // 32
    value = _editor_value(state, (10 * k, 12 * k, 20 * k, 15 * k))  # canonical x 10..19, y 12..14
    out = scribble.apply_scribble(state, value)
    assert set(out) == set(views.RESULT_VIEWS)
    state, result_path, comparison_path, files, status = (out[k] for k in views.RESULT_VIEWS)
    assert "Scribble applied: 30 canonical pixels" in status
    frames = state.result.frames
    original = v.frames()
    alpha = state.result.extra["edit_rgba"][..., 3]
    assert alpha[12:15, 10:20].min() > 0.99 and alpha.sum() == pytest.approx(30, abs=1e-3)
    changed = np.abs(frames - original).max(-1) > 1e-4
    support = v.warp(alpha) > 0
    assert changed.any() and not (changed & ~support).any()
    # the paint moves with the pan: canonical (15, 13) sits at frame x = 13 - t/2, y = 9
    for t in (0, 8, 15):
        x = 15 - 2.0 - 0.5 * t
        assert frames[t, 9, int(round(x))] == pytest.approx([1.0, 40 / 255, 40 / 255], abs=0.02)
    # the baked canonical image is re-openable and renders the same video (edges of the
    # stroke differ slightly: compositing before or after bilinear warping)
    baked = CanonicalVideo(state.result.canonical, v.grid, v.fps).frames()
    wa = v.warp(alpha)
    solid = (wa < 1e-6) | (wa > 1 - 1e-6)
    np.testing.assert_allclose(baked[solid], frames[solid], atol=2e-3)
    data = np.load(files[1], allow_pickle=False)
    np.testing.assert_array_equal(data["edited"], to_uint8(frames))
    np.testing.assert_array_equal(data["original"], to_uint8(original))
    assert all(os.path.getsize(p) > 0 for p in (result_path, comparison_path))


def test_scribble_with_nothing_drawn_is_an_error():
    state = _loaded(_panning_video())
    value = _editor_value(state, (0, 0, 0, 0))
    with pytest.raises(gr.Error, match="Nothing drawn"):
        scribble.apply_scribble(state, value)
    value["layers"] = []
    with pytest.raises(gr.Error, match="Nothing drawn"):
        scribble.apply_scribble(state, value)


def test_scribble_on_a_frame_lands_where_that_frame_shows_it():
    v = _panning_video()  # frame t pixel (x, y) shows canonical (x + 2 + t/2, y + 4)
    state = _loaded(v)
    k = state.scale
    shown = scribble.scribble_target(state, views.EDIT_ON_FRAME, 6)["editor"]
    assert shown["label"] == "Paint on frame 6"
    shown = shown["value"]
    assert shown["layers"] == [] and shown["background"].shape == (24 * k, 24 * k, 3)
    np.testing.assert_array_equal(shown["background"], to_uint8(views.upscaled(state, v.frames()[6])))
    value = _editor_value(state, (4 * k, 5 * k, 10 * k, 8 * k), background=shown["background"])  # frame x 4..9, y 5..7
    out = scribble.apply_scribble(state, value, views.EDIT_ON_FRAME, 6)
    assert "Scribble on frame 6 applied: 18 canonical pixels" in out["status"]
    alpha = out["state"].result.extra["edit_rgba"][..., 3]
    want = np.zeros_like(alpha)
    want[9:12, 9:15] = 1.0  # canonical x 4+2+3 .. 9+2+3, y 5+4 .. 7+4
    np.testing.assert_allclose(alpha, want, atol=1e-4)
    frames = out["state"].result.frames
    changed = np.abs(frames - v.frames()).max(-1) > 1e-4
    assert changed[6, 5:8, 4:10].all() and changed[6].sum() == 18
    assert changed[0, 5:8, 7:13].all() and changed[0].sum() == 18  # frame 0 sees it 3 px further right
    with pytest.raises(gr.Error, match="Frame must be between 0 and 15"):
        scribble.apply_scribble(state, value, views.EDIT_ON_FRAME, 16)


# ------------------------------------------------------------------------------ track
def test_track_click_matches_canonical_video_track():
    v = _panning_video()
    state = _loaded(v)
    k = state.scale
    out = track.track_click(state, track.TRACK_ON_CANONICAL, _select(16 * k + k // 2, 10 * k + k // 2))
    state, text, points = out["state"], out["track_json"], out["track_points"]
    (cx, cy), = json.loads(points)
    assert (cx, cy) == pytest.approx((16.0, 10.0), abs=0.5 / k)  # display pixel centre -> canonical
    doc = json.loads(text)
    pos, vis = v.track([(cx, cy)])
    got = np.array([[p["x"], p["y"]] for p in doc["points"][0]["track"]])
    np.testing.assert_allclose(got, pos[:, 0], atol=2e-3)
    np.testing.assert_allclose(got[:, 0], cx - 2.0 - 0.5 * np.arange(16), atol=1e-2)  # the pan, exactly
    assert [p["visible"] for p in doc["points"][0]["track"]] == vis[:, 0].tolist()
    files = [str(f) for f in out["result_files"]]
    assert any(f.endswith(".json") for f in files) and any(f.endswith(".csv") for f in files)

    # a click on frame 0 maps through the grid: frame (3, 5) shows canonical (5, 9)
    out = track.track_click(state, track.TRACK_ON_FRAME0, _select(3 * k + k // 2, 5 * k + k // 2))
    assert json.loads(out["track_points"])[-1] == pytest.approx([5.0, 9.0], abs=0.5 / k)
    out = track.track_clear(state, track.TRACK_ON_CANONICAL)
    state, points = out["state"], out["track_points"]
    assert points == "[]" and state.tracks is None


def test_display_coordinates_roundtrip():
    state = _loaded(_panning_video())
    k = state.scale
    for x, y in [(0.0, 0.0), (7.0, 3.0), (31.0, 31.0)]:
        (dx, dy), = views.to_display_xy(state, [(x, y)])
        assert views.to_canonical_xy(state, (dx, dy)) == pytest.approx((x, y), abs=0.5 / k)
    assert views.to_canonical_xy(state, (10_000, -5)) == (31.0, 0.0)  # clamped into the canvas


# ------------------------------------------------------------------------------ segment
def _disc_video():
    img = np.full((32, 32, 3), 0.15, np.float32)
    yy, xx = np.mgrid[:32, :32]
    disc = (xx - 14) ** 2 + (yy - 16) ** 2 <= 7**2
    img[disc] = (0.95, 0.8, 0.1)
    grid = identity_grid(32, 32, 16)
    grid[..., 0] -= (np.arange(16, dtype=np.float32) * 0.5)[:, None, None]
    return CanonicalVideo(img, grid, fps=8.0), disc


def test_grabcut_segment_propagates_masks_and_exports(tmp_path):
    v, disc = _disc_video()
    state = _loaded(v)
    k = state.scale
    out = segment.segment_click(state, "positive", segment.SEG_GRABCUT, _select(14 * k, 16 * k))
    state, view, text = out["state"], out["seg_image"], out["seg_points"]
    assert "GrabCut (offline fallback, not SAM)" in text
    iou = (state.mask & disc).sum() / (state.mask | disc).sum()
    assert iou > 0.8
    assert view.shape == (32 * k, 32 * k, 3)
    out = segment.apply_segment(state)
    state, files = out["state"], out["result_files"]
    masks = state.result.extra["masks"]
    np.testing.assert_array_equal(masks, v.propagate_mask(state.mask))
    zips = [f for f in files if str(f).endswith(".zip")]
    with zipfile.ZipFile(zips[0]) as zf:
        assert len(zf.namelist()) == 16
    cut = state.result.extra["cutout"]
    assert np.allclose(cut[~masks], 1.0)  # white outside the object
    state = segment.segment_clear(state)["state"]
    with pytest.raises(gr.Error, match="No mask yet"):
        segment.apply_segment(state)


def test_segment_clicks_and_box_on_a_frame_go_to_the_canonical_image():
    v, disc = _disc_video()  # frame t pixel (x, y) shows canonical (x - t/2, y)
    state = _loaded(v)
    k = state.scale
    out = segment.segment_click(state, "positive", segment.SEG_GRABCUT, _select(18 * k + k // 2, 16 * k + k // 2), views.EDIT_ON_FRAME, 8)
    state = out["state"]
    assert state.seg_positive == [pytest.approx((14.0, 16.0), abs=0.5 / k)]  # frame 8 (18, 16) = canonical (14, 16)
    assert (state.mask & disc).sum() / (state.mask | disc).sum() > 0.8
    np.testing.assert_array_equal(out["seg_image"], segment.segment_target(state, views.EDIT_ON_FRAME, 8)["seg_image"])
    state = segment.segment_clear(state, views.EDIT_ON_FRAME, 8)["state"]
    for x, y in ((9, 7), (26, 25)):  # a box around the disc, drawn on frame 8
        state = segment.segment_click(state, "box corner", segment.SEG_GRABCUT, _select(x * k + k // 2, y * k + k // 2), views.EDIT_ON_FRAME, 8)["state"]
    assert state.seg_box == [pytest.approx((5.0, 7.0), abs=0.5 / k), pytest.approx((22.0, 25.0), abs=0.5 / k)]
    assert (state.mask & disc).sum() / (state.mask | disc).sum() > 0.7


def test_sam_segment_through_real_predictor():
    from gendef.editing.segment import Segmenter
    from tests.test_editing import _tiny_sam

    v, _ = _disc_video()
    seg = Segmenter(_tiny_sam())
    studio = default_studio()
    studio.services.set_segmenter(seg)
    assert segment.default_segmenter(studio=studio) == segment.SEG_SAM
    state = _loaded(v)
    k = state.scale
    out = segment.segment_click(state, "positive", segment.SEG_SAM, _select(14 * k, 16 * k), studio=studio)
    state, text = out["state"], out["seg_points"]
    assert text.strip().endswith("canonical pixels.") and "SAM:" in text
    assert state.mask.shape == (32, 32) and state.mask.dtype == bool
    np.testing.assert_array_equal(state.mask, seg.segment(v.canonical, positive=state.seg_positive))
    state = segment.segment_click(state, "negative", segment.SEG_SAM, _select(2 * k, 2 * k), studio=studio)["state"]
    assert state.seg_negative and seg.embeddings_computed == 1  # later clicks reuse the embedding
    np.testing.assert_array_equal(
        state.mask, seg.segment(v.canonical, positive=state.seg_positive, negative=state.seg_negative)
    )


def test_sam_missing_falls_back_to_grabcut_with_label(monkeypatch):
    from gendef.editing import segment as sg

    def unavailable(*a, **k):
        raise sg.SegmentUnavailable("SAM weights not in the local cache")

    monkeypatch.setattr(sg, "get_segmenter", unavailable)
    v, disc = _disc_video()
    state = _loaded(v)
    k = state.scale
    out = segment.segment_click(state, "positive", segment.SEG_SAM, _select(14 * k, 16 * k))
    state, text = out["state"], out["seg_points"]
    assert "GrabCut (offline fallback, not SAM)" in text and state.mask[16, 14]


# ------------------------------------------------------------------------------ stylize / looks
def test_stylize_runs_tiny_controlnet_pipeline(tmp_path):
    from gendef.editing.stylize import Stylizer
    from tests.test_editing import _tiny_pipe

    studio = default_studio()
    studio.services.set_stylizer(Stylizer(_tiny_pipe(tmp_path), control="canny", fast=True, size=32), "canny", True)
    assert "preloaded" in stylize.stylize_status("canny", True, studio=studio)
    v = _panning_video()
    state = _loaded(v)
    with pytest.raises(gr.Error, match="Write a prompt"):
        stylize.apply_stylize(state, "  ", "", "canny", 0.6, 2, 0, True)
    out = stylize.apply_stylize(state, "a red cat", "", "canny", 0.5, 2, 1, True, studio=studio)
    state, status = out["state"], out["status"]
    styled = state.result.canonical
    assert styled.shape == v.canonical.shape and np.abs(styled - v.canonical).mean() > 1e-3
    np.testing.assert_allclose(state.result.frames, v.render(styled), atol=1e-6)
    assert "Stylized (canny, 2 steps" in status


def test_stylize_unavailable_offline_explains_itself(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("GENDEF_SD_MODEL", str(tmp_path / "no-sd"))
    msg = stylize.stylize_status("canny", True)
    assert "not ready" in msg and "Offline looks still work" in msg
    with pytest.raises(gr.Error, match="not available offline|missing|could not load"):
        stylize.apply_stylize(_loaded(_panning_video()), "a cat", "", "canny", 0.5, 2, 0, True)


def test_offline_look():
    from gendef.editing.looks import apply_look

    v = _panning_video()
    state = _loaded(v)
    name = stylize.look_names()[0]
    state = stylize.apply_look(state, name, 1.0)["state"]
    np.testing.assert_allclose(state.result.frames, v.render(apply_look(v.canonical, name, 1.0)), atol=1e-6)
    with pytest.raises(gr.Error, match="valid|one of|unknown"):
        stylize.apply_look(state, "no-such-look", 1.0)


# ------------------------------------------------------------------------------ export, state, app
def test_export_all_writes_reopenable_files():
    v = _panning_video()
    state = _loaded(v)
    files = export.export_all(state, "original")["export_files"]
    assert [os.path.splitext(f)[1] for f in files] == [".mp4", ".gif", ".npz"]
    np.testing.assert_array_equal(CanonicalVideo.load(files[2]).grid, v.grid)
    k = state.scale
    scribble.apply_scribble(state, _editor_value(state, (0, 0, 8 * k, 8 * k)))
    files = export.export_all(state, "result")["export_files"]
    edited = CanonicalVideo.load(files[2])
    assert "scribble" in os.path.basename(files[2])
    assert edited.canonical[2, 2] == pytest.approx([1.0, 40 / 255, 40 / 255], abs=0.01)
    from PIL import Image

    gif = Image.open(files[1])
    assert gif.n_frames == v.num_frames

    # masks and trajectories made earlier in the session are exported whatever the last edit was
    segment.segment_click(state, "positive", segment.SEG_GRABCUT, _select(16 * k, 16 * k))
    track.track_click(state, track.TRACK_ON_CANONICAL, _select(16 * k, 16 * k))
    files = export.export_all(state, "result")["export_files"]
    assert [os.path.splitext(f)[1] for f in files] == [".mp4", ".gif", ".npz", ".zip", ".json", ".csv"]
    with zipfile.ZipFile(files[3]) as zf:
        assert len(zf.namelist()) == v.num_frames
    assert json.loads(open(files[4]).read())["num_points"] == 1


def test_export_keeps_the_sound_of_a_decomposed_upload(tmp_path):
    from gendef.video.audio import has_audio
    from tests.test_audio import SR, _decoded, _start_of, make_tone_clip

    clip = make_tone_clip(tmp_path / "tone.mp4", size=64)
    state = sources.decompose_upload(StudioState(), str(clip), 16, 64, 6, 4)["state"]  # frames 6.. = from 0.5 s
    mp4 = export.export_all(state, "original")["export_files"][0]
    sound = _decoded(mp4)
    assert len(sound) / SR == pytest.approx(16 / 12, abs=0.03) and _start_of(sound) == pytest.approx(0.5, abs=0.002)
    clip.unlink()  # the upload is gone: a warning and a silent export, never a failure
    with pytest.warns(UserWarning, match="not found; exporting without sound"):
        mp4 = export.export_all(state, "original")["export_files"][0]
    assert os.path.getsize(mp4) > 0 and not has_audio(mp4)


def test_sessions_are_isolated_and_cleaned_up():
    a, b = _loaded(_panning_video()), _loaded(_disc_video()[0])
    pa, pb = a.new_path("x.mp4"), b.new_path("x.mp4")
    assert pa.parent != pb.parent and pa != a.new_path("x.mp4")
    a.track_points.append((1.0, 2.0))
    assert b.track_points == []
    cleanup(a)
    assert not pa.parent.exists() and pb.parent.exists()
    cleanup(b)


def test_unexpected_errors_are_logged_and_shown_as_internal_error(caplog):
    @errors.friendly
    def boom():
        raise RuntimeError("first line\nsecond line")

    with caplog.at_level("ERROR", logger="gendef.studio"), pytest.raises(gr.Error) as e:
        boom()
    assert "\n" not in e.value.message and e.value.message.startswith("Internal error (RuntimeError")
    assert "Traceback" in caplog.text and "second line" in caplog.text  # the bug keeps its traceback in the log

    @errors.friendly
    def user_mistake():
        errors.whole_number("3.5", "Frames", 16, 128)

    caplog.clear()
    with caplog.at_level("ERROR", logger="gendef.studio"), pytest.raises(gr.Error) as e:
        user_mistake()
    assert e.value.message == "Frames must be a whole number between 16 and 128."
    assert caplog.text == ""  # user errors are not logged as bugs

    @errors.friendly
    def library_error():
        CanonicalVideo.load("/no/such/file.npz")

    with pytest.raises(gr.Error, match="file not found"):
        library_error()

    @errors.friendly
    def plain_value_error():
        raise ValueError("not a GenDeFError, so a bug")

    with pytest.raises(gr.Error) as e:
        plain_value_error()
    assert e.value.message.startswith("Internal error (ValueError)")


def test_range_parsers():
    assert errors.whole_number("17", "Frames", 16, 128) == 17 and errors.whole_number(16.0, "Frames", 16, 128) == 16
    assert errors.number("0.5", "ψ", 0, 1.5) == 0.5
    for bad, pattern in ((None, "whole number"), ("x", "whole number"), (200, "got 200"), (float("nan"), "whole number")):
        with pytest.raises(errors.StudioInputError, match=pattern):
            errors.whole_number(bad, "Frames", 16, 128)
    with pytest.raises(errors.StudioInputError, match="between 0 and 1.5, got 2"):
        errors.number(2, "ψ", 0, 1.5)


def test_app_args_bind_loopback_locally_and_space_host(monkeypatch):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("app_main", Path(__file__).resolve().parent.parent / "app.py")
    app_main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app_main)
    for var in ("SPACE_ID", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT"):
        monkeypatch.delenv(var, raising=False)
    args = app_main.parse_args([])
    assert (args.host, args.port, args.share, args.checkpoint) == ("127.0.0.1", 7860, False, None)
    monkeypatch.setenv("SPACE_ID", "someone/gendef")
    assert app_main.parse_args([]).host == "0.0.0.0"
    monkeypatch.setenv("GRADIO_SERVER_NAME", "10.0.0.7")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "9000")
    args = app_main.parse_args(["--checkpoint", "ck"])
    assert (args.host, args.port, args.checkpoint) == ("10.0.0.7", 9000, "ck")


def test_build_demo_wires_queue_and_components():
    from app.ui import CONCURRENCY, build_demo

    demo = build_demo("some/ckpt")
    cfg = demo.get_config_file()
    ids = {c.get("props", {}).get("elem_id") for c in cfg["components"]}
    for needed in ("sample-btn", "scribble-editor", "apply-scribble-btn", "track-image", "segment-image", "export-btn"):
        assert needed in ids
    assert demo._queue.default_concurrency_limit == CONCURRENCY
    ckpt = [c for c in cfg["components"] if c.get("props", {}).get("elem_id") == "checkpoint"][0]
    assert ckpt["props"]["value"] == "some/ckpt"


def test_whole_number_refuses_infinity_in_one_line():
    from app.errors import StudioInputError, whole_number

    for bad in ("inf", "-inf", "nan", "1.5"):
        with pytest.raises(StudioInputError, match="whole number between 16 and 128"):
            whole_number(bad, "Frames", 16, 128)
    assert whole_number("32", "Frames", 16, 128) == 32

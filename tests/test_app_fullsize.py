"""The studio at output size: a clip decomposed at a working size is edited and exported at its own size."""
import json
import zipfile

import gradio as gr
import numpy as np
import pytest

from app import export, scribble, segment, sources, track, views
from app.state import PREVIEW_SIDE, StudioState
from gendef.video.canonical_video import CanonicalVideo
from gendef.video.io import write_video
from gendef.video.reader import read_video

SRC_H, SRC_W = 180, 320  # the uploaded clip; the working size is 64 px long


def _select(x, y):
    return gr.SelectData(None, {"index": [x, y], "value": None})


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    import cv2
    from skimage import data

    photo = cv2.resize(data.astronaut(), (420, 420), interpolation=cv2.INTER_AREA)
    frames = np.stack([photo[40 + t : 40 + t + SRC_H, 30 + 2 * t : 30 + 2 * t + SRC_W] for t in range(16)])
    return write_video(frames, tmp_path_factory.mktemp("clip") / "pan.mp4", fps=12)


@pytest.fixture(scope="module")
def decomposed(clip_path):
    return sources.decompose_upload(StudioState(), str(clip_path), 16, 64, 0, 20)["state"]


def test_decompose_comes_back_at_the_source_size(decomposed):
    v = decomposed.video
    assert v.frame_size == (SRC_H, SRC_W) and max(v.grid_size) == 64
    assert decomposed.preview.frame_size == v.frame_size  # small enough to show as is
    assert "exports at 320x180" in views.status_line(decomposed)


def test_exports_are_at_the_output_size(decomposed):
    files = export.export_all(decomposed, "original")["export_files"]
    mp4, gif, npz = files[:3]
    assert read_video(mp4)[0].shape[1:3] == (SRC_H, SRC_W)
    assert read_video(gif)[0].shape[1:3] == (SRC_H, SRC_W)
    back = CanonicalVideo.load(npz)
    assert back.frame_size == (SRC_H, SRC_W) and back.grid_size == decomposed.video.grid_size


def test_working_size_choice_keeps_the_grid_size(clip_path):
    st = sources.decompose_upload(StudioState(), str(clip_path), 16, 64, 0, 5, sources.OUTPUT_WORKING)["state"]
    assert st.video.frame_size == st.video.grid_size
    assert sources.decompose_output_size(clip_path, sources.OUTPUT_720P) == "720p"
    with pytest.raises(gr.Error):
        sources.decompose_upload(StudioState(), str(clip_path), 16, 64, 0, 5, "8K")


def _big_state():
    """A 1280x720 output from a 64x36 grid: views show a preview, edits map to the full canonical."""
    from gendef.video.fullsize import upscale
    from gendef.video.grid import identity_grid

    rng = np.random.default_rng(0)
    small = np.clip(rng.random((40, 70, 3)).astype(np.float32), 0, 1)
    grid = identity_grid(36, 64, 4, offset=(3.0, 2.0)) + np.arange(4, dtype=np.float32)[:, None, None, None] * 0.5
    state = StudioState()
    video = upscale(CanonicalVideo(small, grid, fps=8), (720, 1280))
    state.set_video(video, "big")
    state.scale = views.display_scale(max(video.canvas_size))
    return state


def test_full_size_views_are_display_sized_and_clicks_map_to_full_size():
    state = _big_state()
    v = state.video
    assert max(state.preview.frame_size) == PREVIEW_SIDE and state.preview.grid is v.grid
    disp = views.display_canonical(state)
    assert max(disp.shape[:2]) == views.DISPLAY_MAX
    # a click on the display's last pixel is the canonical's last pixel, the centre is the centre
    hc, wc = v.canvas_size
    dh, dw = disp.shape[:2]
    assert views.to_canonical_xy(state, (dw - 1, dh - 1)) == pytest.approx((wc - 1 - 0.5 * (wc / dw - 1), hc - 1 - 0.5 * (hc / dh - 1)), abs=1e-2)
    x, y = views.to_canonical_xy(state, (dw / 2 - 0.5, dh / 2 - 0.5))
    assert abs(x - (wc - 1) / 2) < 1e-2 and abs(y - (hc - 1) / 2) < 1e-2
    # tracking on frame 0: the clicked output pixel is where the point is in frame 0, at full size
    out = track.track_click(state, track.TRACK_ON_FRAME0, _select(dw // 3, dh // 2))
    pos, _ = state.tracks
    fx, fy = views.to_image_xy(state, (dw // 3, dh // 2), v.frame_size)
    assert abs(pos[0, 0, 0] - fx) < 0.05 and abs(pos[0, 0, 1] - fy) < 0.05
    assert json.loads(out["track_json"])["points"][0]["track"][0]["x"] == pytest.approx(fx, abs=0.05)


def test_scribble_from_the_display_editor_is_painted_at_full_size_and_exported():
    state = _big_state()
    disp = views.display_canonical(state)
    layer = np.zeros(disp.shape[:2] + (4,), np.uint8)
    layer[200:230, 100:600] = (255, 0, 0, 255)
    out = scribble.apply_scribble(state, {"background": disp, "layers": [layer], "composite": disp})
    assert state.result.extra["edit_rgba"].shape[:2] == state.video.canvas_size
    assert state.result.frames.shape[1:3] == state.preview.frame_size
    assert "Scribble applied" in out["status"]
    frames = export._export_frames(state, True)  # what export_all encodes
    assert frames.shape == (4, 720, 1280, 3)
    red = (frames[..., 0] > 200) & (frames[..., 1] < 60)
    assert red[0].sum() > 1000  # the stroke, at full size

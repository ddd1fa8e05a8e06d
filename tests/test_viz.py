import csv
import io
import json
import zipfile

import cv2
import numpy as np
import pytest

from gendef.video.canonical_video import CanonicalVideo
from gendef.video.grid import identity_grid
from app.formats import masks_to_zip, rgba_from_editor_layers, tracks_to_csv, tracks_to_json
from gendef.viz import (
    color_wheel,
    cutout,
    deformation_strip,
    deformation_video,
    draw_tracks,
    FIELD_SCALE_FLOOR_PX,
    flow_to_color,
    overlay_masks,
    point_colors,
    resize_image,
    side_by_side,
)


def _hue_sat(rgb_u8):
    hsv = cv2.cvtColor(rgb_u8.reshape(1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)[0, 0]
    return hsv[0], hsv[1]


@pytest.mark.parametrize(
    "direction,hue",
    [((1, 0), 0.0), ((0, 1), 90.0), ((-1, 0), 180.0), ((0, -1), 270.0), ((1, 1), 45.0)],
)
def test_flow_to_color_direction_gives_hue(direction, hue):
    flow = np.zeros((4, 4, 2), np.float32)
    flow[...] = direction
    img = flow_to_color(flow)
    assert img.dtype == np.uint8 and img.shape == (4, 4, 3)
    h, s = _hue_sat(img[0, 0])
    assert abs((h - hue + 180) % 360 - 180) < 2.0
    assert s > 0.95


def test_flow_to_color_known_colours_and_magnitude():
    flow = np.zeros((1, 4, 2), np.float32)
    flow[0, 0] = (2, 0)  # full magnitude right -> pure red
    flow[0, 1] = (-2, 0)  # full magnitude left -> cyan
    flow[0, 2] = (1, 0)  # half magnitude -> half saturation
    img = flow_to_color(flow)
    assert tuple(img[0, 0]) == (255, 0, 0)
    assert tuple(img[0, 1]) == (0, 255, 255)
    assert abs(_hue_sat(img[0, 2])[1] - 0.5) < 0.02
    assert tuple(img[0, 3]) == (255, 255, 255)  # no motion is white
    # a fixed scale saturates at max_magnitude
    assert abs(_hue_sat(flow_to_color(flow, max_magnitude=4.0)[0, 0])[1] - 0.5) < 0.02
    with pytest.raises(ValueError, match="shaped"):
        flow_to_color(np.zeros((4, 4, 3)))


def test_color_wheel_is_legend_of_flow_to_color():
    w = color_wheel(33)
    assert w.shape == (33, 33, 3)
    assert _hue_sat(w[16, 32])[0] < 2 or _hue_sat(w[16, 32])[0] > 358  # right edge is red
    assert abs(_hue_sat(w[32, 16])[0] - 90) < 2  # bottom edge is 90 deg
    assert tuple(w[0, 0]) == (255, 255, 255)


def test_deformation_strip_shows_displacement():
    h = w = 8
    grid = identity_grid(h, w, 4)
    grid[1:, ..., 0] += np.arange(1, 4, dtype=np.float32)[:, None, None]  # moving right
    vid = CanonicalVideo(np.random.default_rng(0).random((h, w, 3)).astype(np.float32), grid, fps=8)
    strip = deformation_strip(vid, num=4, tile=16, gap=2)
    assert strip.dtype == np.uint8
    assert strip.shape == (16 * 2 + 2, 16 * 5 + 2 * 4, 3)
    bottom = strip[18:]
    first = bottom[:, 18:34]
    last = bottom[:, -16:]
    assert (first == 255).all()  # frame 0 does not move: white
    hue, sat = _hue_sat(last[8, 8])
    assert sat > 0.95 and (hue < 2 or hue > 358)  # largest rightward displacement: saturated red
    # the top row starts with the (upscaled) canonical image
    np.testing.assert_array_equal(
        strip[:16, :16], cv2.resize((vid.canonical * 255 + 0.5).astype(np.uint8), (16, 16), interpolation=cv2.INTER_NEAREST)
    )


def _strip_of(shift_px, noise=0.0):
    """A 4-frame 8x8 video whose frames 1-3 shift right by ``shift_px``, plus float noise; the strip's field row."""
    grid = identity_grid(8, 8, 4)
    grid[1:, ..., 0] += shift_px
    grid = grid + noise * np.random.default_rng(0).standard_normal(grid.shape).astype(np.float32)
    vid = CanonicalVideo(np.full((8, 8, 3), 0.5, np.float32), grid, fps=8)
    return deformation_strip(vid, num=4, tile=16, gap=2)[18:, 18:], deformation_video(vid)


def test_field_pictures_have_a_one_pixel_floor_so_a_zero_field_draws_white():
    """Issue 27: float noise (1e-5 px) must not be stretched to full colour; 1 px is full colour, 0.5 px half."""
    assert FIELD_SCALE_FLOOR_PX == 1.0
    still, still_video = _strip_of(0.0, noise=1e-5)
    assert still.min() >= 254 and still_video.min() >= 254 / 255  # white (at most 1 level off, from the noise)
    moving, moving_video = _strip_of(1.0)
    h, s = _hue_sat(moving[8, -8])  # last frame, 1 px to the right: saturated red
    assert s > 0.95 and (h < 2 or h > 358)
    assert abs(_hue_sat((moving_video[3, 4, 4] * 255).round().astype(np.uint8))[1] - 1.0) < 0.02
    half, _ = _strip_of(0.5)
    assert abs(_hue_sat(half[8, -8])[1] - 0.5) < 0.02  # below the floor: pale, in proportion
    big, _ = _strip_of(3.0)
    assert _hue_sat(big[8, -8])[1] > 0.95  # above the floor the scale is the field's own max, as before


def test_draw_tracks_draws_at_positions_and_hides_invisible():
    t, h, w = 3, 32, 32
    frames = np.zeros((t, h, w, 3), np.float32)
    pos = np.array([[[5, 5], [20, 10]], [[10, 5], [20, 12]], [[15, 5], [20, 14]]], np.float32)
    vis = np.array([[True, True], [True, False], [True, True]])
    out = draw_tracks(frames, pos, vis, radius=2, trail=8)
    assert out.shape == frames.shape and out.dtype == np.float32
    cols = point_colors(2)
    np.testing.assert_allclose(out[0, 5, 5], cols[0], atol=0.05)
    np.testing.assert_allclose(out[2, 5, 15], cols[0], atol=0.05)
    np.testing.assert_allclose(out[0, 10, 20], cols[1], atol=0.05)
    # point 1 invisible in frame 1: nothing of its colour there
    f1 = out[1]
    near = np.abs(f1 - cols[1]).max(-1) < 0.2
    assert not near.any()
    assert (f1[:, 17:24] == 0).all()
    # trail of point 0 in frame 2 covers the path from x=5 to x=15 on row 5
    assert (out[2, 5, 5:16].max(-1) > 0.3).all()
    # nothing drawn far from all tracks
    assert (out[:, 25:, :3] == 0).all()
    assert not np.allclose(cols[0], cols[1], atol=0.2)


def test_draw_tracks_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="visible"):
        draw_tracks(np.zeros((2, 8, 8, 3)), np.zeros((2, 1, 2)), np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="frames"):
        draw_tracks(np.zeros((3, 8, 8, 3)), np.zeros((2, 1, 2)), np.ones((2, 1), bool))


def test_overlay_cutout_side_by_side():
    frames = np.full((2, 4, 4, 3), 0.2, np.float32)
    masks = np.zeros((2, 4, 4), bool)
    masks[:, 1:3, 1:3] = True
    ov = overlay_masks(frames, masks, color=(1, 0, 0), alpha=0.5)
    np.testing.assert_allclose(ov[0, 1, 1], [0.6, 0.1, 0.1], atol=1e-6)
    np.testing.assert_allclose(ov[0, 0, 0], [0.2, 0.2, 0.2])
    cu = cutout(frames, masks, background=(0, 0, 1))
    np.testing.assert_allclose(cu[1, 2, 2], [0.2, 0.2, 0.2])
    np.testing.assert_allclose(cu[1, 0, 3], [0, 0, 1])
    sbs = side_by_side(frames, ov, gap=3)
    assert sbs.shape == (2, 4, 11, 3)
    np.testing.assert_allclose(sbs[:, :, 4:7], 1.0)
    np.testing.assert_allclose(sbs[:, :, 7:], ov)
    with pytest.raises(ValueError, match="masks"):
        overlay_masks(frames, masks[0])
    with pytest.raises(ValueError, match="differ"):
        side_by_side(frames, frames[:1])


def test_rgba_from_editor_layers_alpha_logic():
    bg = np.full((6, 6, 3), 128, np.uint8)
    red = np.zeros((6, 6, 4), np.uint8)
    red[1, 1] = (255, 0, 0, 255)
    red[2, 2] = (255, 0, 0, 255)
    blue = np.zeros((6, 6, 4), np.uint8)
    blue[2, 2] = (0, 0, 255, 255)  # covers red at (2, 2)
    blue[3, 3] = (0, 0, 255, 128)  # half transparent stroke
    out = rgba_from_editor_layers(bg, [red, blue])
    assert out.shape == (6, 6, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, 1], [1, 0, 0, 1])
    np.testing.assert_allclose(out[2, 2], [0, 0, 1, 1])
    np.testing.assert_allclose(out[3, 3], [0, 0, 1, 128 / 255], atol=1e-6)
    untouched = np.ones((6, 6), bool)
    untouched[[1, 2, 3], [1, 2, 3]] = False
    assert (out[untouched][:, 3] == 0).all()
    # union of alphas: two half-transparent strokes give 0.75
    half = np.zeros((6, 6, 4), np.uint8)
    half[0, 0] = (255, 255, 255, 128)
    a = rgba_from_editor_layers(bg, [half, half])[0, 0, 3]
    assert abs(a - (1 - (1 - 128 / 255) ** 2)) < 1e-6
    # no layers: a fully transparent edit of the background's size
    assert (rgba_from_editor_layers(np.zeros((5, 7, 4), np.uint8), [])[..., 3] == 0).all()
    assert rgba_from_editor_layers(np.zeros((5, 7, 4), np.uint8), []).shape == (5, 7, 4)
    # no background (blank canvas): the layers alone fix the size
    np.testing.assert_allclose(rgba_from_editor_layers(None, [red])[1, 1], [1, 0, 0, 1])
    with pytest.raises(ValueError, match="no background and no layers"):
        rgba_from_editor_layers(None, [])
    with pytest.raises(ValueError, match="background"):
        rgba_from_editor_layers(np.zeros((4, 4)), [red])
    with pytest.raises(ValueError, match="layer 0"):
        rgba_from_editor_layers(bg, [np.zeros((6, 6))])


def test_resize_image_keeps_dtype_and_masks_binary():
    img = np.random.default_rng(0).random((10, 12, 3)).astype(np.float32)
    r = resize_image(img, (5, 6))
    assert r.shape == (5, 6, 3) and r.dtype == np.float32
    assert abs(r.mean() - img.mean()) < 0.02
    m = np.zeros((10, 12), bool)
    m[:5] = True
    rm = resize_image(m, (20, 24))
    assert rm.dtype == bool and rm[:10].all() and not rm[10:].any()
    assert resize_image(np.zeros((4, 4, 3), np.uint8), (8, 8)).dtype == np.uint8


def test_tracks_json_csv_roundtrip():
    pos = np.array([[[1.5, 2.25]], [[3.0, 4.0]]], np.float32)
    vis = np.array([[True], [False]])
    doc = json.loads(tracks_to_json(pos, vis, fps=8))
    assert doc["num_frames"] == 2 and doc["num_points"] == 1 and doc["fps"] == 8
    tr = doc["points"][0]["track"]
    assert tr[0] == {"frame": 0, "time": 0.0, "x": 1.5, "y": 2.25, "visible": True}
    assert tr[1]["visible"] is False and tr[1]["time"] == 0.125
    rows = list(csv.DictReader(io.StringIO(tracks_to_csv(pos, vis))))
    assert list(rows[0].keys()) == ["frame", "point", "x", "y", "visible"]
    assert len(rows) == 2
    assert float(rows[1]["x"]) == 3.0 and rows[1]["visible"] == "0" and rows[0]["visible"] == "1"


def test_masks_to_zip(tmp_path):
    masks = np.zeros((3, 5, 6), bool)
    masks[1, 2, 3] = True
    p = masks_to_zip(masks, tmp_path / "masks.zip")
    with zipfile.ZipFile(p) as zf:
        names = sorted(zf.namelist())
        assert names == ["mask_0000.png", "mask_0001.png", "mask_0002.png"]
        img = cv2.imdecode(np.frombuffer(zf.read("mask_0001.png"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert img.shape == (5, 6) and img[2, 3] == 255 and img.sum() == 255


def test_deformation_video_colours_each_frame_on_one_scale():
    grid = identity_grid(6, 6, 3)
    grid[1, ..., 1] += 1.0  # frame 1 moves down by 1
    grid[2, ..., 1] += 2.0  # frame 2 moves down by 2
    vid = CanonicalVideo(np.zeros((6, 6, 3), np.float32), grid)
    dv = deformation_video(vid)
    assert dv.shape == (3, 6, 6, 3) and dv.dtype == np.float32
    np.testing.assert_allclose(dv[0], 1.0)  # no motion: white
    h1, s1 = _hue_sat((dv[1, 3, 3] * 255).round().astype(np.uint8))
    h2, s2 = _hue_sat((dv[2, 3, 3] * 255).round().astype(np.uint8))
    assert abs(h2 - 90) < 2 and abs(s2 - 1) < 0.02 and abs(s1 - 0.5) < 0.02


def test_deformation_video_centres_frame_on_larger_canvas():
    grid = identity_grid(4, 4, 2, offset=(2.0, 2.0))  # 4x4 frames centred on an 8x8 canvas
    vid = CanonicalVideo(np.zeros((8, 8, 3), np.float32), grid)
    np.testing.assert_allclose(deformation_video(vid), 1.0)


def test_resize_rgba_is_premultiplied():
    rgba = np.zeros((4, 4, 4), np.float32)
    rgba[:, :2] = (1.0, 0.0, 0.0, 1.0)  # opaque red on the left, transparent black right
    small = resize_image(rgba, (2, 1))
    np.testing.assert_allclose(small[0, 0], [1.0, 0.0, 0.0, 0.5], atol=1e-6)  # red stays red, half alpha
    u8 = resize_image((rgba * 255).astype(np.uint8), (8, 8))
    assert u8.dtype == np.uint8 and (u8[..., 0][u8[..., 3] > 0] == 255).all()

"""Whole clips rendered and written a chunk at a time (gendef.video.chunks, streamed exports): the same
pictures as the whole-clip calls, in memory that does not grow with the clip."""
import tracemalloc

import cv2
import numpy as np
import pytest

from gendef import CanonicalVideo, SegmentedVideo, viz
from gendef.imageutil import to_uint8
from gendef.video import chunks
from gendef.video.grid import identity_grid
from gendef.video.io import write_video, write_video_and_gif
from gendef.video.reader import iter_clip

H, W, T = 36, 48, 23


def moving(t_count=T, hw=(H, W), seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.random(((hw[0] + 20) // 6, (hw[1] + 30) // 6, 3)).astype(np.float32)
    canon = np.clip(cv2.resize(coarse, (hw[1] + 30, hw[0] + 20), interpolation=cv2.INTER_CUBIC), 0, 1)
    grid = np.stack([identity_grid(*hw)[0] + np.float32([0.7 * t, 0.3 * t]) for t in range(t_count)])
    return CanonicalVideo(canon, grid, fps=10.0)


@pytest.fixture(scope="module")
def chain():
    a, b = moving(14, seed=1), moving(12, seed=2)
    return SegmentedVideo([(0, a), (11, b)], fps=10.0)  # frames 11..13 cross-faded


def rgba(video):
    layer = np.zeros(video.canvas_size + (4,), np.float32)
    layer[5:15, 8:30] = (1.0, 0.2, 0.0, 0.8)
    return layer


@pytest.mark.parametrize("chunk", [1, 5, 32])
def test_chunked_uint8_is_the_whole_render_converted(chain, chunk):
    one = moving()
    for video, edit in ((one, None), (one, rgba(one)), (chain, None), (chain, [rgba(s) for s in chain.segments])):
        want = to_uint8(video.render(edit) if edit is not None else video.frames())
        got = chunks.render_uint8(video, edit, chunk=chunk)
        assert got.dtype == np.uint8 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_steps_see_each_chunk_at_its_clip_frames():
    video = moving()
    masks = np.zeros((T, H, W), bool)
    masks[:, 10:20, 5:25] = True
    masks[7] = False
    tint = viz.overlay_masks(video.frames(), masks, color=(0, 1, 0), alpha=0.5)
    tinted, cut = chunks.render_uint8_each(video, (
        lambda a, f: viz.overlay_masks(f, masks[a : a + len(f)], color=(0, 1, 0), alpha=0.5),
        lambda a, f: viz.cutout(f, masks[a : a + len(f)]),
    ), chunk=4)
    np.testing.assert_array_equal(tinted, to_uint8(tint))
    np.testing.assert_array_equal(cut, to_uint8(viz.cutout(video.frames(), masks)))


def test_tracks_drawn_a_chunk_at_a_time_keep_their_trails():
    video = moving()
    pos = np.stack([[[5 + 1.3 * t, 8 + 0.5 * t], [40 - t, 30 - 0.8 * t]] for t in range(T)]).astype(np.float32)
    vis = np.ones((T, 2), bool)
    vis[9:11, 1] = False
    whole = to_uint8(viz.draw_tracks(video.frames(), pos, vis))
    got = chunks.render_uint8(video, step=lambda a, f: viz.draw_tracks(f, pos, vis, first=a), chunk=3)
    np.testing.assert_array_equal(got, whole)
    with pytest.raises(ValueError, match="not all in the tracks"):
        viz.draw_tracks(video.frames()[:4], pos[:3], vis[:3], first=0)


def test_side_by_side_a_chunk_at_a_time():
    a, b = moving().frames(), moving(seed=5).frames()
    got = np.stack(list(chunks.map_uint8(viz.side_by_side, a, to_uint8(b), chunk=4)))
    np.testing.assert_array_equal(got, to_uint8(viz.side_by_side(a, b)))


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_canonical_videos_export_is_streamed(tmp_path):
    """to_video holds about one frame, not the clip: 96 frames of 320x240 are 22 MB as uint8."""
    video = moving(96, (240, 320))
    clip_bytes = 96 * 240 * 320 * 3
    peak = _peak(lambda: video.to_video(tmp_path / "v.mp4", audio=None))
    assert peak < clip_bytes / 8
    got = np.stack(list(iter_clip(tmp_path / "v.mp4")))
    assert got.shape == (96, 240, 320, 3)
    ref = video.frames_uint8().astype(int)
    err = [np.abs(got[50] - ref[t]).mean() for t in (49, 50, 51)]
    assert err[1] < 0.75 * min(err[0], err[2])  # the same frames in order, through H.264


def test_one_stream_gives_the_mp4_and_the_gif(tmp_path):
    video = moving()
    mp4, gif = write_video_and_gif(video.frames_uint8_iter(), tmp_path / "a.mp4", tmp_path / "a.gif", fps=10)
    write_video(video.frames_uint8(), tmp_path / "b.gif", fps=10)
    assert gif.read_bytes() == (tmp_path / "b.gif").read_bytes()
    assert len(list(iter_clip(mp4))) == T
    mp4, gif = write_video_and_gif(video.frames_uint8_iter(), tmp_path / "c.mp4", None, fps=10)
    assert gif is None and mp4.is_file()


def test_full_size_frames_become_float_at_the_working_size_one_at_a_time():
    """decompose() never holds full-size frames as float: the same working frames as before, in a
    fraction of the float copy (16 uint8 frames of 480x640 are 59 MB as float32)."""
    from gendef.decomposition.inputs import as_float_frames, resize_frames, working_frames

    rng = np.random.default_rng(4)
    frames = (rng.random((16, 480, 640, 3)) * 255).astype(np.uint8)
    got = {}
    peak = _peak(lambda: got.setdefault("w", working_frames(frames, (48, 64))))
    np.testing.assert_array_equal(got["w"], resize_frames(as_float_frames(frames), (48, 64)))
    assert peak < 3 * frames[0].size * 4  # about two frames as float, whatever the clip's length (16 here)
    floats = frames[:3, :40, :50].astype(np.float32) / 255
    np.testing.assert_array_equal(working_frames(floats, (40, 50)), as_float_frames(floats))

"""CanonicalVideo.padding: outside the canonical image a video shows what its model's warp showed in training."""
import cv2
import numpy as np
import pytest
import torch

from gendef import CanonicalVideo, GenDeF, SegmentedVideo
from gendef.decomposition.refine import _slice
from gendef.errors import CanonicalVideoError
from gendef.imageutil import to_uint8
from gendef.video.fullsize import full_size_canonical, full_size_psnr, upscale
from gendef.video.grid import identity_grid, pixels_to_normalized
from gendef.video.npzformat import write_npz
from gendef.video.padding import PADDINGS

HC, WC, K, T = 10, 14, 3, 2  # canvas, shift in pixels, frames


def shifted(padding: str) -> CanonicalVideo:
    """Every frame samples canonical (x + K, y): the right K columns of the frame lie outside the canvas."""
    canon = np.random.default_rng(0).uniform(0.1, 0.9, (HC, WC, 3)).astype(np.float32)
    return CanonicalVideo(canon, identity_grid(HC, WC, T, offset=(K, 0)), padding=padding)


def band(padding: str, edge: np.ndarray, colour: bool = True) -> np.ndarray:
    """What the revealed band [..., K columns] shows: 0, 0.5 (colour only) or the edge column repeated."""
    if padding == "border":
        return np.repeat(edge[:, None], K, axis=1)
    fill = 0.5 if padding == "grey" and colour else 0.0
    return np.full(edge.shape[:1] + (K,) + edge.shape[1:], fill, np.float32)


@pytest.mark.parametrize("padding", PADDINGS)
def test_a_shift_reveals_black_grey_or_the_edge(padding):
    vid = shifted(padding)
    frames = vid.frames()
    assert frames.shape == (T, HC, WC, 3)
    np.testing.assert_allclose(frames[:, :, : WC - K], np.broadcast_to(vid.canonical[:, K:], (T, HC, WC - K, 3)), atol=1e-6)
    want = band(padding, vid.canonical[:, -1])
    np.testing.assert_allclose(frames[:, :, WC - K :], np.broadcast_to(want, (T, HC, K, 3)), atol=1e-6)
    assert vid.render_frame(1)[:, WC - K :].tolist() == frames[1, :, WC - K :].tolist()
    # the uint8 export resamples in 8 bits: 0, 128 (= to_uint8(0.5)) or the edge's own bytes
    u8 = vid.frames_uint8()
    assert np.abs(u8[:, :, WC - K :].astype(int) - to_uint8(want).astype(int)).max() <= 1
    assert np.array_equal(vid.render(vid.canonical), frames)  # an RGB replacement is a colour image too


@pytest.mark.parametrize("padding", PADDINGS)
def test_masks_are_zero_outside_unless_border(padding):
    vid = shifted(padding)
    mask = np.zeros((HC, WC), np.float32)
    mask[:, -2:] = 1.0  # touches the right edge, so "border" carries it into the band
    soft = vid.render(mask)
    edge = mask[:, -1:]
    np.testing.assert_allclose(soft[:, :, WC - K :], np.broadcast_to(band(padding, edge, colour=False)[..., 0], (T, HC, K)))
    hard = vid.propagate_mask(mask)
    assert hard[:, :, WC - K :].all() == (padding == "border") and hard[:, :, WC - K :].any() == (padding == "border")
    two = np.stack([mask, 1 - mask], -1)  # any other canonical-space image: not a colour
    np.testing.assert_allclose(vid.warp(two)[:, :, WC - K :], np.broadcast_to(band(padding, two[:, -1], colour=False), (T, HC, K, 2)))
    rgb = np.full((HC, WC, 3), 0.2, np.float32)
    assert np.allclose(vid.warp(rgb, colour=False)[:, :, WC - K :], 0.2 if padding == "border" else 0.0)


@pytest.mark.parametrize("padding", PADDINGS)
def test_an_overlay_renders_as_the_same_edit_baked_in(padding):
    vid = shifted(padding)
    rgba = np.zeros((HC, WC, 4), np.float32)
    rgba[:, -3:] = (1.0, 0.0, 0.0, 0.8)  # a red stripe at the right edge
    over = vid.render(rgba)
    baked = vid.with_edit(rgba)
    assert baked.padding == padding
    np.testing.assert_allclose(over, baked.frames(), atol=1e-5)
    red = over[:, :, WC - K :, 0].mean()
    assert (red > 0.8) == (padding == "border")  # only "border" shows the edge's edit in the band


def test_padding_is_validated_in_one_line():
    vid = shifted("black")
    for bad in ("white", "Grey", "", None, 0):
        with pytest.raises(CanonicalVideoError, match="padding must be one of black, grey, border") as err:
            CanonicalVideo(vid.canonical, vid.grid, padding=bad)
        assert "\n" not in str(err.value)
    assert CanonicalVideo(vid.canonical, vid.grid).padding == "black"
    assert "padding" not in repr(vid) and "padding='grey'" in repr(shifted("grey"))


@pytest.mark.parametrize("padding", PADDINGS)
def test_every_derived_video_keeps_the_padding(padding):
    vid = shifted(padding)
    half = np.ascontiguousarray(vid.canonical[::2, ::2])
    derived = [vid.with_size((20, 28)), vid.with_canonical(vid.canonical[::-1]), vid.with_canonical_resolution(half),
               vid.with_edit(np.zeros((HC, WC, 4), np.float32)), _slice(vid, 0, 1), upscale(vid, (20, 28))]
    assert [d.padding for d in derived] == [padding] * len(derived)
    chain = SegmentedVideo([(0, vid), (1, shifted(padding))])
    parts = [chain.head(1).segments[-1], chain.with_size((20, 28)).segments[1], SegmentedVideo([(0, vid)]).as_canonical(),
             chain.with_edit(np.zeros((HC, WC, 4), np.float32)).segments[1]]
    assert [p.padding for p in parts] == [padding] * len(parts)


@pytest.mark.parametrize("padding", PADDINGS)
def test_save_load_keeps_the_padding(tmp_path, padding):
    vid = shifted(padding)
    back = CanonicalVideo.load(vid.save(tmp_path / "v.npz"))
    assert back.padding == padding and np.array_equal(back.frames(), vid.frames())
    chain = SegmentedVideo([(0, vid), (1, shifted("grey" if padding != "grey" else "border"))])
    again = SegmentedVideo.load(chain.save(tmp_path / "chain.npz"))
    assert [s.padding for s in again.segments] == [s.padding for s in chain.segments]
    assert np.array_equal(again.render(), chain.render())


def test_old_files_load_black_and_unknown_paddings_are_refused(tmp_path):
    vid = shifted("black")
    old = write_npz(tmp_path / "old.npz", dict(canonical=vid.canonical, grid=vid.grid, fps=np.array(16.0)))
    assert CanonicalVideo.load(old).padding == "black"
    old_chain = write_npz(tmp_path / "old_chain.npz", dict(seg0_canonical=vid.canonical, seg0_grid=vid.grid,
                                                           starts=np.array([0]), fps=np.array(16.0)))
    assert SegmentedVideo.load(old_chain).segments[0].padding == "black"
    bad = write_npz(tmp_path / "bad.npz", dict(canonical=vid.canonical, grid=vid.grid, fps=np.array(16.0), padding=np.array("white")))
    with pytest.raises(CanonicalVideoError, match=r"bad.npz: unknown padding 'white'") as err:
        CanonicalVideo.load(bad)
    assert "\n" not in str(err.value)
    big = write_npz(tmp_path / "big.npz", dict(canonical=vid.canonical, grid=vid.grid, fps=np.array(16.0),
                                               padding=np.array(["black"] * 3)))
    with pytest.raises(CanonicalVideoError, match="padding must be one string"):
        CanonicalVideo.load(big)
    chain = write_npz(tmp_path / "bad_chain.npz", dict(seg0_canonical=vid.canonical, seg0_grid=vid.grid, starts=np.array([0]),
                                                       fps=np.array(16.0), padding=np.array(["grey", "black"])))
    with pytest.raises(CanonicalVideoError, match="padding must be 1 strings"):
        SegmentedVideo.load(chain)


def test_a_border_chain_carries_an_edge_edit_into_the_band():
    """Segment 0 shifted by K, segment 1 not: the band of segment 0's frames shows its edge, edit included."""
    a, b = shifted("border"), CanonicalVideo(shifted("border").canonical, identity_grid(HC, WC, T), padding="border")
    chain = SegmentedVideo([(0, a), (1, b)])
    rgba = np.zeros((HC, WC, 4), np.float32)
    rgba[:, -1] = (0.0, 1.0, 0.0, 1.0)  # the edge column painted green on segment 0
    edits = chain.carry(rgba, segment=0)
    # shared frame 1: segment 0 shows the green edge on its last WC - K - 1 .. WC columns, so segment 1
    # receives green from column WC - K - 1 onward (what the frame showed there), not only at its edge
    got = edits[1]
    assert got[:, WC - K - 1 :, 3].min() > 0.99 and got[:, : WC - K - 1, 3].max() == 0.0
    black = SegmentedVideo([(0, shifted("black")), (1, CanonicalVideo(a.canonical, b.grid))])
    assert black.carry(rgba, segment=0)[1][:, WC - K :, 3].max() == 0.0


@pytest.mark.parametrize("padding", PADDINGS)
def test_full_size_canonical_keeps_the_padding_and_renders_its_own_frames(padding):
    vid = shifted(padding)
    frames = vid.frames()
    start = vid.with_canonical(vid.canonical * 0.6 + 0.2)  # a washed-out first guess
    out = full_size_canonical(start, frames, (HC, WC), iters=4, refine_steps=0)
    assert out.padding == padding
    before, after = full_size_psnr(start, frames), full_size_psnr(out, frames)
    assert after > before + 10.0, (before, after)


def _cv2_tolerance(image: np.ndarray) -> float:
    """cv2.remap's rounding against grid_sample: float-exact on OpenCV 5; OpenCV 4 rounds positions to 1/32 px."""
    if int(cv2.__version__.split(".")[0]) >= 5:
        return 2e-5
    steps = max(np.abs(np.diff(image, axis=0)).max(), np.abs(np.diff(image, axis=1)).max())
    return 2e-5 + 2 * steps / 64


@pytest.mark.parametrize("padding", PADDINGS)
def test_a_sampled_video_renders_what_its_model_warps(tiny_gendef_kwargs, padding):
    """A tiny random GenDeF whose field moves pixels past the edge: sample().frames() == the model's warp, per padding."""
    torch.manual_seed(0)
    g = GenDeF(**dict(tiny_gendef_kwargs, warp_padding=padding, deformation_init="xavier"))
    g.deformation.reset_output()
    with torch.no_grad():
        g.deformation.to_outs[-1].conv.weight.mul_(3.0)
    vid = g.sample(seed=3, num_frames=4)
    assert vid.padding == padding
    norm = torch.from_numpy(pixels_to_normalized(vid.grid, vid.canvas_size))[None]
    outside = (norm.abs() > 1).any(-1)
    assert outside.float().mean() > 0.2  # the field leaves the image: the padding shows
    canon = torch.from_numpy(vid.canonical).permute(2, 0, 1)[None] * 2 - 1
    with torch.no_grad():
        want = ((g.warp(canon, norm)[0] + 1) / 2).permute(0, 2, 3, 1).numpy()
    frames = vid.frames()
    err = np.abs(frames - want).max()
    assert err <= _cv2_tolerance(vid.canonical), err
    far = outside[0].numpy() & (norm[0].abs() > 1 + 2 / (g.resolution - 1)).any(-1).numpy()  # a pixel or more outside
    assert far.any()
    expect = {"black": 0.0, "grey": 0.5}.get(padding)
    if expect is not None:
        assert np.abs(frames[far] - expect).max() < 1e-6
    else:  # the edge's colours: the canonical sampled at the grid clamped onto the canvas, not a constant
        clamped = np.clip(vid.grid[0], 0, [vid.canvas_size[1] - 1, vid.canvas_size[0] - 1]).astype(np.float32)
        edge = cv2.remap(vid.canonical, clamped[..., 0], clamped[..., 1], cv2.INTER_LINEAR)
        assert np.abs(frames[0][far[0]] - edge[far[0]]).max() < 1e-5 and frames[far].std(0).min() > 0.05

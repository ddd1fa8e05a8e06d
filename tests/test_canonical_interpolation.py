"""CanonicalVideo.interpolation: a video samples its canonical image between pixels as its model's warp did."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from gendef import CanonicalVideo, GenDeF, SegmentedVideo
from gendef.decomposition.refine import _slice
from gendef.errors import CanonicalVideoError
from gendef.video.fullsize import full_size_canonical, full_size_psnr, upscale
from gendef.video.grid import identity_grid, pixels_to_normalized
from gendef.video.npzformat import write_npz
from gendef.video.padding import INTERPOLATIONS, PADDINGS, remap

HC, WC, T = 9, 17, 2  # W - 1 and H - 1 powers of two: [-1, 1] <-> pixels is exact in float32
HALF = (0.5, 0.5)


def sharp() -> np.ndarray:
    """A binary pattern in {0.1, 0.9}: every neighbour step is 0.8 or 0."""
    bits = np.random.default_rng(1).integers(0, 2, (HC, WC, 1))
    return np.repeat(bits, 3, -1).astype(np.float32) * 0.8 + 0.1


def video(interpolation: str, offset=HALF, padding: str = "black", canon=None) -> CanonicalVideo:
    canon = sharp() if canon is None else canon
    return CanonicalVideo(canon, identity_grid(HC, WC, T, offset=offset), padding=padding, interpolation=interpolation)


def model_frames(interpolation: str, canon01: np.ndarray, grid_px: np.ndarray, padding: str = "black") -> np.ndarray:
    """GenDeF.warp of ``canon01`` through a pixel grid [T, H, W, 2], as frames [T, H, W, 3] in [0, 1].

    The warp reads only the two settings, so it runs on them alone (no network built)."""
    g = SimpleNamespace(warp_interpolation=interpolation, warp_padding=padding)
    canon = torch.from_numpy(canon01).permute(2, 0, 1)[None] * 2 - 1
    norm = torch.from_numpy(pixels_to_normalized(grid_px, canon01.shape[:2]))[None]
    with torch.no_grad():
        return ((GenDeF.warp(g, canon, norm)[0] + 1) / 2).permute(0, 2, 3, 1).numpy()


def hf_energy(frames: np.ndarray) -> float:
    """Mean squared neighbour step (x and y) away from the frame's edge: what a blur removes."""
    f = frames[:, 2:-2, 2:-2]
    return float(np.mean(np.diff(f, axis=1) ** 2) + np.mean(np.diff(f, axis=2) ** 2))


def test_a_half_pixel_shift_keeps_more_detail_bicubic_in_the_model_and_the_video():
    grid = identity_grid(HC, WC, T, offset=HALF)
    src = hf_energy(sharp()[None])
    got = {}
    for interp in INTERPOLATIONS:
        vid, warped = video(interp).frames(), model_frames(interp, sharp(), grid)
        assert np.abs(vid - warped).max() < 5e-6  # the two paths agree (OpenCV 5.1: 1.5e-6 measured)
        got[interp] = hf_energy(vid)
    # measured on this pattern: source 0.59, bilinear 0.082 (a 2x2 box), bicubic 0.19
    assert got["bilinear"] < 0.2 * src and got["bicubic"] > 2.0 * got["bilinear"], (src, got)


@pytest.mark.parametrize("padding", PADDINGS)
def test_bicubic_frames_stay_in_range_where_the_kernel_overshoots(padding):
    canon = np.repeat(np.random.default_rng(2).integers(0, 2, (HC, WC, 1)), 3, -1).astype(np.float32)  # 0 and 1
    grid = identity_grid(HC, WC, T, offset=(0.3, -0.4))
    raw = cv2.remap(canon, grid[0, ..., 0], grid[0, ..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    assert raw.min() < -0.05 and raw.max() > 1.05  # unclipped cubic rings past the colour range
    vid = CanonicalVideo(canon, grid, padding=padding, interpolation="bicubic")
    frames = vid.frames()
    assert frames.min() == 0.0 and frames.max() == 1.0
    assert np.abs(frames - model_frames("bicubic", canon, grid, padding)).max() < 5e-6  # the model clamps alike
    rgba = np.zeros((HC, WC, 4), np.float32)
    rgba[2:6, 3:9] = (1.0, 0.0, 0.0, 1.0)
    over = vid.render(rgba)
    assert over.min() >= 0.0 and over.max() <= 1.0
    u8 = vid.frames_uint8().astype(int)
    assert np.abs(u8 - np.round(frames * 255)).max() <= 1


def test_masks_and_other_non_colour_images_stay_bilinear():
    """A mask rings on no video: it is sampled bilinearly whatever the interpolation."""
    mask = (np.random.default_rng(3).uniform(size=(HC, WC)) > 0.5).astype(np.float32)
    lin, cub = video("bilinear", (0.3, -0.4)), video("bicubic", (0.3, -0.4))
    soft = cub.render(mask)
    assert np.array_equal(soft, lin.render(mask)) and soft.min() >= 0.0 and soft.max() <= 1.0
    assert np.array_equal(cub.propagate_mask(mask), lin.propagate_mask(mask))
    coords = np.stack(np.meshgrid(np.arange(WC), np.arange(HC)), -1).astype(np.float32)  # a coordinate map
    assert np.array_equal(cub.warp(coords), lin.warp(coords))
    chain = [SegmentedVideo([(0, v), (1, v)]) for v in (lin, cub)]
    carried = [c.carry(mask, segment=0)[1] for c in chain]
    assert np.array_equal(carried[0], carried[1])
    assert not np.array_equal(cub.frames(), lin.frames())  # ... while the colours differ


@pytest.mark.parametrize("padding", PADDINGS)
def test_zero_displacement_reproduces_the_canonical_image_exactly(padding):
    canon = (np.random.default_rng(4).integers(0, 65, (HC, WC, 3)) / 64).astype(np.float32)
    vid = video("bicubic", (0.0, 0.0), padding, canon)
    assert np.array_equal(vid.frames(), np.broadcast_to(canon, vid.frames().shape))
    assert np.array_equal(model_frames("bicubic", canon, vid.grid, padding), vid.frames())


@pytest.mark.parametrize("padding", PADDINGS)
def test_an_overlay_renders_as_the_same_edit_baked_in(padding):
    rgba = np.zeros((HC, WC, 4), np.float32)
    rgba[:, -3:] = (1.0, 0.0, 0.0, 0.8)  # a red stripe at the right edge
    shifted = video("bicubic", (3, 0), padding)  # whole pixels: equal
    assert np.abs(shifted.render(rgba) - shifted.with_edit(rgba).frames()).max() < 1e-5
    smooth = cv2.GaussianBlur(sharp(), (0, 0), 1.5)
    rgba[2:7, 4:12] = (0.0, 0.0, 1.0, 0.6)
    gaps = {}
    for interp in INTERPOLATIONS:  # half pixels: compositing after sampling, not before, as bilinear does
        vid = video(interp, HALF, padding, smooth)
        gaps[interp] = np.abs(vid.render(rgba) - vid.with_edit(rgba).frames()).max()
    assert gaps["bicubic"] <= 1.2 * gaps["bilinear"] + 1e-6, gaps


def test_interpolation_is_validated_in_one_line():
    vid = video("bilinear")
    for bad in ("nearest", "Bicubic", "", None, 3):
        with pytest.raises(CanonicalVideoError, match="interpolation must be one of bilinear, bicubic") as err:
            CanonicalVideo(vid.canonical, vid.grid, interpolation=bad)
        assert "\n" not in str(err.value)
    assert CanonicalVideo(vid.canonical, vid.grid).interpolation == "bilinear"
    assert "interpolation" not in repr(vid)
    assert repr(video("bicubic", padding="grey")).endswith("padding='grey', interpolation='bicubic')")


def test_every_derived_video_keeps_the_interpolation():
    vid = video("bicubic", padding="grey")
    half = np.ascontiguousarray(vid.canonical[::2, ::2])
    rgba = np.zeros((HC, WC, 4), np.float32)
    derived = [vid.with_size((18, 34)), vid.with_canonical(vid.canonical[::-1]), vid.with_canonical_resolution(half),
               vid.with_edit(rgba), _slice(vid, 0, 1), upscale(vid, (18, 34))]
    chain = SegmentedVideo([(0, vid), (1, video("bicubic", padding="grey"))])
    derived += [chain.head(1).segments[-1], chain.with_size((18, 34)).segments[1],
                SegmentedVideo([(0, vid)]).as_canonical(), chain.with_edit(rgba).segments[1]]
    assert [(d.interpolation, d.padding) for d in derived] == [("bicubic", "grey")] * len(derived)


def test_the_studio_keeps_the_interpolation():
    pytest.importorskip("gradio")
    from app.export import _export_npz
    from app.sources import _limit_video
    from app.state import StudioState

    vid = video("bicubic", padding="border")
    with pytest.warns(UserWarning, match="keeps the first 1"):  # gr.Warning outside an event
        cut = _limit_video(vid, 1)
    assert cut.num_frames == 1
    for out in (_export_npz(StudioState(video=vid, source="test"), False), cut):
        assert (out.interpolation, out.padding) == ("bicubic", "border")


def test_save_load_keeps_the_interpolation_and_bilinear_files_are_unchanged(tmp_path):
    cub, lin = video("bicubic", padding="border"), video("bilinear", padding="border")
    back = CanonicalVideo.load(cub.save(tmp_path / "v.npz"))
    assert (back.interpolation, back.padding) == ("bicubic", "border") and np.array_equal(back.frames(), cub.frames())
    with np.load(lin.save(tmp_path / "lin.npz")) as data:  # the members a file had before interpolation existed
        assert sorted(data.files) == ["canonical", "fps", "grid", "metadata", "padding", "size"]
    chain = SegmentedVideo([(0, lin), (1, cub)])
    again = SegmentedVideo.load(chain.save(tmp_path / "chain.npz"))
    assert [s.interpolation for s in again.segments] == ["bilinear", "bicubic"]
    assert np.array_equal(again.render(), chain.render())
    with np.load(SegmentedVideo([(0, lin), (1, lin)]).save(tmp_path / "lin_chain.npz")) as data:
        assert "interpolation" not in data.files


def test_old_files_load_bilinear_and_unknown_interpolations_are_refused(tmp_path):
    vid = video("bilinear")
    base = dict(canonical=vid.canonical, grid=vid.grid, fps=np.array(16.0))
    assert CanonicalVideo.load(write_npz(tmp_path / "old.npz", base)).interpolation == "bilinear"
    seg = dict(seg0_canonical=vid.canonical, seg0_grid=vid.grid, starts=np.array([0]), fps=np.array(16.0))
    assert SegmentedVideo.load(write_npz(tmp_path / "old_chain.npz", seg)).segments[0].interpolation == "bilinear"
    bad = write_npz(tmp_path / "bad.npz", dict(base, interpolation=np.array("nearest")))
    with pytest.raises(CanonicalVideoError, match=r"bad.npz: unknown interpolation 'nearest'") as err:
        CanonicalVideo.load(bad)
    assert "\n" not in str(err.value)
    with pytest.raises(CanonicalVideoError, match="interpolation must be one string"):
        CanonicalVideo.load(write_npz(tmp_path / "big.npz", dict(base, interpolation=np.array(["bicubic"] * 2))))
    with pytest.raises(CanonicalVideoError, match="interpolation must be 1 strings"):
        SegmentedVideo.load(write_npz(tmp_path / "bad_chain.npz", dict(seg, interpolation=np.array(["bicubic", "bilinear"]))))
    with pytest.raises(CanonicalVideoError, match="unknown interpolation 'area'"):
        SegmentedVideo.load(write_npz(tmp_path / "bad_name.npz", dict(seg, interpolation=np.array(["area"]))))


def test_full_size_back_projection_renders_bicubic_frames():
    vid = video("bicubic", (0.25, 0.5), canon=cv2.GaussianBlur(sharp(), (0, 0), 1.0))
    frames = vid.frames()
    start = vid.with_canonical(vid.canonical * 0.6 + 0.2)
    out = full_size_canonical(start, frames, (HC, WC), iters=4, refine_steps=0)
    assert out.interpolation == "bicubic"
    before, after = full_size_psnr(start, frames), full_size_psnr(out, frames)
    assert after > before + 10.0, (before, after)


def test_remap_clips_float_colour_only():
    img = np.repeat(np.eye(4, dtype=np.float32)[..., None], 3, -1)  # 0/1 steps: cubic rings
    grid = identity_grid(4, 4, 1, offset=(0.5, 0.25))[0]
    colour = remap(img, grid, "border", colour_channels=3, interpolation="bicubic")
    other = remap(img, grid, "border", interpolation="bicubic")
    assert colour.min() == 0.0 and other.min() < -0.05 and np.array_equal(colour, np.clip(other, 0, 1))
    assert np.array_equal(remap(img, grid, "border"), remap(img, grid, "border", colour_channels=3))  # bilinear: as before


@pytest.mark.parametrize("padding", PADDINGS)
def test_a_sampled_bicubic_video_renders_what_its_model_warps(tiny_gendef_kwargs, padding):
    """A tiny random GenDeF with a strong field: sample().frames() == the model's own bicubic warp."""
    torch.manual_seed(0)
    g = GenDeF(**dict(tiny_gendef_kwargs, warp_padding=padding, warp_interpolation="bicubic", deformation_init="xavier"))
    g.deformation.reset_output()
    with torch.no_grad():
        g.deformation.to_outs[-1].conv.weight.mul_(3.0)
    vid = g.sample(seed=3, num_frames=4)
    assert (vid.interpolation, vid.padding) == ("bicubic", padding)
    norm = torch.from_numpy(pixels_to_normalized(vid.grid, vid.canvas_size))[None]
    assert (norm.abs() > 1).any(-1).float().mean() > 0.2  # the field leaves the image: the padding shows
    canon = torch.from_numpy(vid.canonical).permute(2, 0, 1)[None] * 2 - 1
    with torch.no_grad():
        want = ((g.warp(canon, norm)[0] + 1) / 2).permute(0, 2, 3, 1).numpy()
    frames = vid.frames()
    err = np.abs(frames - want).max()
    assert err <= _cv2_cubic_tolerance(vid.canonical), err
    lin = CanonicalVideo(vid.canonical, vid.grid, padding=padding).frames()
    assert np.abs(frames - lin).max() > 100 * err  # the interpolation is not a no-op here


def _cv2_cubic_tolerance(image: np.ndarray) -> float:
    """cv2.remap INTER_CUBIC against grid_sample bicubic: float-exact positions on OpenCV 5 (measured 2.2e-6
    in [0, 1] with OpenCV 5.1, torch 2.14.1); OpenCV 4 rounds positions to 1/32 px. The cubic interpolant
    changes by at most sum|w'| (3) x half the 4 taps' span (1.5 steps) x sum|w| (1.375) ~ 6.2 steps per
    pixel and axis, so a 1/64 px error on both axes moves it by 13 steps / 64 at most."""
    if int(cv2.__version__.split(".")[0]) >= 5:
        return 1e-5
    steps = max(np.abs(np.diff(image, axis=0)).max(), np.abs(np.diff(image, axis=1)).max())
    return 1e-5 + 13 * steps / 64


def test_replaced_changes_only_what_it_is_given_and_copies_the_metadata():
    vid = video("bicubic", padding="grey")
    vid.metadata["note"] = 1
    short = vid.replaced(grid=vid.grid[:1])
    assert (short.num_frames, short.padding, short.interpolation, short.size) == (1, "grey", "bicubic", vid.size)
    short.metadata["note"] = 2
    assert vid.metadata["note"] == 1
    with pytest.raises(CanonicalVideoError, match="interpolation must be one of"):
        vid.replaced(interpolation="nearest")

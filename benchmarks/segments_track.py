"""Tracking 100 points through a whole clip of 1800 frames held as a chain of segments (issue 28's target: <= 0.5 s).

python -m benchmarks.segments_track [--frames 1800] [--segment 64] [--overlap 4] [--size 256x144] [--points 100] [--repeat 3]

The clip is a slow sway with a smooth wobble at working size 256x144 (16:9); each segment is a crop of one
canvas, so a point's true path is known and the handed-over tracks are checked against it. Prints the
best process CPU time of ``--repeat`` runs (run with OMP_NUM_THREADS=1 on a shared machine: CPU time
does not count other users' work) and the single-CanonicalVideo time on the same frames for scale.
"""
import argparse
import platform
import time

import numpy as np

from gendef import CanonicalVideo, SegmentedVideo

def segment_grid(start: int, count: int, hw) -> np.ndarray:
    """Grid of clip frames [start, start + count) in canvas pixels: a slow hand-held sway + a wobble,
    so points stay in view for the whole clip and are handed over at every boundary."""
    h, w = hw
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.arange(start, start + count, dtype=np.float32)[:, None, None]
    gx = xs + 20.0 + 12.0 * np.sin(t / 90.0) + 2.0 * np.sin(ys / 23.0 + 0.05 * t)
    gy = ys + 20.0 + 8.0 * np.sin(t / 70.0) + 1.5 * np.cos(xs / 31.0 + 0.03 * t)
    return np.stack([gx, gy], -1).astype(np.float32)


def build(frames: int, seg_len: int, overlap: int, hw):
    """The chain and each segment's canvas offset (its crop's top-left corner in the whole canvas)."""
    starts = list(range(0, frames - overlap, seg_len - overlap))
    pairs, offsets = [], []
    for s in starts:
        n = min(seg_len, frames - s)
        g = segment_grid(s, n, hw)
        lo = np.floor(g.reshape(-1, 2).min(0)) - 2
        hi = np.ceil(g.reshape(-1, 2).max(0)) + 3
        canvas = np.full((int(hi[1] - lo[1]), int(hi[0] - lo[0]), 3), 0.5, np.float32)
        pairs.append((s, CanonicalVideo(canvas, g - lo.astype(np.float32), fps=30.0)))
        offsets.append(lo)
        if s + n >= frames:
            break
    return SegmentedVideo(pairs, fps=30.0), offsets


def best_of(fn, repeat):
    """(best CPU seconds, best wall seconds, the result) of ``repeat`` runs."""
    cpu, wall, out = [], [], None
    for _ in range(repeat):
        t0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        cpu.append(time.process_time() - t0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=1800)
    ap.add_argument("--segment", type=int, default=64)
    ap.add_argument("--overlap", type=int, default=4)
    ap.add_argument("--size", default="256x144")
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    clip, offsets = build(a.frames, a.segment, a.overlap, (h, w))
    rng = np.random.default_rng(0)
    pts = np.stack([rng.uniform(30, w - 30, a.points), rng.uniform(25, h - 25, a.points)], -1)  # frame-0 pixels
    canon0 = clip.frame_to_canonical(pts, frame=0)
    secs, wall, (pos, vis) = best_of(lambda: clip.track(canon0, segment=0), a.repeat)
    # truth: the canvas point seen at frame-0 pixel p moves with the pan; check frames where it is tracked
    whole = canon0 + offsets[0]
    t = np.arange(clip.num_frames)[:, None]
    err = []
    for f in range(0, clip.num_frames, 97):
        seg = clip.segment_of(f)
        ok = vis[f]
        if ok.any():
            c, _ = clip.segments[seg].track(whole[ok] - offsets[seg])
            err.append(np.abs(c[f - clip.starts[seg]] - pos[f, ok]).max())
    single = CanonicalVideo(np.full((8, 8, 3), 0.5, np.float32), segment_grid(0, min(a.frames, 600), (h, w)), fps=30.0)
    single_secs, single_wall, _ = best_of(lambda: single.track(whole), a.repeat)
    print(f"machine: {platform.machine()}, {a.frames} frames at {w}x{h}, {clip.num_segments} segments of {a.segment} "
          f"(overlap {a.overlap}), {a.points} points")
    print(f"| SegmentedVideo.track, {a.points} points x {clip.num_frames} frames | {secs:.3f} s CPU | {wall:.3f} s wall |")
    print(f"| CanonicalVideo.track, {a.points} points x {single.num_frames} frames (one segment) | {single_secs:.3f} s CPU "
          f"| {single_wall:.3f} s wall |")
    print(f"visible point-frames: {vis.mean():.1%}; handed-over tracks vs each segment's own: max {max(err):.2e} px; "
          f"mean visible frames a point {vis.sum(0).mean():.0f} of {t.shape[0]}")


if __name__ == "__main__":
    main()

"""Propagation and tracking speed: CanonicalVideo vs the practical limit (a cv2.remap loop).

python benchmarks/propagate.py [--frames 128] [--size 256] [--points 100] [--repeat 5]
Prints a markdown table for the README.
"""
import argparse
import platform
import time


import cv2
import numpy as np

from gendef import CanonicalVideo


def smooth_grid(t_count, size, rng):
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    grids = []
    for t in range(t_count):
        gx = xs + 0.3 * t + 3.0 * np.sin(ys / 23.0 + 0.05 * t)
        gy = ys + 0.1 * t + 2.0 * np.cos(xs / 31.0 + 0.03 * t)
        grids.append(np.stack([gx, gy], -1))
    return np.stack(grids)


def best_of(fn, repeat):
    """Best process CPU time of ``repeat`` runs (run with OMP_NUM_THREADS=1: on a shared
    machine wall time counts other users' work, CPU time does not)."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=128)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    canonical = rng.random((a.size, a.size, 3), dtype=np.float32)
    edit = rng.random((a.size, a.size, 3), dtype=np.float32)
    vid = CanonicalVideo(canonical, smooth_grid(a.frames, a.size, rng), fps=16)
    grid = vid.grid

    def remap_loop():
        out = np.empty((a.frames, a.size, a.size, 3), np.float32)
        for t in range(a.frames):
            out[t] = cv2.remap(edit, grid[t, ..., 0], grid[t, ..., 1], cv2.INTER_LINEAR)
        return out

    ours = best_of(lambda: vid.render(edit), a.repeat)
    base = best_of(remap_loop, a.repeat)
    pts = rng.uniform(20, a.size - 20, size=(a.points, 2))
    vid.track(pts)  # warm-up
    track = best_of(lambda: vid.track(pts), a.repeat)
    print(f"machine: {platform.processor() or platform.machine()}, {cv2.getNumberOfCPUs()} cores, numpy {np.__version__}, opencv {cv2.__version__}")
    print()
    print("| task | time | target |")
    print("|---|---|---|")
    print(f"| render RGB edit, {a.frames} frames at {a.size}² (CanonicalVideo.render) | {ours * 1e3:.1f} ms | ≤ 1.2× cv2 loop |")
    print(f"| same with a per-frame cv2.remap loop | {base * 1e3:.1f} ms | (reference) |")
    print(f"| ratio | {ours / base:.2f}× | ≤ 1.2× |")
    print(f"| track {a.points} points through {a.frames} frames (CanonicalVideo.track) | {track * 1e3:.1f} ms | < 50 ms |")


if __name__ == "__main__":
    main()

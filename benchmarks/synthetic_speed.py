"""Speed of the procedural sky generator at 128 px (issue 12: 2000 clips x 32 frames in < 5 min on 2 cores).

    python benchmarks/synthetic_speed.py [--clips 40] [--frames 32] [--resolution 128] [--wall-clips 100]

1. CPU time (``time.process_time``, one process, one thread) to render and PNG-encode ``--clips``
   clips, extrapolated to 2000 clips on 2 workers (the work is embarrassingly parallel).
2. Wall time of ``write_dataset(..., workers=2)`` for ``--wall-clips`` clips, written to a temp folder
   (disturbed by whatever else runs on the machine; reported as measured).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from gendef.data.synthetic import _encoded_clip, write_dataset  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--wall-clips", type=int, default=100)
    ap.add_argument("--target-clips", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    _encoded_clip((0, 0, 2, a.resolution))  # warm-up (imports, caches)
    t0 = time.process_time()
    nbytes = sum(len(b) for i in range(a.clips) for b in _encoded_clip((0, i, a.frames, a.resolution)))
    per_clip = (time.process_time() - t0) / a.clips
    est = per_clip * a.target_clips / a.workers
    print(f"render+encode: {per_clip:.3f} s CPU per clip of {a.frames}x{a.resolution}px "
          f"({nbytes / a.clips / 1e6:.2f} MB PNG per clip)")
    print(f"extrapolated: {a.target_clips} clips on {a.workers} workers = {est:.0f} s ({est / 60:.1f} min) of wall time "
          f"if each worker has a core to itself")
    if a.wall_clips:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_dataset(os.path.join(tmp, "sky"), a.wall_clips, a.frames, a.resolution, progress=False, workers=a.workers)
            wall = time.perf_counter() - t0
        print(f"measured: write_dataset({a.wall_clips} clips, workers={a.workers}) took {wall:.1f} s wall "
              f"-> {wall * a.target_clips / a.wall_clips / 60:.1f} min for {a.target_clips} (shared machine: load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()

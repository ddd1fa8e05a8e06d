"""The studio's peak memory on a whole clip: the "Upload clip" decompose (with the views it renders),
then the export of the whole clip, in a child process whose peak RSS the parent reads.

    python -m benchmarks.studio_memory CLIP [--frames N] [--size 256] [--steps 5] [--no-export]

Runs ``app.sources.decompose_upload`` (the function behind the Decompose button: the whole clip, or
``--frames`` N from frame 0, output size "source (≤ 1080p)") and then ``app.export.export_all`` in-process in a child, no browser;
the parent prints the child's peak RSS after each stage (ru_maxrss is a high-water mark: an export
that needs less than the decompose leaves it unchanged). The fit's memory does not depend on the
steps, so a few are enough for memory.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def child(path: str, frames: int, size: int, steps: int, export: bool) -> None:
    from app import export as export_tab
    from app import sources
    from app.state import StudioState

    def rss() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    report = {"before_gib": rss()}
    t0, c0 = time.perf_counter(), time.process_time()
    out = sources.decompose_upload(StudioState(), path, frames, size, 0, steps, sources.OUTPUT_SOURCE, progress=lambda *a, **k: None)
    state = out["state"]
    v = state.video
    report.update(decompose_gib=rss(), decompose_wall_s=round(time.perf_counter() - t0, 1), decompose_cpu_s=round(time.process_time() - c0, 1),
                  frames=v.num_frames, segments=getattr(v, "num_segments", 1), size=list(v.frame_size), preview=list(state.preview.frame_size))
    if export:
        t0 = time.perf_counter()
        files = export_tab.export_all(state, "original")["export_files"]
        report.update(export_gib=rss(), export_wall_s=round(time.perf_counter() - t0, 1), export_files=[f.rsplit("/", 1)[-1] for f in files])
    print(json.dumps(report), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip")
    ap.add_argument("--frames", type=int, default=0, help="0: the whole clip (the default)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.clip, args.frames, args.size, args.steps, not args.no_export)
        return 0
    cmd = [sys.executable, "-m", "benchmarks.studio_memory", args.clip, "--frames", str(args.frames), "--size", str(args.size), "--steps", str(args.steps), "--child"]
    cmd += ["--no-export"] if args.no_export else []
    done = subprocess.run(cmd, capture_output=True, text=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return done.returncode
    print(done.stdout.strip().splitlines()[-1])
    print(f"child peak RSS {peak:.2f} GiB (load average {' '.join(open('/proc/loadavg').read().split()[:3])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

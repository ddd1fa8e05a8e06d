"""The studio's peak memory on a whole clip: the "Upload clip" decompose (with the views it renders),
then the export of the whole clip, in a child process whose peak RSS the parent reads.

    python -m benchmarks.studio_memory CLIP [--frames N] [--size 256] [--steps 5] [--no-export]
    python -m benchmarks.studio_memory EXPORTED.npz --open [--lift-upload-cap] [--edit] [--no-export]

Runs ``app.sources.decompose_upload`` (the function behind the Decompose button: the whole clip, or
``--frames`` N from frame 0, output size "source (≤ 1080p)") and then ``app.export.export_all`` in-process in a child, no browser;
with ``--open``, ``app.sources.open_npz`` (the Open button: the .npz and its views) instead of the
decompose (``--lift-upload-cap``: the studio started as ``python app.py --max-upload-mb N`` with N the
file's size in MB rounded up, as a person reopening a whole clip's export over the default 50 MB cap
would start it); with ``--edit``, Stylize's first look applied (the result views) and the result exported.
The child prints its peak RSS after each stage (ru_maxrss is a high-water mark: an export
that needs less than the decompose leaves it unchanged), the parent the child's peak. The fit's
memory does not depend on the steps, so a few are enough for memory.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time


def rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def child(path: str, frames: int, size: int, steps: int, export: bool, reopen: bool, edit: bool, lift_cap: bool) -> None:
    from app import export as export_tab
    from app import sources
    from app.services import Services
    from app.state import StudioState
    from app.studio import Studio
    from app.ui import TABS
    from app.uploads import Uploads

    report, stage = {"before_gib": rss()}, "open" if reopen else "decompose"
    t0, c0 = time.perf_counter(), time.process_time()
    quiet = lambda *a, **k: None  # noqa: E731
    if reopen:
        flag = str(max(sources.MAX_UPLOAD_MB, math.ceil(os.path.getsize(path) / 2**20))) if lift_cap else None
        studio = Studio(Services(uploads=Uploads.at_launch(flag, {})), TABS)  # what app.py builds for --max-upload-mb N
        out = sources.open_npz(StudioState(), path, progress=quiet, studio=studio)
    else:
        out = sources.decompose_upload(StudioState(), path, frames, size, 0, steps, sources.OUTPUT_SOURCE, progress=quiet)
    state = out["state"]
    v = state.video
    report.update({f"{stage}_gib": rss(), f"{stage}_wall_s": round(time.perf_counter() - t0, 1), f"{stage}_cpu_s": round(time.process_time() - c0, 1)},
                  frames=v.num_frames, segments=getattr(v, "num_segments", 1), size=list(v.frame_size), preview=list(state.preview.frame_size))
    if edit:
        from app import stylize

        t0 = time.perf_counter()
        stylize.apply_look(state, stylize.look_names()[0], 1.0, progress=quiet)
        report.update(edit_gib=rss(), edit_wall_s=round(time.perf_counter() - t0, 1), edit=stylize.look_names()[0])
    if export:
        t0 = time.perf_counter()
        files = export_tab.export_all(state, "result" if edit else "original")["export_files"]
        report.update(export_gib=rss(), export_wall_s=round(time.perf_counter() - t0, 1), export_files=files)
    print(json.dumps(report), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip")
    ap.add_argument("--frames", type=int, default=0, help="0: the whole clip (the default)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--open", action="store_true", help="CLIP is a .npz the studio exported: open it instead of decomposing")
    ap.add_argument("--lift-upload-cap", action="store_true", help="with --open: start the studio with --max-upload-mb N, N the file's size in MB rounded up")
    ap.add_argument("--edit", action="store_true", help="apply the first look (Stylize) before the export, and export the result")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.clip, args.frames, args.size, args.steps, not args.no_export, args.open, args.edit, args.lift_upload_cap)
        return 0
    cmd = [sys.executable, "-m", "benchmarks.studio_memory", args.clip, "--frames", str(args.frames), "--size", str(args.size), "--steps", str(args.steps), "--child"]
    cmd += (["--no-export"] if args.no_export else []) + (["--open"] if args.open else []) + (["--edit"] if args.edit else []) + (["--lift-upload-cap"] if args.lift_upload_cap else [])
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

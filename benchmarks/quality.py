"""Offline quality of sky models against their procedural data (issue 12, part 3): no downloaded network.

    python benchmarks/quality.py --old checkpoints/default [--new runs/sky128/export] \
        [--num 2048] [--motion-videos 64] [--motion-frames 64] [--out benchmarks/results/quality_sky.md]

Rows: the data rendered at 128 and at 32 px (SWD between two disjoint sets of reals: the noise floor;
motion of 32-px renders is what the 32-px model could learn), the old model, the new model. Columns:
- SWD (ProGAN's sliced Wasserstein distance on Laplacian pyramids, x1e3, mean over levels) between
  ``--num`` real and ``--num`` generated frames at the model's own size, and at 32 px for every row
  (generated frames area-downsampled; reals rendered at 32 px, what the 32-px model was trained on).
  Reals: frame 0 of procedural clips (every frame has the same distribution: clip starts are random);
  fakes: one frame per video at a random time in [0, motion_frames).
- Motion (``gendef.metrics.motion_stats``): Farnebäck flow on every clip resized to 128 px, so all rows use
  the same estimator and unit: mean speed and jerk in px/frame at 128 px, and the drift/sway ratio
  (net displacement / path length over ``--motion-frames`` frames; 1 = steady drift, 0 = sway).
Prints a markdown table; ``--out`` also writes it (and a .json of the numbers next to it).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from gendef.data.synthetic import clip_seed, render_clip  # noqa: E402
from gendef.video.io import atomic_output  # noqa: E402
from gendef.metrics.motion_stats import clip_motion, flow_stats  # noqa: E402
from gendef.metrics.swd import swd  # noqa: E402

SEED = 0  # the training datasets' seed: reals are the training clips


def _nchw(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
    if frames.shape[1] == size:
        return frames
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])


def real_frames(num: int, size: int, first: int = 0) -> np.ndarray:
    """uint8 [N, size, size, 3]: frame 0 of data clips first..first+num-1."""
    return np.stack([render_clip(clip_seed(SEED, i), 1, size)[0] for i in range(first, first + num)])


def real_clips(num: int, frames: int, size: int):
    for i in range(num):
        yield render_clip(clip_seed(SEED, i), frames, size)


@torch.no_grad()
def model_videos(model, num: int, frames: int, seed: int, batch: int = 8, chunk: int = 16, grid_stats: list = None):
    """uint8 [T, R, R, 3] per generated video, frames 0..frames-1. When ``grid_stats`` is a list, the
    motion statistics of each video's exact sampling grid (canonical px, scaled to 128 px) go into it."""
    gen = torch.Generator().manual_seed(seed)
    for s in range(0, num, batch):
        b = min(batch, num - s)
        z_c, z_d, noise = model.make_latents(b, frames, generator=gen)
        canon = model.canonical(z_c, 1.0, "const")
        outs = [model.generate(z_c, z_d, noise, torch.arange(t0, min(t0 + chunk, frames)).float(), noise_mode="const",
                               canonical=canon) for t0 in range(0, frames, chunk)]
        if grid_stats is not None:
            grid = torch.cat([o["grid_px"] for o in outs], 1).double().numpy() * (128 / model.resolution)
            grid_stats += [flow_stats(np.diff(g, axis=0)) for g in grid]
        x = ((torch.cat([o["frames"] for o in outs], 1).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        yield from x.permute(0, 1, 3, 4, 2).numpy()


@torch.no_grad()
def model_frames(model, num: int, time_range: int, seed: int, batch: int = 64) -> np.ndarray:
    """uint8 [N, R, R, 3]: one frame per fresh video at a random time in [0, time_range)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for s in range(0, num, batch):
        b = min(batch, num - s)
        z_c, z_d, noise = model.make_latents(b, time_range, generator=gen)
        times = torch.randint(0, time_range, (b, 1), generator=gen).float()
        x = model.generate(z_c, z_d, noise, times, noise_mode="const")["frames"][:, 0]
        out.append(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def score(name: str, fakes: np.ndarray, clips, reals: dict, a, grid_stats: list = None) -> dict:
    """One table row: SWD at the frames' own size and at 32 px, and motion statistics
    (plus, for a model, the same statistics of its exact sampling grids, filled while ``clips`` runs)."""
    res = fakes.shape[1]
    t0 = time.process_time()
    row = {"name": name, "resolution": res}
    if res not in reals:
        reals[res] = _nchw(real_frames(a.num, res))
    row["swd_own"] = swd(reals[res], _nchw(fakes), seed=a.seed)["avg"]
    row["swd_32"] = swd(reals[32], _nchw(_resize(fakes, 32)), seed=a.seed)["avg"] if res != 32 else row["swd_own"]
    row.update(clip_motion(clips, size=128))
    if grid_stats:
        row.update({f"grid_{k}": float(np.mean([g[k] for g in grid_stats])) for k in grid_stats[0]})
    print(f"{name}: {json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})} "
          f"({time.process_time() - t0:.0f} s CPU)", flush=True)
    return row


def table(rows, a) -> str:
    lines = [
        f"| | frame size | SWD x1e3 at own size | SWD x1e3 at 32 px | speed (px/frame @128) | jerk (px/frame² @128) | drift/sway ({a.motion_frames} frames) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['name']} | {r['resolution']} | {r['swd_own']:.2f} | {r['swd_32']:.2f} | {r['speed']:.3f} | "
                     f"{r['jerk']:.3f} | {r['drift']:.3f} |")
    foot = (f"\nSWD: {a.num} real vs {a.num} generated frames (data rows: two disjoint real sets, the noise floor). "
            f"Motion: {a.motion_videos} videos of {a.motion_frames} frames, Farnebäck flow at 128 px.")
    for r in rows:
        if "grid_speed" in r:
            foot += (f"\n{r['name']}, from its exact sampling grids instead of estimated flow: speed {r['grid_speed']:.3f}, "
                     f"jerk {r['grid_jerk']:.3f}, drift/sway {r['grid_drift']:.3f}.")
    return "\n".join(lines) + "\n" + foot + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", default="checkpoints/default", help="the old (32 px) model folder")
    ap.add_argument("--new", default=None, help="the new model folder (e.g. the sky128 EMA export)")
    ap.add_argument("--num", type=int, default=2048, help="frames per side for SWD (2048)")
    ap.add_argument("--motion-videos", type=int, default=64)
    ap.add_argument("--motion-frames", type=int, default=64)
    ap.add_argument("--data-resolution", type=int, default=128, help="frame size of the data row")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", default="data,old,new", help="which rows to compute (comma list of data, old, new)")
    ap.add_argument("--out", default=None, help="also write the markdown table here (+ .json)")
    a = ap.parse_args(argv)
    a.rows = sorted({r.strip() for r in a.rows.split(",") if r.strip()})
    if not a.rows or set(a.rows) - {"data", "old", "new"}:
        ap.error("--rows: a comma list of data, old, new")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from gendef import GenDeF

    reals = {32: _nchw(real_frames(a.num, 32))}
    rows = []
    for res in sorted({a.data_resolution, 32}, reverse=True) if "data" in a.rows else []:  # the data as each model sees it
        other = real_frames(a.num, res, first=a.num)  # a disjoint set of reals: the metric's noise floor
        rows.append(score(f"data ({res} px)", other, real_clips(a.motion_videos, a.motion_frames, res), reals, a))
    for name, path in (("old", a.old), ("new", a.new)):
        if not path or name not in a.rows:
            continue
        model = GenDeF.from_pretrained(path).eval()
        fakes = model_frames(model, a.num, a.motion_frames, a.seed)
        grid = []
        videos = model_videos(model, a.motion_videos, a.motion_frames, a.seed + 1, grid_stats=grid)
        rows.append(score(f"{name} model ({Path(path).name})", fakes, videos, reals, a, grid))
    md = table(rows, a)
    print(md)
    if a.out:
        with atomic_output(Path(a.out)) as tmp:
            tmp.write_text(md)
        with atomic_output(Path(a.out).with_suffix(".json")) as tmp:
            tmp.write_text(json.dumps({"args": vars(a), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

"""Stage-2 guards, controlled: one short stage 1, then one stage 2 per guard, same seeds, same budget.

Reproduces issue 21's collapse on CPU (train/README 11): a stage 2 started from an unconverged
stage 1 turns the deformation field into a large, rough, static scramble. Every variant starts from
the same stage-1 export, with the same seed, data order and step budget; only the guard keys differ.

    python -m gendef.data.synthetic /tmp/sky32 --videos 300 --frames 32 --resolution 32
    OMP_NUM_THREADS=1 python train/pretrain.py --config train/configs/sky32.yaml data=/tmp/sky32 \\
        output_dir=/tmp/s1 max_steps=150 num_workers=0 sample_every=0 progress=false
    OMP_NUM_THREADS=1 python benchmarks/stage2_guards.py --data /tmp/sky32 --init /tmp/s1 --out /tmp/guards \\
        --steps 300 --variants paper,smooth10

For each variant it prints one JSON line: the CPU seconds of the run (time.process_time), the field
statistics of the exported G_ema (gendef.metrics.field_health, mean over seeds 0-15, 16 frames),
and SWD x 1e3 of 256 generated frames against 256 data frames. ``--series`` prints the monitor's
field statistics over steps from a finished variant's TensorBoard log.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

VARIANTS = {
    "paper": [],
    "lr_d0.1": ["lr_deformation_mult=0.1"],
    "smooth3": ["lambda_field_smooth=3"],
    "smooth10": ["lambda_field_smooth=10"],
    "smooth30": ["lambda_field_smooth=30"],
    "smooth10_lr_d0.1": ["lambda_field_smooth=10", "lr_deformation_mult=0.1"],
}
SERIES = ("field/mean_pct", "field/hf_px", "field/speed_px", "field/coverage")


def data_frames(folder: Path, n: int = 256, seed: int = 0):
    """n random data frames [n, H, W, 3] uint8 and the data's mean Farneback speed (px/frame) on 32 clips."""
    from gendef.metrics.motion_stats import estimate_flows
    from gendef.video.reader import read_video

    rng = np.random.default_rng(seed)
    dirs = sorted(p for p in folder.iterdir() if p.is_dir())
    frames, speeds = [], []
    for i, d in enumerate(rng.choice(len(dirs), n, replace=True)):
        clip, _ = read_video(dirs[d], num_frames=16)
        frames.append(clip[rng.integers(0, 16)])
        if i < 32:
            speeds.append(np.abs(estimate_flows(clip, size=clip.shape[1])).mean())
    return np.stack(frames), float(np.mean(speeds))


def evaluate(folder: Path, real: np.ndarray, n: int = 256) -> dict:
    from gendef import GenDeF
    from gendef.metrics.field_health import field_stats
    from gendef.metrics.swd import swd

    model = GenDeF.from_pretrained(folder)
    vids = model.sample_batch(list(range(n)), num_frames=16)
    rng = np.random.default_rng(1)
    fake = np.stack([v.frames()[rng.integers(0, 16)] for v in vids])
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float()  # noqa: E731
    stats = [field_stats(v.grid, v.canvas_size) for v in vids[:16]]
    out = {k: round(float(np.mean([s[k] for s in stats])), 5) for k in stats[0]}
    out["swd"] = round(float(swd(nchw(real.astype(np.float32) / 255.0), nchw(fake))["avg"]), 3)
    return out


def series(folder: Path) -> list:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(sorted((folder / "logs" / "finetune").glob("events.out.tfevents.*"))[-1]),
                           size_guidance={"scalars": 0})
    acc.Reload()
    cols = {k: {e.step: e.value for e in acc.Scalars(k)} for k in SERIES}
    return [dict(step=s, **{k: round(cols[k][s], 4) for k in SERIES}) for s in sorted(cols[SERIES[0]])]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--init", type=Path, help="the stage-1 export every variant starts from")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--variants", default="paper,smooth10", help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--config", default="train/configs/sky32.yaml")
    ap.add_argument("--series", action="store_true", help="only print the logged statistics over steps")
    a = ap.parse_args(argv)
    names = a.variants.split(",")
    if a.series:
        for name in names:
            print(json.dumps({"variant": name, "series": series(a.out / f"v_{name}")}))
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    from train import finetune

    real, data_speed = data_frames(a.data)
    print(json.dumps({"data_speed_px": round(data_speed, 4)}), flush=True)
    for name in names:
        out = a.out / f"v_{name}"
        t0 = time.process_time()
        rc = finetune.main(["--config", a.config, f"data={a.data}", f"output_dir={out}", f"init={a.init}",
                            f"max_steps={a.steps}", "log_every=25", "health_seeds=2", "health_frames=16",
                            "health_strip_every=0", "sample_every=0", f"ckpt_every={a.steps}", "progress=false",
                            "num_workers=0", *VARIANTS[name]])
        res = {"variant": name, "rc": rc, "cpu_s": round(time.process_time() - t0, 1), **evaluate(out, real)}
        print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

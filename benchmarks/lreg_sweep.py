"""Does L_reg keep the motion the data has? A lambda_reg sweep on procedural sky data (issue 11).

Short stage-2 runs (train/configs/sky32.yaml's trainer settings, ``reg_form`` flow_change by
default) from one shared start, one run per lambda, same seed and data order, so the runs differ
only in lambda. A fresh D in every case (no stage-1 D ships). Starts (``--start``):

- ``zero``: the paper-recipe GenDeF of sky32.yaml, G_c copied from checkpoints/default, G_d at its
  zero start (every frame = the canonical image): does motion appear, at which lambda?
- ``default``: the shipped checkpoints/default as it is (its G_d already moves like the data;
  ``reset_deformation=false``; it keeps its own, earlier, motion-code variant): does L_reg take
  away motion the model already has?

Then, on 16-frame samples of each exported model and on 16-frame clips of the data, the same optical-flow estimator (OpenCV Farneback on 4x upscaled frames) gives
mean speed |F_t| and mean jerk |F_{t+1} - F_t| (px/frame at 32 px); for the models the exact
flows of the sampling grid are reported too.

    OMP_NUM_THREADS=1 python benchmarks/lreg_sweep.py --out runs/lreg_sweep --start default --steps 100

Costs about (steps x 3 runs x ~1 s) CPU seconds at batch 8 on one core; every number printed
comes with the CPU time it took (time.process_time; stage 2 runs in this process).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "train" / "configs" / "sky32.yaml"
DEFAULT_CKPT = ROOT / "checkpoints" / "default"


def make_init(out: Path) -> Path:
    """A stage-1 folder: the paper-recipe GenDeF of sky32.yaml with G_c copied from checkpoints/default."""
    from safetensors.torch import load_file

    from gendef import GenDeF
    from train.config import load_config

    folder = out / "init"
    if (folder / "model.safetensors").is_file():
        return folder
    torch.manual_seed(0)
    g = GenDeF(**load_config(str(CONFIG), [], "finetune")["model"])
    canon = {k[len("canonical."):]: v for k, v in load_file(str(DEFAULT_CKPT / "model.safetensors")).items()
             if k.startswith("canonical.")}
    g.canonical.load_state_dict(canon, strict=True)
    g.save_pretrained(str(folder))
    return folder


def run_stage2(out: Path, data: Path, init: Path, lam: float, args) -> dict:
    from train import finetune

    keep = ["reset_deformation=false"] if args.start == "default" else []

    run_dir = out / f"lambda_{lam:g}"
    if not (run_dir / "model.safetensors").is_file():
        t0 = time.process_time()
        rc = finetune.main(["--config", str(CONFIG), f"data={data}", f"output_dir={run_dir}", f"init={init}",
                            f"lambda_reg={lam}", f"reg_form={args.reg_form}", f"max_steps={args.steps}",
                            f"batch_size={args.batch}", f"ckpt_every={args.steps}", "sample_every=0",
                            "log_every=50", "progress=false", "seed=0", "num_workers=0", *keep])
        assert rc == 0, f"stage 2 failed for lambda {lam}"
        (run_dir / "cpu_seconds.txt").write_text(f"{time.process_time() - t0:.1f}\n")
    return {"dir": run_dir, "cpu_s": float((run_dir / "cpu_seconds.txt").read_text())}


def farneback_stats(clips: np.ndarray, upscale: int = 4) -> tuple:
    """clips uint8/float [N, T, H, W, 3] -> (mean speed, mean jerk) in px/frame of the original size."""
    import cv2

    clips = clips.astype(np.float32) / 255.0 if clips.dtype == np.uint8 else clips.astype(np.float32)
    speeds, jerks = [], []
    for clip in clips:
        gray = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), None, fx=upscale, fy=upscale,
                           interpolation=cv2.INTER_LINEAR) for f in clip]
        gray = [np.clip(g * 255.0 + 0.5, 0, 255).astype(np.uint8) for g in gray]
        flows = np.stack([cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
                          for a, b in zip(gray[:-1], gray[1:])]) / upscale
        speeds.append(np.linalg.norm(flows, axis=-1).mean())
        jerks.append(np.linalg.norm(flows[1:] - flows[:-1], axis=-1).mean())
    return float(np.mean(speeds)), float(np.mean(jerks))


def grid_stats(grids: np.ndarray) -> tuple:
    """Exact flows of the sampling grids [N, T, H, W, 2] (canonical px/frame): mean speed, mean jerk,
    and the mean horizontal grid spacing (1 = no zoom; the official L_reg pulls it below 1)."""
    f = grids[:, 1:] - grids[:, :-1]
    spacing = float((grids[..., :, 1:, 0] - grids[..., :, :-1, 0]).mean())
    return (float(np.linalg.norm(f, axis=-1).mean()), float(np.linalg.norm(f[:, 1:] - f[:, :-1], axis=-1).mean()),
            spacing)


def model_stats(folder: Path, n: int, frames: int) -> dict:
    from gendef import GenDeF

    g = GenDeF.from_pretrained(str(folder))
    vids = g.sample_batch(list(range(1000, 1000 + n)), num_frames=frames)
    speed, jerk = farneback_stats(np.stack([v.render() for v in vids]))
    gspeed, gjerk, spacing = grid_stats(np.stack([v.grid for v in vids]))
    return {"speed": speed, "jerk": jerk, "grid_speed": gspeed, "grid_jerk": gjerk, "grid_spacing": spacing}


def data_stats(data: Path, n: int, frames: int) -> dict:
    from gendef.data import ClipDataset

    ds = ClipDataset(str(data), 32)
    clips = np.stack([ds.read_clip(i, 0, frames) for i in range(min(n, len(ds.videos)))])
    speed, jerk = farneback_stats(clips)
    return {"speed": speed, "jerk": jerk}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/lreg_sweep")
    p.add_argument("--lambdas", default="0,1,10", help="comma-separated; 1 is the paper's value")
    p.add_argument("--reg-form", default="flow_change", choices=("official", "flow_change", "legacy"))
    p.add_argument("--start", default="default", choices=("zero", "default"))
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--videos", type=int, default=200, help="procedural sky clips of 32 frames at 32 px")
    p.add_argument("--eval-videos", type=int, default=32)
    p.add_argument("--frames", type=int, default=16)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "sky32.zip"
    if not data.is_file():
        from gendef.data.synthetic import write_dataset

        write_dataset(data, videos=args.videos, frames=32, resolution=32, progress=False)
    init = make_init(out) if args.start == "zero" else DEFAULT_CKPT
    rows = {"data": {**data_stats(data, args.eval_videos, args.frames), "cpu_s": 0.0}}
    rows[f"start ({args.start}, step 0)"] = {**model_stats(init, args.eval_videos, args.frames), "cpu_s": 0.0}
    for lam in [float(x) for x in args.lambdas.split(",")]:
        run = run_stage2(out, data, init, lam, args)
        rows[f"lambda_reg={lam:g}"] = {**model_stats(run["dir"], args.eval_videos, args.frames), "cpu_s": run["cpu_s"]}
    print(f"\nL_reg sweep: start={args.start}, reg_form={args.reg_form}, {args.steps} steps x batch {args.batch} "
          f"({args.steps * args.batch * 3 / 1000:.1f} kimg of frames) per run, {args.eval_videos} x {args.frames}-frame samples")
    print("| run | speed (Farneback, px/frame) | jerk (Farneback) | grid speed | grid jerk | grid spacing | stage-2 CPU s |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        gs = f"{r['grid_speed']:.3f} | {r['grid_jerk']:.3f} | {r['grid_spacing']:.3f}" if "grid_speed" in r else "- | - | -"
        print(f"| {name} | {r['speed']:.3f} | {r['jerk']:.3f} | {gs} | {r['cpu_s']:.0f} |")
    (out / "results.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

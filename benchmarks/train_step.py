"""Seconds per training step for stage 1 (pretrain) and stage 2 (finetune).

    python benchmarks/train_step.py                      # tiny.yaml on CPU
    python benchmarks/train_step.py --device cuda        # same on the GPU
    python benchmarks/train_step.py --config train/configs/sky256.yaml --device cuda --steps 10 batch_size=8

After a throw-away run that pays for imports, each stage runs twice, with ``--warmup`` and ``--warmup + --steps`` steps, and the
difference in wall time is divided by ``--steps``: start-up, data scanning and the
final export cancel out. The dataset is a few random moving textures written to a
temporary folder (decoding cost is part of the step, as in real training).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

def write_data(root: Path, resolution: int, videos: int = 8, frames: int = 40) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for v in range(videos):
        d = root / f"v{v}"
        d.mkdir(parents=True)
        base = rng.integers(0, 255, (resolution + frames, resolution + frames, 3), dtype=np.uint8)
        for t in range(frames):
            Image.fromarray(base[t : t + resolution, t : t + resolution]).save(d / f"{t:04d}.png")
    return root


def timed(main, args) -> float:
    t = time.perf_counter()
    rc = main(args)
    if rc:
        raise SystemExit(rc)
    return time.perf_counter() - t


def reset_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak(device: str) -> str:
    """Peak allocated CUDA memory since the last reset (CPU: not measured here)."""
    if device != "cuda":
        return "n/a"
    import torch

    return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "train" / "configs" / "tiny.yaml"))
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("overrides", nargs="*", help="extra key=value config overrides (e.g. batch_size=8)")
    args = p.parse_args(argv)
    if args.device == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "1"
    else:
        import torch

        if not torch.cuda.is_available():
            print("error: --device cuda but no CUDA device is available", file=sys.stderr)
            return 2
    from train import finetune, pretrain
    from train.config import load_config

    cfg = load_config(args.config, args.overrides, "pretrain")
    res = int(cfg["model"].get("resolution", 64))
    fixed = ["progress=false", "sample_every=0", "eval_every=0", "ckpt_every=100000", "max_kimg=null", *args.overrides]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_data(tmp / "data", res)
        base = ["--config", args.config, f"data={data}"]
        s1 = tmp / "s1"
        timed(pretrain.main, base + [f"output_dir={tmp / 'warm'}", "max_steps=1", *fixed])  # imports, caches
        short = timed(pretrain.main, base + [f"output_dir={tmp / 's1_short'}", f"max_steps={args.warmup}", *fixed])
        reset_peak(args.device)
        long = timed(pretrain.main, base + [f"output_dir={s1}", f"max_steps={args.warmup + args.steps}", *fixed])
        rows.append(("1 (G_c + image D)", (long - short) / args.steps, peak(args.device)))
        short = timed(finetune.main, base + [f"output_dir={tmp / 's2_short'}", f"init={s1}", f"max_steps={args.warmup}", *fixed])
        reset_peak(args.device)
        long = timed(finetune.main, base + [f"output_dir={tmp / 's2'}", f"init={s1}", f"max_steps={args.warmup + args.steps}", *fixed])
        rows.append(("2 (G_c + G_d + video D + L_reg)", (long - short) / args.steps, peak(args.device)))
    dev = args.device
    if dev == "cuda":
        import torch

        dev = torch.cuda.get_device_name(0)
    else:
        dev = f"CPU ({os.environ.get('OMP_NUM_THREADS', 'all')} threads)"
    batch = cfg["batch_size"]
    import torch

    print("\n| stage | config | batch | device | torch | s/step | images/s | peak GPU memory |\n|---|---|---|---|---|---|---|---|")
    for name, sec, mem in rows:
        per = batch if name.startswith("1") else batch * int(cfg["clip_frames"])
        print(f"| {name} | {Path(args.config).name} {' '.join(args.overrides)} | {batch} | {dev} | {torch.__version__} | "
              f"{sec:.3f} | {per / sec:.1f} | {mem} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

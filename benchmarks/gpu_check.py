"""GPU check: both training stages with ADA forced on, in fp32 and bf16, on procedural sky data.

    python benchmarks/gpu_check.py                                  # sky256.yaml, batch 16, 300 steps per run
    python benchmarks/gpu_check.py --batch 8 --steps 200 num_workers=4   # extra key=value go to the trainer
    python benchmarks/gpu_check.py --quick --device cpu             # tiny config, a few steps (what CI runs)

Each (stage, precision) run trains from scratch (stage 2 starts from that precision's stage 1)
with ``augment=fixed aug_p=<--aug-p>``, so every D step augments and every ``r1_interval``-th
step runs R1's double backward through the augmentation. The table gives, after ``--warmup``
steps (wall time on CUDA, process CPU time on CPU), s/kimg as the trainer counts kimg (images in
stage 1, frames shown to D in stage 2, as the official code does: what ``max_kimg`` means) and
seconds per 1000 training items (images in stage 1, clips in stage 2), peak memory
(``torch.cuda.max_memory_allocated``, and in brackets ``max_memory_reserved``, which decides
whether a GPU runs out; CPU: n/a),
and whether the run finished with finite losses. Imports neither gradio nor imageio-ffmpeg.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRECISIONS = {"fp32": "no", "bf16": "bf16"}


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "train" / "configs" / "sky256.yaml"))
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--steps", type=int, default=300, help="steps per run (stage x precision)")
    p.add_argument("--warmup", type=int, default=20, help="steps left out of the timing")
    p.add_argument("--batch", type=int, default=16, help="global batch size")
    p.add_argument("--aug-p", type=float, default=0.5, help="fixed ADA probability (> 0)")
    p.add_argument("--videos", type=int, default=32, help="procedural sky clips to write")
    p.add_argument("--frames", type=int, default=16, help="frames per clip")
    p.add_argument("--stages", default="1,2", help="which stages to run (1, 2 or 1,2; stage 2 needs stage 1)")
    p.add_argument("--precisions", default="fp32,bf16", help="comma list of fp32, bf16")
    p.add_argument("--quick", action="store_true", help="tiny.yaml, 2 steps (1 warm-up), batch 4, R1 every step: a smoke test")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("overrides", nargs="*", help="extra key=value trainer overrides")
    args = p.parse_args(argv)
    if args.quick:
        args.config = str(ROOT / "train" / "configs" / "tiny.yaml")
        args.steps, args.warmup, args.batch, args.videos, args.frames = 2, 1, 4, 4, 8
        args.overrides = ["r1_interval=1", *args.overrides]  # R1 through the augmentation at every step
    if not 1 <= args.warmup < args.steps:
        p.error("need 1 <= --warmup < --steps")
    if args.aug_p <= 0:
        p.error("--aug-p must be > 0 (the point is to run R1 through the augmentation)")
    if any(o.split("=")[0] in ("batch_size", "max_steps", "augment", "aug_p", "mixed_precision") for o in args.overrides):
        p.error("set batch_size/max_steps/augment/aug_p/mixed_precision with --batch/--steps/--aug-p/--precisions")
    args.precisions = [x.strip() for x in args.precisions.split(",") if x.strip()]
    if not args.precisions or any(x not in PRECISIONS for x in args.precisions):
        p.error(f"--precisions: choose from {', '.join(PRECISIONS)}")
    args.stages = sorted({int(s) for s in args.stages.split(",") if s.strip()})
    if args.stages not in ([1], [1, 2]):
        p.error("--stages: 1 or 1,2")
    return args


def device_name(device: str) -> str:
    import torch

    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.machine()} ({torch.get_num_threads()} threads)"


def clock(device: str) -> float:
    """Wall time on the GPU; on a (shared) CPU the process's CPU time, which other jobs do not disturb."""
    return time.perf_counter() if device == "cuda" else time.process_time()


def timed_stage(module, argv, device: str) -> dict:
    """Run one stage through its own ``train`` and record the time and losses after every step."""
    import torch

    from train.run import run_stage

    marks, nimg, last = [], [], {}

    def train(run):
        end_step = run.end_step

        def timed_end_step(scalars):
            last.clear()
            last.update({k: float(v.detach().float()) if torch.is_tensor(v) else float(v)
                         for k, v in scalars.items() if v is not None})
            end_step(scalars)
            if device == "cuda":
                torch.cuda.synchronize()
            marks.append(clock(device))
            nimg.append(run.state["cur_nimg"])

        run.end_step = timed_end_step
        module.train(run)

    gc.collect()  # the previous run's networks and optimizers must not count towards this run's peak
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    rc = run_stage(argv, module.__name__.rsplit(".", 1)[-1], "gpu_check", train)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    reserved = torch.cuda.max_memory_reserved() / 2**30 if device == "cuda" else None
    return {"rc": rc, "marks": marks, "nimg": nimg, "losses": last, "peak_gib": peak, "reserved_gib": reserved}


def row(stage: int, precision: str, args, result: dict) -> dict:
    marks, steps = result["marks"], len(result["marks"])
    timed = steps - args.warmup  # from the end of the last warm-up step to the end of the run
    sec = marks[-1] - marks[args.warmup - 1] if timed > 0 else None
    kitems = timed * args.batch / 1000
    kimg = (result["nimg"][-1] - result["nimg"][args.warmup - 1]) / 1000 if timed > 0 else 0
    losses = {k: v for k, v in result["losses"].items() if k.startswith("loss/")}
    finite = result["rc"] == 0 and steps == args.steps and bool(losses) and all(map(math.isfinite, losses.values()))
    return {"stage": stage, "precision": precision, "batch": args.batch, "steps": steps,
            "s_per_kimg": sec / kimg if sec is not None and kimg > 0 else None,
            "s_per_kitems": sec / kitems if sec is not None and kitems > 0 else None, "peak_gib": result["peak_gib"],
            "reserved_gib": result["reserved_gib"],
            "finite": finite, "rc": result["rc"], "losses": losses}


def write_data(root: Path, args, resolution: int) -> Path:
    from gendef.data.synthetic import write_dataset

    return write_dataset(root / "sky", videos=args.videos, frames=args.frames, resolution=resolution, progress=False)


def run_all(args) -> list:
    from train import finetune, pretrain
    from train.config import load_config

    res = int(load_config(args.config, args.overrides, "pretrain")["model"].get("resolution", 64))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_data(tmp, args, res)
        for precision in args.precisions:
            common = ["--config", args.config, f"data={data}", f"batch_size={args.batch}", f"max_steps={args.steps}",
                      "max_kimg=null", f"mixed_precision={PRECISIONS[precision]}", "augment=fixed", f"aug_p={args.aug_p}",
                      "progress=false", "sample_every=0", "eval_every=0", f"ckpt_every={10**9}", f"log_every={args.steps}",
                      *(["num_workers=0"] if args.device == "cpu" else []), *args.overrides]
            s1 = tmp / f"s1-{precision}"
            rows.append(row(1, precision, args, timed_stage(pretrain, common + [f"output_dir={s1}"], args.device)))
            if 2 in args.stages and rows[-1]["rc"] == 0:
                out = common + [f"output_dir={tmp / f's2-{precision}'}", f"init={s1}"]
                rows.append(row(2, precision, args, timed_stage(finetune, out, args.device)))
    return rows


def table(rows: list, device: str) -> str:
    import torch

    timing = "wall time" if device == "cuda" else "process CPU time"
    head = (f"device: {device_name(device)}; torch {torch.__version__}; s/kimg from {timing}; "
            "kimg as the trainer counts it (stage 2: frames); k items = thousands of images (stage 1) / clips (stage 2)\n\n")
    lines = ["| stage | precision | batch | steps | s/kimg | s/k items | peak GPU memory (reserved) | final losses finite "
             "| GPU | torch |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        spk = f"{r['s_per_kimg']:.1f}" if r["s_per_kimg"] is not None else "n/a"
        spi = f"{r['s_per_kitems']:.1f}" if r["s_per_kitems"] is not None else "n/a"
        mem = f"{r['peak_gib']:.2f} GiB ({r['reserved_gib']:.2f})" if r["peak_gib"] is not None else "n/a (CPU)"
        ok = "yes" if r["finite"] else f"NO (exit {r['rc']}, {r['steps']} steps)"
        lines.append(f"| {r['stage']} | {r['precision']} | {r['batch']} | {r['steps']} | {spk} | {spi} | {mem} | {ok} | "
                     f"{device_name(device)} | {torch.__version__} |")
    return head + "\n".join(lines)


def device_ready(device: str) -> bool:
    """Point accelerate at the CPU, or check that CUDA is there (one line on stderr when it is not)."""
    if device == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "1"
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available (use --device cpu)", file=sys.stderr)
        return False
    return True


def main(argv=None) -> int:
    args = parse(argv)
    if not device_ready(args.device):
        return 2
    import torch

    rows = run_all(args)
    print(table(rows, args.device))
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device_name(args.device), "torch": torch.__version__,
                                               "config": args.config, "overrides": args.overrides, "rows": rows}, indent=1))
    return 0 if rows and all(r["finite"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

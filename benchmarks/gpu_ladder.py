"""GPU ladder: the speed switches added one at a time, per config and stage, and the combination it would choose.

    python -m benchmarks.gpu_ladder --out ladder.json            # sky128 + sky256, stages 1 and 2, <= ~4 min on an H200
    python -m benchmarks.gpu_ladder --configs sky128 --steps 30  # one config, longer runs
    python -m benchmarks.gpu_ladder --quick --device cpu         # tiny config, 3 steps a rung, no compile rung (CI)

For each (config, stage) it trains from scratch (stage 2 with ``from_scratch=true``, so it needs no
stage-1 folder) on procedural sky clips, first with the switches off (``baseline``), then with one
more switch per rung on top of those kept so far. A rung is kept when its losses stay finite and
it is faster by more than ``--min-gain`` (speed rungs), or when it lowers the reserved memory by at
least 10 % at most 25 % slower (memory rung, stage 2's ``checkpoint_deformation``; memory first). Per rung
it prints s/kimg (wall time on CUDA, process CPU time on CPU; kimg as the trainer counts it, stage 2
in frames), peak allocated and reserved GPU memory and whether the losses stayed finite; at the end
the chosen ``key=value`` switches per (config, stage). ``--out`` writes the same as JSON.
Rungs that would start after ``--budget`` seconds are skipped and marked so.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]

from benchmarks.gpu_check import device_name, device_ready, row, timed_stage, write_data  # noqa: E402

# (name, overrides, kind): cumulative; "memory" rungs are judged by reserved memory first.
RUNGS = [
    ("checkpoint_deformation", ["checkpoint_deformation=true"], "memory"),  # stage 2 only
    ("data_on_device", ["data_on_device=true"], "speed"),  # stage 1 only (clips use the DataLoader)
    ("sync_every=25", ["sync_every=25"], "speed"),
    ("adam=fused", ["adam=fused"], "speed"),
    ("channels_last", ["channels_last=true"], "speed"),
    ("bf16", ["mixed_precision=bf16"], "speed"),
    ("compile", ["compile=true"], "speed"),
]
BASELINE = ["data_on_device=false", "sync_every=1", "adam=foreach", "channels_last=false", "mixed_precision=no", "compile=false",
            "checkpoint_deformation=false"]
CONFIGS = {"sky128": ("sky128.yaml", 64), "sky256": ("sky256.yaml", 16)}


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="sky128,sky256", help=f"comma list of {', '.join(CONFIGS)}")
    p.add_argument("--stages", default="1,2")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--steps", type=int, default=12, help="steps per rung")
    p.add_argument("--warmup", type=int, default=5, help="steps left out of the timing (compile happens here)")
    p.add_argument("--videos", type=int, default=32)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--min-gain", type=float, default=0.03, help="a speed rung is kept when it is this much faster")
    p.add_argument("--budget", type=float, default=230, help="seconds after which no new rung starts")
    p.add_argument("--quick", action="store_true", help="tiny.yaml as the one config, 3 steps, batch 4 (CI smoke test)")
    p.add_argument("--out", default=None, help="also write everything to this JSON file")
    p.add_argument("overrides", nargs="*", help="extra key=value trainer overrides for every run")
    args = p.parse_args(argv)
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    args.stages = sorted({int(s) for s in args.stages.split(",") if s.strip()})
    if args.quick:
        args.steps, args.warmup, args.videos, args.frames = 3, 1, 4, 8
    if not 1 <= args.warmup < args.steps:
        p.error("need 1 <= --warmup < --steps")
    if not args.quick and any(c not in CONFIGS for c in args.configs):
        p.error(f"--configs: choose from {', '.join(CONFIGS)}")
    if not args.stages or any(s not in (1, 2) for s in args.stages):
        p.error("--stages: 1, 2 or 1,2")
    return args


def plan(args) -> list:
    """(label, config path, batch) to climb."""
    if args.quick:
        return [("tiny", str(ROOT / "train" / "configs" / "tiny.yaml"), 4)]
    return [(name, str(ROOT / "train" / "configs" / CONFIGS[name][0]), CONFIGS[name][1]) for name in args.configs]


def run_rung(stage: int, config: str, batch: int, data: Path, out: Path, switches: list, args) -> dict:
    from train import finetune, pretrain

    argv = ["--config", config, f"data={data}", f"output_dir={out}", f"batch_size={batch}", f"max_steps={args.steps}",
            "max_kimg=null", "progress=false", "sample_every=0", "eval_every=0", f"ckpt_every={10**9}",
            f"log_every={args.steps}", "health_seeds=0", "health_strip_every=0",
            *(["num_workers=0", "compile_backend=aot_eager"] if args.device == "cpu" else []), *BASELINE, *switches,
            *args.overrides]
    if stage == 2:
        argv.append("from_scratch=true")
    result = timed_stage(finetune if stage == 2 else pretrain, argv, args.device)
    return row(stage, "", SimpleNamespace(warmup=args.warmup, steps=args.steps, batch=batch), result)


def keep(kind: str, new: dict, best: dict, min_gain: float) -> bool:
    if not new["finite"] or new["s_per_kimg"] is None or best["s_per_kimg"] is None:
        return False
    if kind == "memory" and new["reserved_gib"] is not None and best["reserved_gib"]:
        return new["reserved_gib"] <= 0.9 * best["reserved_gib"] and new["s_per_kimg"] <= 1.25 * best["s_per_kimg"]
    if kind == "memory":  # CPU: no memory numbers; keep it when it costs little
        return new["s_per_kimg"] <= 1.25 * best["s_per_kimg"]
    return new["s_per_kimg"] < (1 - min_gain) * best["s_per_kimg"]


def line(label: str, stage: int, rung: str, r: dict, kept) -> str:
    spk = f"{r['s_per_kimg']:.2f}" if r.get("s_per_kimg") is not None else "n/a"
    mem = (f"{r['peak_gib']:.2f} / {r['reserved_gib']:.2f}" if r.get("peak_gib") is not None else "n/a (CPU)")
    fin = "skipped (budget)" if r.get("skipped") else ("yes" if r["finite"] else f"NO (exit {r['rc']})")
    return f"| {label} | {stage} | {rung} | {spk} | {mem} | {fin} | {kept} |"


def climb(args) -> dict:
    t_start = time.perf_counter()
    results = {"rows": [], "chosen": {}}
    print("| config | stage | rung (added on top of the kept ones) | s/kimg | peak allocated / reserved GiB "
          "| losses finite | kept |\n|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for label, config, batch in plan(args):
            from train.config import load_config

            res = int(load_config(config, [], "pretrain")["model"].get("resolution", 64))
            data = write_data(tmp / label, args, res)
            for stage in args.stages:
                kept, best = [], None
                for rung, switches, kind in [("baseline", [], "base")] + RUNGS:
                    if (rung, stage) in (("checkpoint_deformation", 1), ("data_on_device", 2)) or (rung == "compile" and args.quick):
                        continue  # --quick: compile is tested in tests/test_speed.py (aot_eager), too slow here
                    if time.perf_counter() - t_start > args.budget:
                        r = {"skipped": True, "finite": False, "rc": None}
                        ok = "-"
                    else:
                        out = tmp / f"{label}-s{stage}-{len(results['rows'])}"
                        r = run_rung(stage, config, batch, data, out, kept + switches, args)
                        ok = kind == "base" or keep(kind, r, best, args.min_gain)
                        if ok:
                            kept, best = (kept + switches if kind != "base" else kept), r
                    results["rows"].append({"config": label, "stage": stage, "rung": rung, **r, "kept": ok})
                    print(line(label, stage, rung, r, "yes" if ok is True else ("no" if ok is False else ok)), flush=True)
                results["chosen"][f"{label} stage {stage}"] = {"switches": kept, "row": best}
    return results


def main(argv=None) -> int:
    args = parse(argv)
    if not device_ready(args.device):
        return 2
    import torch

    t0 = time.perf_counter()
    results = climb(args)
    print(f"\ndevice: {device_name(args.device)}; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}; "
          f"{args.steps} steps a rung, {args.warmup} warm-up; {time.perf_counter() - t0:.0f} s in all")
    for key, choice in results["chosen"].items():
        best = choice["row"]
        spk = f"{best['s_per_kimg']:.2f} s/kimg" if best and best.get("s_per_kimg") else "no finite run"
        print(f"chosen for {key}: {' '.join(choice['switches']) or '(baseline)'} -> {spk}")
    if args.out:
        results.update(device=device_name(args.device), torch=torch.__version__, date=time.strftime("%Y-%m-%d"),
                       steps=args.steps, warmup=args.warmup, overrides=args.overrides)
        tmp = Path(args.out).with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=1))
        os.replace(tmp, args.out)
    baseline_ok = all(r["finite"] for r in results["rows"] if r["rung"] == "baseline" and not r.get("skipped"))
    return 0 if results["rows"] and baseline_ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""CPU ladder: the speed switches added one at a time on the CPU, per stage, against today's eager fp32.

    python -m benchmarks.cpu_ladder --out cpu_ladder.json        # sky64.yaml, batch 12, stages 1 and 2
    python -m benchmarks.cpu_ladder --stages 1 --clock cpu        # stage 1 only, judged on CPU time
    python -m benchmarks.cpu_ladder --compile                     # also the inductor rung (compiling takes minutes)
    python -m benchmarks.cpu_ladder --quick                       # tiny.yaml, 3 steps a rung (CI)

The CPU sibling of ``benchmarks/gpu_ladder.py``. Every rung trains from scratch (stage 2 with
``from_scratch=true``) on procedural sky clips, in this one process, first as today (``baseline``:
eager fp32, torch's default threads, the DataLoader with ``num_workers=0``, a host read of the NaN
guard every step, Adam's default loop), then with one more switch on top of those kept so far:

- ``threads=1`` (``cpu_threads=1``): one intra-op thread instead of torch's default (one per core,
  ``cpu_threads=0``, the baseline). The inter-op pool is
  not used by eager training (only ``torch.jit.fork`` and friends), so it has no rung;
- ``data_on_device``: stage 1's frames decoded once into a uint8 tensor in memory (no per-step PNG decode);
- ``sync_every=25``: no per-step host read of the NaN guard;
- ``adam=foreach``: Adam's multi-tensor implementation;
- ``channels_last``: NHWC weights and D inputs;
- ``compile`` (only with ``--compile``): ``torch.compile`` of G_c and D with inductor (C++ on the
  CPU); its compile time is the ``warm-up s`` column.

A rung is kept when its losses stay finite and it is faster by more than ``--min-gain``. The timed
window (``--steps`` minus ``--warmup``) runs with ``r1_interval`` = the window length, so it holds
exactly one R1 step; the table gives the plain step and the R1 step apart and s/kimg for the config's
own R1 interval (lazy regularisation, sky64: 16): ``((I - 1) x plain + R1) / I`` per step. Two clocks:
wall time (what a sitting feels) and the process's CPU time (less disturbed by other jobs on a shared
machine); ``--clock`` picks the one the choice is made on. Last, one modulated 3x3 conv of the config's
G_c (forward + backward), batched (the modulation on the activations, what G_c does) against grouped
(per-sample weights, StyleGAN2's fused form).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from benchmarks.gpu_check import device_name, device_ready, write_data  # noqa: E402

# (name, trainer overrides): cumulative.
RUNGS = [
    ("threads=1", ["cpu_threads=1"]),
    ("data_on_device", ["data_on_device=true"]),  # stage 1 only (clips use the DataLoader)
    ("sync_every=25", ["sync_every=25"]),
    ("adam=foreach", ["adam=foreach"]),
    ("channels_last", ["channels_last=true"]),
    ("compile", ["compile=true", "compile_backend=inductor"]),
]
BASELINE = ["cpu_threads=0", "data_on_device=false", "sync_every=1", "adam=auto", "channels_last=false", "mixed_precision=no",
            "compile=false", "checkpoint_deformation=false", "num_workers=0"]
CONFIGS = {"sky64": ("sky64.yaml", 12)}


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="sky64", help=f"one of {', '.join(CONFIGS)}")
    p.add_argument("--stages", default="1,2")
    p.add_argument("--steps", type=int, default=10, help="steps per rung")
    p.add_argument("--warmup", type=int, default=2, help="steps left out of the timing (compile happens here)")
    p.add_argument("--videos", type=int, default=32)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="the clock a rung is judged on")
    p.add_argument("--min-gain", type=float, default=0.03, help="a rung is kept when it is this much faster")
    p.add_argument("--compile", action="store_true", help="add the inductor rung (minutes of compiling)")
    p.add_argument("--rungs", default=None, help="comma list: climb only these rungs (default: all)")
    p.add_argument("--quick", action="store_true", help="tiny.yaml, 3 steps, batch 4, no compile rung (CI smoke test)")
    p.add_argument("--out", default=None, help="also write everything to this JSON file")
    p.add_argument("overrides", nargs="*", help="extra key=value trainer overrides for every run")
    args = p.parse_args(argv)
    args.stages = sorted({int(s) for s in args.stages.split(",") if s.strip()})
    if args.quick:
        args.steps, args.warmup, args.videos, args.frames, args.compile = 3, 1, 4, 8, False
    if not 1 <= args.warmup < args.steps:
        p.error("need 1 <= --warmup < --steps")
    if not args.quick and args.config not in CONFIGS:
        p.error(f"--config: choose from {', '.join(CONFIGS)}")
    if not args.stages or any(s not in (1, 2) for s in args.stages):
        p.error("--stages: 1, 2 or 1,2")
    return args


def timed_run(stage: int, argv: list) -> dict:
    """Train one stage; after every step record both clocks, the images shown and whether R1 ran."""
    import torch

    from train import finetune, pretrain
    from train.run import run_stage

    module = finetune if stage == 2 else pretrain
    marks, last, threads = [], {}, []

    def train(run):
        end_step = run.end_step
        threads.append(torch.get_num_threads())  # the run's own (it restores the process's when it closes)

        def timed_end_step(scalars):
            r1 = scalars.get("loss/r1") is not None
            last.clear()
            last.update({k: float(v.detach().float()) if torch.is_tensor(v) else float(v)
                         for k, v in scalars.items() if v is not None})
            end_step(scalars)
            marks.append((time.perf_counter(), time.process_time(), run.state["cur_nimg"], r1))

        run.end_step = timed_end_step
        module.train(run)

    t0 = (time.perf_counter(), time.process_time())
    rc = run_stage(argv, module.__name__.rsplit(".", 1)[-1], "cpu_ladder", train)
    return {"rc": rc, "marks": marks, "losses": last, "t0": t0, "threads": threads[0] if threads else None}


def summarize(result: dict, args, r1_interval: int) -> dict:
    """Per clock: plain-step and R1-step seconds in the timed window, s/kimg at the config's R1 interval."""
    marks, w = result["marks"], args.warmup
    losses = {k: v for k, v in result["losses"].items() if k.startswith("loss/")}
    out = {"steps": len(marks), "rc": result["rc"], "losses": losses, "threads": result["threads"],
           "finite": result["rc"] == 0 and len(marks) == args.steps and bool(losses)
           and all(map(math.isfinite, losses.values()))}
    if len(marks) <= w:
        return {**out, "s_per_kimg": None}
    img_per_step = (marks[-1][2] - marks[w - 1][2]) / (len(marks) - w)
    out["warmup_s"] = marks[w - 1][0] - result["t0"][0]
    for c, name in ((0, "wall"), (1, "cpu")):
        steps = [(marks[i][c] - marks[i - 1][c], marks[i][3]) for i in range(w, len(marks))]
        plain = [d for d, r1 in steps if not r1]
        r1 = [d for d, r1 in steps if r1]
        p = sum(plain) / len(plain) if plain else None
        r = sum(r1) / len(r1) if r1 else p
        per_step = ((r1_interval - 1) * p + r) / r1_interval if p is not None else r
        out[name] = {"plain_s": p, "r1_s": r, "s_per_kimg": per_step / img_per_step * 1000}
    out["s_per_kimg"] = out[args.clock]["s_per_kimg"]
    return out


def run_rung(stage: int, config: str, batch: int, data: Path, out: Path, switches: list, args) -> dict:
    from train.config import load_config

    interval = int(load_config(config, [], "pretrain")["r1_interval"])
    window = args.steps - args.warmup
    argv = ["--config", config, f"data={data}", f"output_dir={out}", f"batch_size={batch}", f"max_steps={args.steps}",
            "max_kimg=null", "progress=false", "sample_every=0", "eval_every=0", f"ckpt_every={10**9}",
            f"log_every={args.steps}", "health_seeds=0", "health_strip_every=0", f"r1_interval={window}",
            *BASELINE, *switches, *args.overrides]
    if stage == 2:
        argv.append("from_scratch=true")
    return summarize(timed_run(stage, argv), args, interval)


def keep(new: dict, best: dict, min_gain: float) -> bool:
    if not new["finite"] or new["s_per_kimg"] is None or best["s_per_kimg"] is None:
        return False
    return new["s_per_kimg"] < (1 - min_gain) * best["s_per_kimg"]


def _f(v, fmt="{:.2f}"):
    return fmt.format(v) if v is not None else "n/a"


def line(stage: int, rung: str, r: dict, kept: str, base: dict) -> str:
    if r.get("skipped"):
        return f"| {stage} | {rung} | skipped | | | | | | {kept} |"
    w, c = r.get("wall", {}), r.get("cpu", {})
    speedup = (base["s_per_kimg"] / r["s_per_kimg"]) if base and r.get("s_per_kimg") else None
    fin = "yes" if r["finite"] else f"NO (exit {r['rc']})"
    return (f"| {stage} | {rung} | {_f(w.get('s_per_kimg'))} | {_f(c.get('s_per_kimg'))} | {_f(w.get('plain_s'), '{:.3f}')} / "
            f"{_f(w.get('r1_s'), '{:.3f}')} | {_f(r.get('warmup_s'), '{:.0f}')} | {_f(speedup, '{:.2f}x')} | {fin} | {kept} |")


def climb(args, config: str, batch: int) -> dict:
    results = {"rows": [], "chosen": {}}
    print(f"| stage | rung (added on top of the kept ones) | wall s/kimg | CPU s/kimg | wall s per plain / R1 step "
          f"| warm-up s | vs baseline ({args.clock}) | losses finite | kept |\n|---|---|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        from train.config import load_config

        res = int(load_config(config, [], "pretrain")["model"].get("resolution", 64))
        data = write_data(tmp / "data", args, res)
        for stage in args.stages:
            kept, best, base = [], None, None
            for rung, switches in [("baseline", [])] + RUNGS:
                if (rung, stage) == ("data_on_device", 2) or (rung == "compile" and not args.compile):
                    continue
                if args.rungs and rung != "baseline" and rung not in args.rungs.split(","):
                    continue
                out = tmp / f"s{stage}-{len(results['rows'])}"
                r = run_rung(stage, config, batch, data, out, kept + switches, args)
                ok = rung == "baseline" or keep(r, best, args.min_gain)
                if ok:
                    kept, best = kept + switches, r
                base = base or r
                results["rows"].append({"stage": stage, "rung": rung, "threads": r["threads"], **r, "kept": ok})
                print(line(stage, rung, r, "yes" if ok else "no", base), flush=True)
            results["chosen"][f"stage {stage}"] = {"switches": kept, "row": best, "baseline": base,
                                                   "speedup": base["s_per_kimg"] / best["s_per_kimg"]
                                                   if base and best and best["s_per_kimg"] else None}
    return results


def modconv_rows(config: str, batch: int, repeats: int = 5) -> list:
    """One 3x3 modulated conv of G_c's widest 32 px layer, forward + backward: batched vs grouped, wall s."""
    import torch
    import torch.nn.functional as F

    from train.config import load_config

    m = load_config(config, [], "pretrain")["model"]
    ch = min(int(m["channel_base"]) // 32, int(m["channel_max"]))
    x = torch.randn(batch, ch, 32, 32)
    s = torch.randn(batch, ch).abs() + 0.5
    weight = torch.randn(ch, ch, 3, 3, requires_grad=True)

    def batched():
        d = torch.rsqrt((weight.square().sum((2, 3))[None] * s.square()[:, None]).sum(-1) + 1e-8)
        return F.conv2d(x * s[:, :, None, None], weight, padding=1) * d[:, :, None, None]

    def grouped():
        w = weight[None] * s[:, None, :, None, None]
        w = w * torch.rsqrt(w.square().sum((2, 3, 4), keepdim=True) + 1e-8)
        out = F.conv2d(x.reshape(1, batch * ch, 32, 32), w.reshape(batch * ch, ch, 3, 3), padding=1, groups=batch)
        return out.reshape(batch, ch, 32, 32)

    rows = []
    for name, fn in (("batched (G_c's)", batched), ("grouped", grouped)):
        fn().square().mean().backward()
        t = time.perf_counter()
        for _ in range(repeats):
            fn().square().mean().backward()
        rows.append({"form": name, "channels": ch, "batch": batch, "ms": 1000 * (time.perf_counter() - t) / repeats})
    diff = (batched() - grouped()).abs().max().item()
    rows.append({"form": "max |batched - grouped|", "value": diff})
    return rows


def main(argv=None) -> int:
    args = parse(argv)
    device_ready("cpu")
    import torch

    if args.quick:
        config, batch = str(ROOT / "train" / "configs" / "tiny.yaml"), 4
    else:
        config, batch = str(ROOT / "train" / "configs" / CONFIGS[args.config][0]), CONFIGS[args.config][1]
    t0 = time.perf_counter()
    print(f"CPU ladder: {Path(config).name}, batch {batch}, {torch.get_num_threads()} threads by default, "
          f"{os.cpu_count()} CPUs, {args.steps} steps a rung ({args.warmup} warm-up)", flush=True)
    results = climb(args, config, batch)
    results["modconv"] = modconv_rows(config, batch)
    for r in results["modconv"]:
        print(f"modulated conv, {r['form']}: " + (f"{r['ms']:.1f} ms ({r['channels']} ch, 32x32, batch {r['batch']})"
                                                   if "ms" in r else f"{r['value']:.2e}"))
    print(f"\ndevice: {device_name('cpu')}; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}; "
          f"{time.perf_counter() - t0:.0f} s in all")
    for key, choice in results["chosen"].items():
        sp = f"{choice['speedup']:.2f}x the baseline" if choice["speedup"] else "no finite run"
        print(f"chosen for {key}: {' '.join(choice['switches']) or '(baseline)'} -> {sp} ({args.clock} clock)")
    if args.out:
        results.update(device=device_name("cpu"), torch=torch.__version__, date=time.strftime("%Y-%m-%d"),
                       steps=args.steps, warmup=args.warmup, clock=args.clock, overrides=args.overrides,
                       config=Path(config).name, batch=batch)
        tmp = Path(args.out).with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=1))
        os.replace(tmp, args.out)
    return 0 if results["rows"] and all(r["finite"] for r in results["rows"] if r["rung"] == "baseline") else 1


if __name__ == "__main__":
    sys.exit(main())

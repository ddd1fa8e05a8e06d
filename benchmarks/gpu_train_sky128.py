"""One GPU sitting for the 128-px sky model: data, stage 1, stage 2, EMA export and loss logs into $OUT.

    python benchmarks/gpu_train_sky128.py                          # one H100, ~9 min, files in $OUT
    python benchmarks/gpu_train_sky128.py --continue-from DIR      # a later sitting: more stage 2 from a returned export
    python benchmarks/gpu_train_sky128.py --smoke --device cpu     # plumbing check (tiny.yaml, 2 steps per stage)

1. Writes the procedural sky data (``--videos`` clips of ``--frames`` frames at the config's size,
   ``--workers`` processes) under ``--work`` unless it is already there.
2. Stage 1 (``train/pretrain.py``'s loop, in this process) until its time share of ``--minutes`` is
   used, then stage 2 from it until the budget is used; each stage runs with ``resume=latest`` in
   its own folder, so re-running the script in the same sitting continues where it stopped. A stage
   stops after the step that crosses its deadline and then does what a finished run does: a last
   checkpoint and the EMA export. ``--continue-from`` skips stage 1 and starts stage 2 from a
   previous sitting's returned export (G with its G_d, and D; fresh optimiser moments and ADA p).
3. Copies into ``--out`` (default $OUT) at most 8 files, each checked to be <= 16 MiB:
   ``sky128/{config.json, model.safetensors, discriminator.safetensors, discriminator_config.json,
   training_config.yaml}`` (the stage-2 export: ``GenDeF.from_pretrained(out/sky128)``; ``init=`` for
   the next sitting), ``losses_stage1.csv``, ``losses_stage2.csv`` (every ``log_every`` steps) and
   ``sitting.json`` (GPU, torch, seconds, steps, kimg and s/kimg per stage, exit codes).
Imports neither gradio nor imageio-ffmpeg (previews are off: ``sample_every=0``).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPORT_FILES = ("config.json", "model.safetensors", "discriminator.safetensors", "discriminator_config.json",
                "training_config.yaml")
MAX_FILE_BYTES = 16 * 2**20


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "train" / "configs" / "sky128.yaml"))
    p.add_argument("--out", default=os.environ.get("OUT") or "runs/sky128-sitting", help="where the files go ($OUT)")
    p.add_argument("--work", default="/tmp/gendef-sky128", help="data and run folders (not returned)")
    p.add_argument("--minutes", type=float, default=8.5, help="wall-clock budget of the whole sitting")
    p.add_argument("--stage1-share", type=float, default=0.45, help="fraction of the training time for stage 1")
    p.add_argument("--videos", type=int, default=2000)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1), help="data-writing processes")
    p.add_argument("--precision", choices=["no", "bf16", "fp16"], default="no")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--continue-from", default=None, help="a previous sitting's sky128/ export: stage 2 only")
    p.add_argument("--smoke", action="store_true", help="tiny.yaml, 6 clips, 2 steps per stage, batch 2")
    p.add_argument("overrides", nargs="*", help="extra key=value trainer overrides")
    a = p.parse_args(argv)
    if a.smoke:
        a.config = str(ROOT / "train" / "configs" / "tiny.yaml")
        a.videos, a.frames, a.workers = 6, 8, 1
        a.overrides = ["max_steps=2", "batch_size=2", "num_workers=0", "log_every=1", "ckpt_every=1", *a.overrides]
    if not 0 < a.stage1_share < 1 or a.minutes <= 0:
        p.error("need --minutes > 0 and 0 < --stage1-share < 1")
    return a


def write_data(a, resolution: int) -> Path:
    from gendef.data.synthetic import write_dataset

    dst = Path(a.work) / f"sky{resolution}-{a.videos}x{a.frames}.zip"
    if not dst.is_file():
        write_dataset(dst, a.videos, a.frames, resolution, progress=False, workers=a.workers)
    return dst


def timed_stage(stage: str, argv, deadline: float, log_every: int) -> dict:
    """One stage in this process; stops after the step that crosses ``deadline``; records losses."""
    from train import finetune, pretrain
    from train.run import run_stage

    module = pretrain if stage == "pretrain" else finetune
    rows, info = [], {"t0": time.perf_counter()}

    def train(run):
        steps, end_step = run.steps, run.end_step

        def timed_steps():
            info["start_step"], info["start_nimg"] = run.state["step"], run.state["cur_nimg"]  # after resume
            info["step"], info["nimg"] = run.state["step"], run.state["cur_nimg"]
            for s in steps():
                if time.perf_counter() > deadline:
                    return
                yield s

        def logged_end_step(scalars):
            end_step(scalars)
            st = run.state
            if st["step"] % log_every == 0 or st["step"] == 1:
                vals = {k: float(v.detach().float()) for k, v in scalars.items() if v is not None}
                vals.update({k: v for k, v in getattr(run, "last_logs", {}).items() if k.startswith("field/")})
                rows.append({"step": st["step"], "kimg": st["cur_nimg"] / 1000, "seconds": time.perf_counter() - info["t0"],
                             "aug_p": float(st.get("aug_p", 0.0)), **vals})
            info["step"], info["nimg"] = st["step"], st["cur_nimg"]

        run.steps, run.end_step = timed_steps, logged_end_step
        module.train(run)

    rc = run_stage(argv, stage, f"gpu sitting {stage}", train)
    sec = time.perf_counter() - info["t0"]
    kimg = (info.get("nimg", 0) - info.get("start_nimg", 0)) / 1000
    return {"rc": rc, "seconds": sec, "steps": info.get("step", 0) - info.get("start_step", 0),
            "kimg_this_sitting": kimg, "kimg_total": info.get("nimg", 0) / 1000,
            "s_per_kimg": sec / kimg if kimg > 0 else None, "rows": rows}


def write_csv(path: Path, rows: list) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys or ["step"])
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def steady_s_per_kimg(rows: list):
    """Seconds per kimg between the first and last logged step (setup and warm-up left out)."""
    if len(rows) < 2 or rows[-1]["kimg"] <= rows[0]["kimg"]:
        return None
    return (rows[-1]["seconds"] - rows[0]["seconds"]) / (rows[-1]["kimg"] - rows[0]["kimg"])


def collect(a, stage2: Path, results: dict, meta: dict) -> list:
    """Copy the export and write the logs into --out; returns the written paths (<= 8, each <= 16 MiB)."""
    out = Path(a.out)
    (out / "sky128").mkdir(parents=True, exist_ok=True)
    written = []
    for name in EXPORT_FILES:
        if (stage2 / name).is_file():
            shutil.copyfile(stage2 / name, out / "sky128" / name)
            written.append(out / "sky128" / name)
    for stage, res in results.items():
        write_csv(out / f"losses_{stage}.csv", res.pop("rows"))
        written.append(out / f"losses_{stage}.csv")
    meta["stages"] = results
    health = stage2 / "health.json"  # the field monitor's last statistics and warnings (train/monitor.py)
    meta["health"] = json.loads(health.read_text()) if health.is_file() else None
    meta["files"] = {str(p.relative_to(out)): p.stat().st_size for p in written}
    too_big = [k for k, v in meta["files"].items() if v > MAX_FILE_BYTES]
    meta["files_over_16MiB"] = too_big
    (out / "sitting.json").write_text(json.dumps(meta, indent=1))
    return written + [out / "sitting.json"]


def main(argv=None) -> int:
    a = parse(argv)
    t_start = time.perf_counter()
    end = t_start + a.minutes * 60 - 30  # 30 s kept for the last checkpoint, export and copies
    if a.device == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "1"
    import torch

    from train.config import load_config

    if a.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    cfg = load_config(a.config, a.overrides, "pretrain")
    data = write_data(a, int(cfg["model"]["resolution"]))
    meta = {"device": torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu", "torch": torch.__version__,
            "config": a.config, "overrides": a.overrides, "precision": a.precision, "data": str(data),
            "data_seconds": time.perf_counter() - t_start, "continue_from": a.continue_from}
    print(f"data ready in {meta['data_seconds']:.0f} s: {data}", flush=True)
    work = Path(a.work)
    common = ["--config", a.config, f"data={data}", "resume=latest", f"mixed_precision={a.precision}", "progress=false",
              "sample_every=0", "eval_every=0", *a.overrides]
    log_every = int(cfg["log_every"])
    results = {}
    init = a.continue_from
    if not init:
        deadline = time.perf_counter() + (end - time.perf_counter()) * a.stage1_share
        results["stage1"] = timed_stage("pretrain", common + [f"output_dir={work / 'stage1'}"], deadline, log_every)
        init = str(work / "stage1")
        print(f"stage 1: {json.dumps({k: v for k, v in results['stage1'].items() if k != 'rows'})}", flush=True)
    if all(r["rc"] == 0 for r in results.values()):
        extra = ["reset_deformation=false"] if a.continue_from else []
        results["stage2"] = timed_stage("finetune", common + [f"output_dir={work / 'stage2'}", f"init={init}", *extra],
                                        end, log_every)
        print(f"stage 2: {json.dumps({k: v for k, v in results['stage2'].items() if k != 'rows'})}", flush=True)
    for r in results.values():
        r["steady_s_per_kimg"] = steady_s_per_kimg(r["rows"])
    meta["total_seconds"] = time.perf_counter() - t_start
    files = collect(a, work / "stage2", results, meta)
    print("wrote " + ", ".join(str(p) for p in files))
    ok = results and all(r["rc"] == 0 for r in results.values()) and not meta["files_over_16MiB"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

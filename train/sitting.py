"""One GPU sitting for any training config: data, stage 1 then stage 2 for M minutes, then a state pack.

    python train/sitting.py --config train/configs/sky128.yaml --minutes 9 --out DIR
    python train/sitting.py --config train/configs/sky128.yaml --minutes 9 --out DIR2 --resume-pack DIR/pack
    python train/sitting.py --smoke --device cpu --out DIR       # plumbing check (tiny.yaml, 2 steps per stage)
    python train/sitting.py --resume-pack DIR/pack --export MODEL   # the pack's G_ema for GenDeF.from_pretrained

1. Regenerates the procedural sky data from its seed (``gendef.data.synthetic``: ``--videos`` clips of
   ``--frames`` frames at the config's size, ``--workers`` processes) under ``--work``: data never travels.
2. Trains stage 1 until its share (``--stage1-share``) of the time is used, then stage 2 from it
   until ``--minutes`` is used. With ``--resume-pack`` it continues whichever stage the pack is in
   (a stage-1 pack: the rest of stage 1, then stage 2; a stage-2 pack: stage 2), exactly where the
   last sitting stopped (train/state_pack.py; ``pack_precision=lossless`` for bit-exact). A stage
   stops after the step that crosses its deadline and finishes as usual (checkpoint, export, pack).
3. Writes into ``--out`` (default $OUT) at most 8 files, each checked to be <= 16 MiB: ``pack/``
   (5 files: the next sitting's ``--resume-pack``), ``log.csv`` (both stages' log steps: stage, step,
   kimg, losses, ADA, field monitors), ``samples.png`` (one row per sample: canonical | frames) and
   ``sitting.json`` (GPU/CPU name, torch, seconds, steps, kimg and s/kimg per stage, exit codes, the
   field monitor's ``health.json`` when stage 2 wrote one, file sizes).
Imports neither gradio nor imageio-ffmpeg (previews are off: ``sample_every=0``).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FILES, MAX_FILE_BYTES = 8, 16 * 2**20


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "train" / "configs" / "sky128.yaml"))
    p.add_argument("--out", default=os.environ.get("OUT") or "runs/sitting", help="where the files go ($OUT)")
    p.add_argument("--work", default="/tmp/gendef-sitting", help="data and run folders (not returned)")
    p.add_argument("--minutes", type=float, default=8.5, help="wall-clock budget of the whole sitting")
    p.add_argument("--stage1-share", type=float, default=0.45, help="fraction of the training time for stage 1")
    p.add_argument("--resume-pack", default=None, help="a previous sitting's pack/ folder: continue its stage")
    p.add_argument("--export", default=None, help="with --resume-pack: write its G_ema as a model folder and stop")
    p.add_argument("--pack-precision", choices=["compact", "lossless"], default="compact")
    p.add_argument("--videos", type=int, default=2000)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1), help="data-writing processes")
    p.add_argument("--precision", choices=["no", "bf16", "fp16"], default="no")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--samples", type=int, default=4, help="rows of the PNG strip")
    p.add_argument("--stage1-only", action="store_true",
                   help="stop after stage 1 (its pack continues stage 1 next time): long stage 1s in sittings")
    p.add_argument("--smoke", action="store_true", help="tiny.yaml, 6 clips, 2 steps per stage, batch 2")
    p.add_argument("overrides", nargs="*", help="extra key=value trainer overrides")
    a = p.parse_args(argv)
    if a.smoke:
        a.config = str(ROOT / "train" / "configs" / "tiny.yaml")
        a.videos, a.frames, a.workers = 6, 8, 1
        a.overrides = ["max_steps=2", "batch_size=2", "num_workers=0", "log_every=1", "ckpt_every=1", *a.overrides]
    if a.export and not a.resume_pack:
        p.error("--export needs --resume-pack")
    if a.stage1_only:
        a.stage1_share = 0.999  # the whole budget (the flag skips stage 2)
    if not 0 < a.stage1_share < 1 or a.minutes <= 0:
        p.error("need --minutes > 0 and 0 < --stage1-share < 1")
    return a


def write_data(a, resolution: int) -> Path:
    from gendef.data.synthetic import write_dataset

    dst = Path(a.work) / f"sky{resolution}-{a.videos}x{a.frames}.zip"
    if not dst.is_file():
        write_dataset(dst, a.videos, a.frames, resolution, progress=False, workers=a.workers)
    return dst


def timed_stage(stage: str, argv, deadline: float) -> dict:
    """One stage in this process; stops after the step that crosses ``deadline``."""
    from train import finetune, pretrain
    from train.run import run_stage

    module = pretrain if stage == "pretrain" else finetune
    info = {"t0": time.perf_counter(), "marks": []}

    def train(run):
        steps, end_step = run.steps, run.end_step

        def timed_steps():
            info["start_step"], info["start_nimg"] = run.state["step"], run.state["cur_nimg"]  # after resume
            info["step"], info["nimg"] = run.state["step"], run.state["cur_nimg"]
            for s in steps():
                if time.perf_counter() > deadline:
                    return
                yield s

        def marked_end_step(scalars):
            end_step(scalars)
            info["step"], info["nimg"] = run.state["step"], run.state["cur_nimg"]
            info["marks"][1:] = [(time.perf_counter(), info["nimg"])]  # [first step's end, last step's end]

        run.steps, run.end_step = timed_steps, marked_end_step
        module.train(run)

    rc = run_stage(argv, stage, f"sitting {stage}", train)
    sec = time.perf_counter() - info["t0"]
    kimg = (info.get("nimg", 0) - info.get("start_nimg", 0)) / 1000
    m = info["marks"]
    steady = (m[1][0] - m[0][0]) / ((m[1][1] - m[0][1]) / 1000) if len(m) == 2 and m[1][1] > m[0][1] else None
    return {"rc": rc, "seconds": sec, "steps": info.get("step", 0) - info.get("start_step", 0),
            "kimg_this_sitting": kimg, "kimg_total": info.get("nimg", 0) / 1000,
            "s_per_kimg": sec / kimg if kimg > 0 else None, "steady_s_per_kimg": steady}


def merge_logs(runs: list, dst: Path) -> None:
    """The stages' ``log.csv`` (train/logcsv.py) as one file, with a ``kimg`` column for plot_losses."""
    from train.logcsv import read_rows

    header, rows = ["stage", "step", "kimg"], []
    for folder in runs:
        h, r = read_rows(folder / "log.csv")
        header += [k for k in h if k not in header]
        rows += [dict(row, kimg=row.get("progress/kimg", "")) for row in r]
    tmp = dst.with_name(dst.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, restval="")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, dst)


def sample_strip(export: Path, dst: Path, n: int, frames: int) -> None:
    """One row per sample: canonical | frame 0 | ... (PNG through PIL; no ffmpeg)."""
    import numpy as np
    from PIL import Image

    from gendef import GenDeF
    from gendef.imageutil import to_uint8

    G = GenDeF.from_pretrained(str(export)).eval()
    rows = [np.concatenate([v.canonical, *v.frames()], axis=1) for v in G.sample_batch(list(range(n)), num_frames=frames)]
    tmp = dst.with_name(dst.name + ".tmp.png")
    Image.fromarray(to_uint8(np.concatenate(rows, axis=0))).save(tmp)
    os.replace(tmp, dst)


def pack_init(pack: Path, folder: Path) -> Path:
    """Stage 2 needs an ``init=`` export for the networks' shapes; a pack's config makes one (weights
    come from the pack)."""
    from gendef import GenDeF

    cfg = json.loads((pack / "state.json").read_text())["config"]
    GenDeF(**cfg["model"]).save_pretrained(str(folder))
    shutil.copyfile(pack / "D.safetensors", folder / "discriminator.safetensors")  # shapes match; resume_pack loads D
    return folder


def collect(a, last: Path, runs: list, meta: dict) -> list:
    """The pack, log, strip and summary into --out; returns the written paths (<= 8, each <= 16 MiB)."""
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "pack", ignore_errors=True)
    if (last / "pack").is_dir():
        shutil.copytree(last / "pack", out / "pack")
    merge_logs(runs, out / "log.csv")
    if (last / "model.safetensors").is_file():
        sample_strip(last, out / "samples.png", a.samples, min(8, a.frames))
    health = last / "health.json"  # the field monitor's last statistics and warnings (train/monitor.py)
    meta["health"] = json.loads(health.read_text()) if health.is_file() else None
    written = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "sitting.json")
    meta["files"] = {str(p.relative_to(out)): p.stat().st_size for p in written}
    meta["files_over_16MiB"] = [k for k, v in meta["files"].items() if v > MAX_FILE_BYTES]
    meta["too_many_files"] = len(written) + 1 > MAX_FILES
    (out / "sitting.json").write_text(json.dumps(meta, indent=1))
    return written + [out / "sitting.json"]


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children, in seconds."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    a = parse(argv)
    t_start = time.perf_counter()
    end = t_start + a.minutes * 60 - 30  # 30 s kept for the last checkpoint, export, pack and copies
    if a.device == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "1"
    import torch

    from train.config import load_config
    from train.errors import TrainError
    from train.state_pack import read_pack_state

    if a.export:
        from train.state_pack import export_pack

        try:
            print(f"wrote {export_pack(a.resume_pack, a.export)} (GenDeF.from_pretrained)")
        except TrainError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    if a.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    pack_stage = None
    if a.resume_pack:
        try:
            pack_stage = read_pack_state(a.resume_pack)["stage"]
        except TrainError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    cfg = load_config(a.config, a.overrides, "pretrain")
    data = write_data(a, int(cfg["model"]["resolution"]))
    meta = {"device": torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu", "cpu": cpu_name(),
            "torch": torch.__version__, "config": a.config, "overrides": a.overrides, "precision": a.precision,
            "data": str(data), "data_seconds": time.perf_counter() - t_start, "resume_pack": a.resume_pack,
            "pack_stage": pack_stage, "pack_precision": a.pack_precision}
    print(f"data ready in {meta['data_seconds']:.0f} s: {data}", flush=True)
    work = Path(a.work)
    common = ["--config", a.config, f"data={data}", f"mixed_precision={a.precision}", "progress=false",
              "sample_every=0", "eval_every=0", f"pack_precision={a.pack_precision}", *a.overrides]
    results, runs = {}, []
    pack = a.resume_pack
    if pack_stage in (None, "pretrain"):
        s1 = work / "stage1"
        shutil.rmtree(s1, ignore_errors=True)  # a sitting starts from scratch or from its pack, never from leftovers
        deadline = time.perf_counter() + (end - time.perf_counter()) * a.stage1_share
        extra = [f"resume_pack={pack}"] if pack else []
        results["stage1"] = timed_stage("pretrain", common + [f"output_dir={s1}", f"pack_out={s1 / 'pack'}", *extra], deadline)
        runs.append(s1)
        init, pack = s1, None
        print(f"stage 1: {json.dumps(results['stage1'])}", flush=True)
    else:
        init = pack_init(Path(pack), work / "init-from-pack")
    if all(r["rc"] == 0 for r in results.values()) and not (a.stage1_only and results):
        s2 = work / "stage2"
        shutil.rmtree(s2, ignore_errors=True)
        extra = [f"resume_pack={pack}"] if pack else []
        results["stage2"] = timed_stage("finetune", common + [f"output_dir={s2}", f"init={init}",
                                                              f"pack_out={s2 / 'pack'}", *extra], end)
        runs.append(s2)
        print(f"stage 2: {json.dumps(results['stage2'])}", flush=True)
    meta["stages"] = results
    meta["total_seconds"] = time.perf_counter() - t_start
    meta["cpu_seconds"] = cpu_seconds()  # this process and its children: the model card's CPU hours
    files = collect(a, runs[-1], runs, meta)
    print("wrote " + ", ".join(str(p) for p in files))
    ok = all(r["rc"] == 0 for r in results.values()) and not meta["files_over_16MiB"] and not meta["too_many_files"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

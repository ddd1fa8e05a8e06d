"""A stage-2 checkpoint as a model folder (``GenDeF.from_pretrained``), with its D beside it, as the run's
own export at the end would write it: for checking a run while it trains, or one that was stopped.

    python train/export_checkpoint.py RUN_DIR OUT [--step N]

RUN_DIR: a ``train/finetune.py`` output folder; its ``finetune_config.yaml`` says how the networks were
built (from its ``init``, with stage 2's own motion clock and weightless keys). ``--step`` picks
``checkpoints/step-NNNNNNNN`` (default: the latest).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import torch
import yaml

from train.errors import TrainError

__all__ = ["export_checkpoint"]


def _checkpoint(run_dir: Path, step: Optional[int]) -> Path:
    root = run_dir / "checkpoints"
    if step is not None:
        name = f"step-{step:08d}"
    else:
        name = (root / "latest").read_text().strip() if (root / "latest").is_file() else ""
    if not name or not (root / name / "G_ema.safetensors").is_file():
        raise TrainError(f"{run_dir}: no checkpoint {name or '(latest)'} with G_ema.safetensors under {root}")
    return root / name


def export_checkpoint(run_dir, out, step: Optional[int] = None) -> Path:
    """The checkpoint's G_ema and D written to ``out`` (config.json, model.safetensors, discriminator files)."""
    from safetensors.torch import load_file

    from train.checkpoint import export_generator
    from train.finetune import load_stage1

    run_dir = Path(run_dir)
    cfg_file = run_dir / "finetune_config.yaml"
    if not cfg_file.is_file():
        raise TrainError(f"{run_dir}: no finetune_config.yaml (not a stage-2 output folder)")
    ck = _checkpoint(run_dir, step)
    cfg = yaml.safe_load(cfg_file.read_text())
    G, D, disc_cfg = load_stage1(cfg, "cpu")
    G.load_state_dict({k: v.float() for k, v in load_file(str(ck / "G_ema.safetensors")).items()})
    D.load_state_dict({k: v.float() for k, v in load_file(str(ck / "D.safetensors")).items()})
    export_generator(G.eval(), D, disc_cfg, cfg, out)
    return Path(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--step", type=int, default=None)
    a = ap.parse_args(argv)
    try:
        print(f"exported {export_checkpoint(a.run_dir, a.out, a.step)}")
    except (TrainError, OSError) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

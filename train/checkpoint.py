"""Checkpoints and exports, written atomically.

Checkpoints are accelerate ``save_state`` folders (optimizers, scaler, every process's RNG) plus
the networks and EMA in safetensors and the step counters in JSON; each is written to a temporary
folder and renamed, and ``checkpoints/latest`` is replaced atomically, so a kill at any moment
leaves the previous checkpoint usable. Exports are what users load (``GenDeF.from_pretrained``).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Dict, Optional

import torch
import yaml

from train.errors import ConfigError

__all__ = ["Checkpointer", "write_atomic", "save_discriminator", "export_generator"]



# ----------------------------------------------------------------------------- checkpoints
class Checkpointer:
    """``output_dir/checkpoints/step-XXXXXXXX`` folders plus an atomically replaced ``latest`` file."""

    def __init__(self, output_dir, keep: int = 3):
        self.root = Path(output_dir) / "checkpoints"
        self.keep = int(keep)

    def latest(self) -> Optional[Path]:
        ptr = self.root / "latest"
        if ptr.is_file():
            p = self.root / ptr.read_text().strip()
            if (p / "train_state.json").is_file():
                return p
        # No pointer, or killed between renames: the newest complete checkpoint folder.
        done = [p for p in sorted(self.root.glob("step-*"), reverse=True) if (p / "train_state.json").is_file()]
        return done[0] if done else None

    def resolve(self, resume) -> Optional[Path]:
        if not resume:
            return None
        if str(resume) == "latest":
            return self.latest()
        p = Path(resume)
        if (p / "checkpoints" / "latest").is_file():
            return Checkpointer(p).latest()
        if not (p / "train_state.json").is_file():
            raise ConfigError(f"resume={resume}: not a checkpoint folder (no train_state.json)")
        return p

    def save(self, accelerator, step: int, modules: Dict[str, torch.nn.Module], state: dict) -> Path:
        final = self.root / f"step-{step:08d}"
        tmp = self.root / f".tmp-step-{step:08d}"
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        if accelerator.is_main_process:
            from safetensors.torch import save_file

            for name, m in modules.items():
                sd = {k: v.detach().contiguous().cpu() for k, v in m.state_dict().items()}
                save_file(sd, str(tmp / f"{name}.safetensors"))
            write_atomic(tmp / "train_state.json", json.dumps(state, indent=1))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            old = self.root / f".old-{final.name}"
            if final.exists():  # re-saving a step (resumed from an earlier one): swap, never delete first
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
            os.replace(tmp, final)
            write_atomic(self.root / "latest", final.name + "\n")
            shutil.rmtree(old, ignore_errors=True)
            self._prune(final)
        accelerator.wait_for_everyone()
        return final

    def _prune(self, current: Path) -> None:
        steps = sorted(p for p in self.root.glob("step-*") if p.is_dir())
        for p in steps[: max(0, len(steps) - self.keep)]:
            if p != current:
                shutil.rmtree(p, ignore_errors=True)
        for p in self.root.glob(".tmp-step-*"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)

    def load(self, accelerator, path: Path, modules: Dict[str, torch.nn.Module]) -> dict:
        from safetensors.torch import load_file

        accelerator.load_state(str(path))
        for name, m in modules.items():
            m.load_state_dict(load_file(str(path / f"{name}.safetensors"), device=str(accelerator.device)))
        return json.loads((path / "train_state.json").read_text())


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_discriminator(D: torch.nn.Module, disc_cfg: dict, folder) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    save_file({k: v.detach().contiguous().cpu() for k, v in D.state_dict().items()}, str(folder / "discriminator.safetensors"))
    write_atomic(folder / "discriminator_config.json", json.dumps(disc_cfg, indent=1))


def export_generator(G_ema, D, disc_cfg: dict, cfg: dict, folder) -> None:
    """What users load: ``GenDeF.from_pretrained(folder)``; stage 2 also reads the D weights."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    G_ema.refresh_w_avg()  # truncation needs the mean w; cheaper and exact at export time
    G_ema.save_pretrained(str(folder))
    save_discriminator(D, disc_cfg, folder)
    write_atomic(folder / "training_config.yaml", yaml.safe_dump(cfg, sort_keys=False))

"""Checkpoints and exports, written atomically.

Checkpoints are accelerate ``save_state`` folders (optimizers, scaler, every process's RNG) plus
the networks and EMA in safetensors and the step counters in JSON; each is written to a temporary
folder and renamed, and ``checkpoints/latest`` is replaced atomically, so a kill at any moment
leaves the previous checkpoint usable. Exports are what users load (``GenDeF.from_pretrained``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Dict, Optional

import torch
import yaml

from train.errors import CheckpointDamaged, ConfigError

__all__ = ["Checkpointer", "write_atomic", "save_discriminator", "export_generator", "verify_checkpoint", "MANIFEST",
           "RAW_GENERATOR"]



# ----------------------------------------------------------------------------- checkpoints
class Checkpointer:
    """``output_dir/checkpoints/step-XXXXXXXX`` folders plus an atomically replaced ``latest`` file."""

    def __init__(self, output_dir, keep: int = 3):
        self.root = Path(output_dir) / "checkpoints"
        self.keep = int(keep)
        self.damaged: list = []  # names latest() skipped as damaged

    def latest(self, report=None) -> Optional[Path]:
        """The newest checkpoint whose every file matches its manifest.

        A damaged newer one (truncated, emptied, missing files) is reported through ``report``
        (one line each) and skipped, so a crash while or after writing never blocks a resume.
        """
        damaged = []
        for p in self._candidates():
            problem = verify_checkpoint(p)
            if problem is None:
                return p
            damaged.append(p.name)
            if report is not None:
                report(f"warning: checkpoint {p} is damaged ({problem}); trying the previous one")
        self.damaged = damaged
        return None

    def _candidates(self):
        """``latest``'s target first (it may be a re-saved older step), then step-* newest first."""
        out = []
        ptr = self.root / "latest"
        if ptr.is_file():
            try:
                out.append(self.root / ptr.read_text().strip())
            except (OSError, UnicodeDecodeError):
                pass
        for p in sorted(self.root.glob("step-*"), reverse=True):
            if p.is_dir() and p not in out:
                out.append(p)
        return [p for p in out if p.name.startswith("step-") and p.is_dir()]

    def resolve(self, resume, report=None) -> Optional[Path]:
        if not resume:
            return None
        p = Path(resume)
        if str(resume) == "latest" or (p / "checkpoints").is_dir():
            ckpt = self if str(resume) == "latest" else Checkpointer(p)
            found = ckpt.latest(report)
            if found is None and ckpt.damaged:  # starting over would prune (delete) them: the user decides
                raise CheckpointDamaged(f"no intact checkpoint in {ckpt.root} ({', '.join(ckpt.damaged)} damaged); "
                                        "move them away to start from scratch")
            return found
        if not (p / "train_state.json").exists():
            raise ConfigError(f"resume={resume}: not a checkpoint folder (no train_state.json)")
        problem = verify_checkpoint(p)
        if problem:
            raise CheckpointDamaged(f"resume={resume}: checkpoint is damaged ({problem}); resume=latest uses the newest intact one")
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
        if accelerator.is_main_process:  # last: it vouches for every file written above
            write_atomic(tmp / MANIFEST, json.dumps(build_manifest(tmp), indent=1))
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

        rng = read_rng_state(path, accelerator.process_index)
        accelerator.load_state(str(path))
        check_rng_restored(path, rng)
        for name, m in modules.items():
            m.load_state_dict(load_file(str(path / f"{name}.safetensors"), device=str(accelerator.device)))
        return json.loads((path / "train_state.json").read_text())


# ----------------------------------------------------------------------------- manifest
MANIFEST = "manifest.json"


def build_manifest(folder: Path) -> dict:
    """{relative path: {"size", "sha256"}} of every file in ``folder`` (but the manifest)."""
    files = {}
    for f in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name != MANIFEST):
        files[f.relative_to(folder).as_posix()] = {"size": f.stat().st_size, "sha256": file_sha256(f)}
    return {"format": 1, "files": files}


def file_sha256(path: Path) -> str:
    """sha256 of a file, read 1 MiB at a time (manifests and state packs)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_checkpoint(folder: Path) -> Optional[str]:
    """None when every file of the checkpoint matches its manifest, else what is wrong (one line).

    Checkpoints written before manifests existed are accepted when train_state.json parses.
    """
    folder = Path(folder)
    try:
        state = json.loads((folder / "train_state.json").read_text())
        if not isinstance(state, dict) or "step" not in state:
            return "train_state.json has no step"
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return f"train_state.json unreadable: {e.__class__.__name__}"
    if not (folder / MANIFEST).is_file():
        return None  # written before manifests existed: nothing more to verify
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        return f"{MANIFEST} unreadable: {e.__class__.__name__}"
    for rel, meta in files.items():
        f = folder / rel
        if not f.is_file():
            return f"{rel} is missing"
        if f.stat().st_size != meta["size"]:
            return f"{rel} has {f.stat().st_size} bytes, the manifest says {meta['size']}"
        if file_sha256(f) != meta["sha256"]:
            return f"{rel} does not match its sha256"
    return None


def read_rng_state(path: Path, process_index: int) -> dict:
    """This process's saved RNG state, or a one-line error: a resume that cannot restore the
    random streams would silently train differently."""
    from accelerate.utils import load

    f = Path(path) / f"random_states_{process_index}.pkl"
    if not f.is_file():
        raise CheckpointDamaged(f"cannot resume from {path}: no RNG state for process {process_index} ({f.name}); "
                                "resume with the number of processes that wrote it")
    try:
        states = load(f, map_location="cpu")  # accelerate's loader: weights_only with numpy's RNG types allowed
        torch_state = states["torch_manual_seed"]
    except Exception as e:  # unpickling errors of every kind: the state cannot be restored
        raise CheckpointDamaged(f"cannot resume from {path}: RNG state {f.name} cannot be restored "
                                f"({e.__class__.__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})") from None
    return {"torch": torch_state}


def check_rng_restored(path: Path, rng: dict) -> None:
    if not torch.equal(torch.get_rng_state(), rng["torch"]):
        raise CheckpointDamaged(f"cannot resume from {path}: its RNG state was not restored (accelerate could not load it)")


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


RAW_GENERATOR = "generator_raw.safetensors"


def export_generator(G_ema, D, disc_cfg: dict, cfg: dict, folder, G_raw=None) -> None:
    """What users load: ``GenDeF.from_pretrained(folder)``; stage 2 also reads the D weights and,
    with ``init_weights: raw`` (the official stage-2 start), the raw G's (``G_raw``)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    G_ema.refresh_w_avg()  # truncation needs the mean w; cheaper and exact at export time
    G_ema.save_pretrained(str(folder))
    save_discriminator(D, disc_cfg, folder)
    if G_raw is not None:
        tmp = folder / (RAW_GENERATOR + ".tmp")
        save_file({k: v.detach().contiguous().cpu() for k, v in G_raw.state_dict().items()}, str(tmp))
        os.replace(tmp, folder / RAW_GENERATOR)
    write_atomic(folder / "training_config.yaml", yaml.safe_dump(cfg, sort_keys=False))

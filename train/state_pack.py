"""The state pack: everything a later sitting needs to continue a run, small enough to travel.

A pack is a folder of five files (safetensors + JSON only, no pickles):

    G.safetensors        the trained generator (fp32)
    G_ema.safetensors    the EMA generator: fp32 ("lossless") or bf16 of (G_ema - G) ("compact")
    D.safetensors        the discriminator: fp32 ("lossless") or bf16 ("compact")
    moments.safetensors  Adam's second moments and step counts of both optimisers: fp32 or bf16
    state.json           counters, ADA p and signs, RNG states (python, numpy, torch CPU, CUDA),
                         the train config, the precision and every file's size and sha256

Adam's first moments are not stored: with beta1 = 0 (``betas: [0.0, 0.99]``, D's beta1 ** c = 0)
Adam overwrites them with the gradient at the next step, so zeros are exact. A config with
beta1 != 0 is refused. Buffers (filters, counters, w_avg) are always stored as they are. The compact
choice (the default) fits sky128 in 43 MiB (train/README §9); "lossless" resumes bit-exactly.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from train.checkpoint import file_sha256
from train.errors import CheckpointDamaged, TrainError

__all__ = ["write_pack", "load_pack", "pack_sizes", "PACK_FILES", "PRECISIONS"]

PACK_FILES = ("G.safetensors", "G_ema.safetensors", "D.safetensors", "moments.safetensors", "state.json")
PRECISIONS = ("compact", "lossless")
FORMAT = 1


def _lossy(precision: str) -> bool:
    if precision not in PRECISIONS:
        raise TrainError(f"pack_precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision == "compact"


def _cast(sd: dict, bf16: bool, module=None) -> dict:
    """bf16 for the floating parameters when ``bf16``; buffers (filters, counters, w_avg) stay as they are."""
    params = set(dict(module.named_parameters())) if module is not None else set(sd)
    return {k: (v.detach().to(torch.bfloat16) if bf16 and k in params and v.is_floating_point() else v.detach())
            .contiguous().cpu() for k, v in sd.items()}


def pack_tensors(run, precision: str) -> dict:
    """{file name: {key: tensor}} of the pack's safetensors files, as they are written."""
    lossy = _lossy(precision)
    for opt in (run.opt_G, run.opt_D):
        if any(g["betas"][0] != 0 for g in opt.param_groups):
            raise TrainError("the state pack keeps no first moments, so it needs beta1 = 0 (betas: [0.0, ...])")
    g = run.G.state_dict()
    ema = run.G_ema.state_dict()
    if lossy:  # the EMA lies close to G: their difference keeps about 8 bits more than G_ema in bf16
        ema = {k: (v - g[k].to(v.dtype)) if v.is_floating_point() else v for k, v in ema.items()}
    moments = {}
    for name, opt in (("G", run.opt_G), ("D", run.opt_D)):
        for idx, st in opt.state_dict()["state"].items():
            moments[f"{name}.{idx}.exp_avg_sq"] = st["exp_avg_sq"]
            moments[f"{name}.{idx}.step"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1)
    return {"G.safetensors": _cast(g, False), "G_ema.safetensors": _cast(ema, lossy, run.G_ema),
            "D.safetensors": _cast(run.D.state_dict(), lossy, run.D),
            "moments.safetensors": {k: (v if k.endswith(".step") else _cast({k: v}, lossy)[k]).contiguous().cpu()
                                    for k, v in moments.items()}}


def _rng_state() -> dict:
    py = random.getstate()
    npv = np.random.get_state()
    out = {"python": [py[0], list(py[1]), py[2]],
           "numpy": [npv[0], npv[1].tolist(), int(npv[2]), int(npv[3]), float(npv[4])],
           "torch": torch.get_rng_state().tolist()}
    if torch.cuda.is_available():
        out["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return out


def _set_rng_state(rng: dict) -> None:
    random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))
    n = rng["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(torch.tensor(rng["torch"], dtype=torch.uint8))
    if "cuda" in rng and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in rng["cuda"]])


def write_pack(run, folder, precision: str = "compact") -> Path:
    """Write the pack of ``run`` (a set-up ``train.run.Run``) into ``folder``, atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, tensors in pack_tensors(run, precision).items():
        save_file(tensors, str(tmp / name))
    files = {n: {"size": (tmp / n).stat().st_size, "sha256": file_sha256(tmp / n)} for n in PACK_FILES[:-1]}
    state = {"format": FORMAT, "precision": precision, "stage": run.stage,
             "state": dict(run.state, ada_signs=[float(v) for v in run.ada.signs]), "ada_p": float(run.ada.p),
             "rng": _rng_state(), "config": run.cfg, "files": files}
    (tmp / "state.json").write_text(json.dumps(state))
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder



def read_pack_state(folder) -> dict:
    """state.json after checking every file against its size and sha256; one-line error otherwise."""
    folder = Path(folder)
    try:
        state = json.loads((folder / "state.json").read_text())
        files = state["files"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise CheckpointDamaged(f"state pack {folder} is damaged: state.json unreadable ({e.__class__.__name__})") from None
    for name in PACK_FILES[:-1]:
        f, meta = folder / name, files.get(name, {})
        if not f.is_file():
            raise CheckpointDamaged(f"state pack {folder} is damaged: {name} is missing")
        if f.stat().st_size != meta.get("size") or file_sha256(f) != meta.get("sha256"):
            raise CheckpointDamaged(f"state pack {folder} is damaged: {name} does not match its size/sha256")
    return state


def load_pack(run, folder) -> dict:
    """Restore networks, Adam's moments, ADA and RNG from ``folder``; returns the counters (run.state)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    meta = read_pack_state(folder)
    if meta.get("stage") != run.stage:
        raise TrainError(f"state pack {folder} is a {meta.get('stage')} pack; resume it with train/{meta.get('stage')}.py")
    dev = str(run.device)
    t = {n: load_file(str(folder / n), device=dev) for n in PACK_FILES[:-1]}
    try:
        _load_module(run.G, t["G.safetensors"])
        g = run.G.state_dict()
        ema = t["G_ema.safetensors"]
        if meta["precision"] == "compact":
            ema = {k: (v.to(g[k].dtype) + g[k]) if v.is_floating_point() else v for k, v in ema.items()}
        _load_module(run.G_ema, ema)
        _load_module(run.D, t["D.safetensors"])
        for name, opt in (("G", run.opt_G), ("D", run.opt_D)):
            _load_moments(opt, name, t["moments.safetensors"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise TrainError(f"cannot resume from state pack {folder}: it does not match this config "
                         f"({str(e).splitlines()[0][:200]})") from None
    run.ada.p = float(meta["ada_p"])
    run.ada.signs = [torch.tensor(v) for v in meta["state"].get("ada_signs", [])]
    _set_rng_state(meta["rng"])
    return meta["state"]


def _load_module(module: torch.nn.Module, sd: dict) -> None:
    own = module.state_dict()
    module.load_state_dict({k: v.to(own[k].dtype) if k in own else v for k, v in sd.items()})


def _load_moments(opt, name: str, moments: dict) -> None:
    sd = opt.state_dict()
    params = [p for group in opt.param_groups for p in group["params"]]
    state = {}
    for idx, p in enumerate(params):
        key = f"{name}.{idx}.exp_avg_sq"
        if key not in moments:
            continue
        if moments[key].shape != p.shape:
            raise ValueError(f"{key} has shape {tuple(moments[key].shape)}, the parameter {tuple(p.shape)}")
        state[idx] = {"step": moments[f"{name}.{idx}.step"].reshape(()).to("cpu", torch.float32),
                      "exp_avg": torch.zeros_like(p), "exp_avg_sq": moments[key].to(p.dtype)}
    opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})


def pack_sizes(folder) -> dict:
    """{file: bytes} of a written pack, for the size limits (<= 7 files, <= 16 MiB each, <= 48 MiB)."""
    return {p.name: p.stat().st_size for p in sorted(Path(folder).iterdir()) if p.is_file()}


def export_pack(pack, folder) -> Path:
    """The pack's G_ema as a ``GenDeF.from_pretrained`` folder (config.json + model.safetensors)."""
    from safetensors.torch import load_file

    from gendef import GenDeF

    pack, folder = Path(pack), Path(folder)
    meta = read_pack_state(pack)
    G = GenDeF(**meta["config"]["model"])
    g = load_file(str(pack / "G.safetensors"))
    ema = load_file(str(pack / "G_ema.safetensors"))
    if meta["precision"] == "compact":
        ema = {k: (v.to(g[k].dtype) + g[k]) if v.is_floating_point() else v for k, v in ema.items()}
    _load_module(G, ema)
    G.refresh_w_avg()
    G.save_pretrained(str(folder))
    return folder

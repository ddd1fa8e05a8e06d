"""A small fingerprint of the shipped default model: its files and what it samples, to compare bit for bit.

``tests/test_default_checkpoint.py`` recomputes it and compares with ``tests/default_fingerprint.json``;
``python -m benchmarks.default_card MODEL --install`` rewrites that file when it swaps the model in.
Stored per seed (``SEEDS``, ``FRAMES`` frames): the sha256 of the canonical image and of the grid
(float32 bytes) and a probe of each (every ``side // 8``-th pixel; the grid at the first and last frame)
as exact float32 values. The sha256 of ``config.json`` and ``model.safetensors`` come first, so a
model swapped in without a new fingerprint reads as that, not as a sampling change.

On the platform that wrote it (torch version and CPU capability, ``platform()``), sampling must be
bit-identical; elsewhere the probes must agree within ``ATOL`` (another CPU kernel may round differently).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from train.checkpoint import file_sha256

__all__ = ["FINGERPRINT", "SEEDS", "FRAMES", "ATOL", "platform", "fingerprint", "write_fingerprint", "fingerprint_problems"]

FINGERPRINT = Path(__file__).resolve().parents[1] / "tests" / "default_fingerprint.json"
FILES = ("config.json", "model.safetensors")
SEEDS = (0, 1)
FRAMES = 16
ATOL = 1e-4


def platform() -> str:
    import torch

    return f"torch {torch.__version__}, cpu {torch.backends.cpu.get_cpu_capability()}"


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.float32).tobytes()).hexdigest()


def _probes(video, side: int) -> dict:
    step = max(1, side // 8)
    return {"canonical_probe": video.canonical[::step, ::step].astype(np.float32).ravel().tolist(),
            "grid_probe": video.grid[[0, -1], ::step, ::step].astype(np.float32).ravel().tolist()}


def fingerprint(folder) -> dict:
    """The fingerprint of the save_pretrained folder ``folder`` (sampled on the CPU)."""
    from gendef import GenDeF

    folder = Path(folder)
    model = GenDeF.from_pretrained(folder)
    samples = []
    for seed in SEEDS:
        v = model.sample(seed=seed, num_frames=FRAMES)
        samples.append({"seed": seed, "canonical_sha256": _sha(v.canonical), "grid_sha256": _sha(v.grid),
                        **_probes(v, model.resolution)})
    return {"files": {name: file_sha256(folder / name) for name in FILES}, "resolution": model.resolution,
            "platform": platform(), "frames": FRAMES, "samples": samples}


def write_fingerprint(folder, out: Path = FINGERPRINT) -> Path:
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(fingerprint(folder)) + "\n")
    os.replace(tmp, out)
    return out


def fingerprint_problems(folder, stored: dict) -> list:
    """One line per difference between ``folder`` now and the ``stored`` fingerprint; [] when none."""
    now = fingerprint(folder)
    changed = [n for n in FILES if now["files"][n] != stored["files"].get(n)]
    if changed:
        return [f"{', '.join(changed)} differ from the fingerprint: a model swapped in without "
                "`python -m benchmarks.default_card MODEL --install`, or the files were altered"]
    exact = now["platform"] == stored["platform"]
    out = []
    for a, b in zip(now["samples"], stored["samples"]):
        for part in ("canonical", "grid"):
            if exact and a[f"{part}_sha256"] != b[f"{part}_sha256"]:
                out.append(f"seed {a['seed']}: the {part} is not bit-identical on {now['platform']}")
            pa, pb = np.asarray(a[f"{part}_probe"]), np.asarray(b[f"{part}_probe"])
            err = np.abs(pa - pb).max() if pa.shape == pb.shape else np.inf
            if not err <= ATOL:
                out.append(f"seed {a['seed']}: the {part} moved by up to {err:.3g} (tolerance {ATOL} across platforms)")
    if len(now["samples"]) != len(stored["samples"]):
        out.append("the fingerprint holds a different number of samples")
    return out

"""The speed switches of issue 20, applied to a run's networks and optimizers.

Each switch is a train config key (train/config.py, train/README 8); ``benchmarks/gpu_ladder.py``
turns them on one at a time and says which combination it would choose on a GPU.

- ``adam``: Adam's implementation (auto = fused on CUDA, torch's default elsewhere).
- ``channels_last``: 4-D weights in channels_last memory format (tensor cores prefer NHWC).
- ``compile`` / ``compile_backend``: ``torch.compile`` of G_c and D in place. R1's double
  backward cannot go through a compiled graph, so the R1 steps run eager (:func:`eager`).
- ``checkpoint_deformation``: stage 2 recomputes the per-frame G_d + warp in the backward.
- ``cpu_threads``: a CPU run's intra-op threads (0 = torch's default, one per core). On the shared
  2-core VM two OpenMP threads wait on each other whenever the other jobs take a core: one thread
  trained sky64 with 5.5x (stage 1) and 2.9x (stage 2) less CPU time than two
  (``benchmarks/cpu_ladder.py``, train/README 8).
"""
from __future__ import annotations

import contextlib

import torch

__all__ = ["adam_kwargs", "apply_switches", "apply_threads", "eager"]

_TORCH_THREADS = torch.get_num_threads()  # torch's own default, before a run changes it


def apply_threads(cfg: dict, device) -> int:
    """A CPU run's intra-op threads from ``cfg["cpu_threads"]`` (0 = torch's default); returns the count
    before, for :meth:`Run.close` to restore (a run in a longer process leaves its threads as it found them)."""
    before = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(int(cfg.get("cpu_threads", 0)) or _TORCH_THREADS)
    return before


def adam_kwargs(cfg: dict, device) -> dict:
    """Keyword arguments for ``torch.optim.Adam`` from ``cfg["adam"]``."""
    choice = cfg.get("adam", "auto")
    if choice == "auto":
        choice = "fused" if torch.device(device).type == "cuda" else "default"
    return {"fused": {"fused": True}, "foreach": {"foreach": True}, "loop": {"foreach": False}}.get(choice, {})


def apply_switches(cfg: dict, G: torch.nn.Module, D: torch.nn.Module) -> None:
    """channels_last, checkpointing and torch.compile on G (G_c) and D, as the config says."""
    if cfg.get("channels_last"):
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    if hasattr(G, "checkpoint_deformation"):
        G.checkpoint_deformation = bool(cfg.get("checkpoint_deformation", False))
    if cfg.get("compile"):
        backend = cfg.get("compile_backend", "inductor")
        canonical = getattr(G, "canonical", G)
        canonical.compile(backend=backend, dynamic=False)
        D.compile(backend=backend, dynamic=False)


def eager(active: bool = True):
    """A context in which compiled modules run their eager code (R1's double backward).

    ``torch.compiler.set_stance`` exists from torch 2.6; without it compiled code stays on."""
    stance = getattr(torch.compiler, "set_stance", None)
    if not active or stance is None:
        return contextlib.nullcontext()
    return stance("force_eager")

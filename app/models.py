"""Model loading glue: one cached instance per checkpoint id, shared by all sessions.

Sampling is read-only on the networks, so sharing one instance across sessions is
safe and keeps memory flat; the lock only serialises the (slow) first load.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from gendef.errors import ModelUnavailable

DEFAULT_CHECKPOINT = "checkpoints/default"
DEMO_CHECKPOINT = "untrained-demo"
DEMO_RESOLUTION = 64
DEMO_SEED = 0

REPO_ROOT = Path(__file__).resolve().parent.parent

_CACHE: dict = {}
_LOCK = threading.Lock()


@dataclass
class LoadedModel:
    model: Any
    checkpoint: str
    untrained: bool

    @property
    def notice(self) -> str:
        if self.untrained:
            return (
                f"**Untrained demo model** ({self.model.resolution}x{self.model.resolution}, random weights, "
                f"seed {DEMO_SEED}): the shipped checkpoint `{DEFAULT_CHECKPOINT}` is not present, so videos "
                "show noise with little or no motion. Editing, segmentation, tracking and export all work the same way."
            )
        return f"Model: `{self.checkpoint}` ({self.model.resolution}x{self.model.resolution})"


def default_checkpoint() -> str:
    """``--checkpoint`` / ``GENDEF_CHECKPOINT`` override the shipped default."""
    return os.environ.get("GENDEF_CHECKPOINT") or DEFAULT_CHECKPOINT


def _build_demo():
    import torch

    from gendef import GenDeF

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DEMO_SEED)
        model = GenDeF(resolution=DEMO_RESOLUTION)
    return model.eval()


def _resolve(checkpoint: str) -> Path:
    """Relative folders are looked up in the working directory, then next to app.py."""
    path = Path(checkpoint).expanduser()
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        return REPO_ROOT / path
    return path


def _load(checkpoint: str):
    from gendef import GenDeF

    path = _resolve(checkpoint)
    name = str(path) if path.exists() else checkpoint
    try:
        return GenDeF.from_pretrained(name).eval()
    except Exception as e:  # CheckpointError already carries a user-facing message
        raise ModelUnavailable(str(e).splitlines()[0] if str(e) else f"{checkpoint}: cannot load") from None


def get_model(checkpoint: Optional[str] = None, progress: Optional[Callable] = None) -> LoadedModel:
    """Load (once) and return the model for ``checkpoint``.

    Only the shipped default falls back to the untrained demo model when missing;
    a checkpoint the user typed must exist, or they would silently get noise.
    """
    checkpoint = (checkpoint or "").strip() or default_checkpoint()
    key = checkpoint
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        if progress:
            progress(0.05, desc=f"loading {checkpoint}")
        if checkpoint in (DEFAULT_CHECKPOINT, DEMO_CHECKPOINT) and not (_resolve(checkpoint) / "config.json").is_file():
            loaded = LoadedModel(_build_demo(), DEMO_CHECKPOINT, untrained=True)
        else:
            loaded = LoadedModel(_load(checkpoint), checkpoint, untrained=False)
        _CACHE[key] = loaded
        return loaded


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()

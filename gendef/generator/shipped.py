"""Where the shipped default model lives: the one answer for the CLI and the studio."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "DEFAULT_CHECKPOINT", "default_checkpoint", "default_checkpoint_path"]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHECKPOINT = "checkpoints/default"  # relative to the repository root


def default_checkpoint() -> str:
    """The checkpoint used when none is named: ``GENDEF_CHECKPOINT`` if set, else the shipped one."""
    return os.environ.get("GENDEF_CHECKPOINT") or DEFAULT_CHECKPOINT


def default_checkpoint_path() -> Path:
    """The shipped default's folder (config.json + model.safetensors)."""
    return REPO_ROOT / DEFAULT_CHECKPOINT

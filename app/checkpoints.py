"""What a name in the Checkpoint box loads, and who may type what.

Loading only: the loaded models are kept by ``app.services.Services`` (one instance per
checkpoint, shared by all sessions).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from gendef.errors import ModelUnavailable
from gendef.generator.shipped import DEFAULT_CHECKPOINT, REPO_ROOT, default_checkpoint

DEMO_CHECKPOINT = "untrained-demo"
DEMO_RESOLUTION = 64
DEMO_SEED = 0


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


# Who may type what into the Checkpoint box. Locally (loopback): any folder or Hub id. Served to
# others (--host other than loopback, --share, or on a Space): only the launch default, folders
# inside checkpoints/ and Hub ids, and every refusal or failure reads the same, so answers never
# reveal which paths exist on the server.
REFUSED = (
    "Checkpoint not available. Use the default, the name of a folder inside checkpoints/, "
    "or a Hugging Face Hub id (owner/name)."
)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_CHECKPOINTS_NAME = re.compile(r"(?:checkpoints/)?([A-Za-z0-9][A-Za-z0-9_.-]{0,99})")
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")


def is_served(host: str = "127.0.0.1", share: bool = False) -> bool:
    """Whether the launch options serve the studio beyond loopback (then the box is restricted)."""
    return bool(share) or not (str(host) in _LOOPBACK or str(host).startswith("127."))


def _public_target(checkpoint: str) -> str:
    """What a public studio may load for ``checkpoint``, or ModelUnavailable(REFUSED)."""
    if checkpoint in (default_checkpoint(), DEFAULT_CHECKPOINT, DEMO_CHECKPOINT):
        return checkpoint
    m = _CHECKPOINTS_NAME.fullmatch(checkpoint)
    if m and ".." not in checkpoint and (REPO_ROOT / "checkpoints" / m.group(1)).is_dir():
        return str(REPO_ROOT / "checkpoints" / m.group(1))
    local = Path(checkpoint).exists() or (REPO_ROOT / checkpoint).exists()  # a Hub id must not name a local folder
    if _HUB_ID.fullmatch(checkpoint) and ".." not in checkpoint and not local:
        return checkpoint
    raise ModelUnavailable(REFUSED)


def _load(checkpoint: str):
    from gendef import GenDeF

    path = _resolve(checkpoint)
    name = str(path) if path.exists() else checkpoint
    try:
        return GenDeF.from_pretrained(name).eval()
    except Exception as e:  # CheckpointError already carries a user-facing message
        raise ModelUnavailable(str(e).splitlines()[0] if str(e) else f"{checkpoint}: cannot load") from None


def load_model(checkpoint: str, public: bool, progress: Optional[Callable] = None) -> LoadedModel:
    """Load the model for ``checkpoint`` (a name already stripped; no caching here).

    Only the shipped default falls back to the untrained demo model when missing;
    a checkpoint the user typed must exist, or they would silently get noise.
    """
    if progress:
        progress(0.05, desc=f"loading {checkpoint}")
    if checkpoint in (DEFAULT_CHECKPOINT, DEMO_CHECKPOINT) and not (_resolve(checkpoint) / "config.json").is_file():
        return LoadedModel(_build_demo(), DEMO_CHECKPOINT, untrained=True)
    if public:
        try:
            return LoadedModel(_load(_public_target(checkpoint)), checkpoint, untrained=False)
        except ModelUnavailable:
            raise ModelUnavailable(REFUSED) from None
    return LoadedModel(_load(checkpoint), checkpoint, untrained=False)


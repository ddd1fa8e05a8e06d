"""Detector weights: resolved from a local path, a URL or a Hugging Face hub id into a cache
on first use (never at import), and read without unpickling arbitrary objects."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ..errors import MetricsError

__all__ = ["cache_dir", "resolve_weights", "load_state_dict_file"]


def cache_dir() -> Path:
    root = os.environ.get("GENDEF_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gendef")
    return Path(root) / "metrics"


def resolve_weights(source: str, default_filename: Optional[str] = None) -> Path:
    """Local file, ``http(s)://`` URL (downloaded once into :func:`cache_dir`), or hub id
    ``owner/repo`` / ``owner/repo/file.safetensors``."""
    if not source:
        raise MetricsError("no detector weights given")
    p = Path(os.path.expanduser(str(source)))
    if p.is_file():
        return p
    if str(source).startswith(("http://", "https://")):
        import torch.hub

        dst = cache_dir() / Path(str(source).split("?")[0]).name
        if not dst.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.name + ".part")
            try:
                torch.hub.download_url_to_file(str(source), str(tmp), progress=True)
            except Exception as e:
                raise MetricsError(f"cannot download detector weights from {source}: {e}") from None
            tmp.replace(dst)
        return dst
    parts = str(source).strip("/").split("/")
    if len(parts) < 2 or p.exists() or str(source).startswith((".", "/", "~")):
        raise MetricsError(f"detector weights {source!r}: not a file, URL or hub id owner/repo[/file]")
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:]) or default_filename
    if not filename:
        raise MetricsError(f"hub id {source!r} needs a file name: owner/repo/weights.safetensors")
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo, filename, cache_dir=str(cache_dir() / "hub")))
    except Exception as e:
        raise MetricsError(f"cannot fetch detector weights {repo}/{filename} from the hub: {type(e).__name__}: {e}") from None


def load_state_dict_file(path) -> dict:
    """safetensors, or a plain torch state dict loaded with ``weights_only=True``."""
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise MetricsError(f"{path}: not a plain tensor state dict ({type(e).__name__}: {e})") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise MetricsError(f"{path}: expected a state dict, got {type(sd).__name__}")
    return sd

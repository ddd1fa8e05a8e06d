"""Video generation metrics: Fréchet distance, FID (Inception-v3) and FVD (I3D), plus offline ones.

- StyleGAN-V's protocols with the published TorchScript detectors (``stylegan_v``, ``torchscript``):
  ``fid50k_full``, ``fvd2048_16f``, ``fvd2048_128f``, ``fvd2048_128f_subsample8f``.
- torchvision / state-dict alternatives (``fid``, ``fvdN``; not comparable with published numbers).
- No download at all: ``swd`` (ProGAN's sliced Wasserstein distance on Laplacian pyramids) and
  ``motion`` (speed, jerk, drift/sway ratio from optical flow).

Detectors are fetched on first use (path, URL or hub file), never at import.
CLI: ``python -m gendef.metrics --checkpoint CKPT --data DATA --metrics fid50k_full,fvd2048_16f``.
"""
from .frechet import feature_stats, frechet_distance, frechet_distance_from_features

__all__ = [
    "feature_stats",
    "frechet_distance",
    "frechet_distance_from_features",
    "evaluate",
    "fid",
    "fvd",
    "PROTOCOL",
    "InceptionFeatures",
    "I3DFeatures",
    "InceptionI3d",
    "load_detector",
    "clip_motion",
    "flow_stats",
]


def __getattr__(name):
    if name in ("evaluate", "fid", "fvd", "PROTOCOL"):
        from . import evaluation as _ev

        return getattr(_ev, name)
    if name == "InceptionFeatures":
        from .inception import InceptionFeatures

        return InceptionFeatures
    if name in ("I3DFeatures", "InceptionI3d"):
        from . import i3d

        return getattr(i3d, name)
    if name == "load_detector":
        from .torchscript import load_detector

        return load_detector
    if name in ("clip_motion", "flow_stats"):
        from . import motion_stats

        return getattr(motion_stats, name)
    raise AttributeError(f"module 'gendef.metrics' has no attribute {name!r}")

"""Video generation metrics: Fréchet distance, FID (Inception-v3) and FVD (I3D).

Detector weights are fetched on first use (path, URL or hub id), never at import.
CLI: ``python -m gendef.metrics --checkpoint CKPT --data DATA --metrics fid,fvd16``.
"""
from .frechet import feature_stats, frechet_distance, frechet_distance_from_features
from .weights import MetricsError

__all__ = [
    "MetricsError",
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
    raise AttributeError(f"module 'gendef.metrics' has no attribute {name!r}")

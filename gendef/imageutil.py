"""The one uint8 <-> float converter pair, and the one place that composites an RGBA edit.

Float images are float32 in [0, 1]; uint8 images are 0..255 (rounded, not truncated).
"""
from __future__ import annotations

import numpy as np

__all__ = ["to_float01", "to_uint8", "composite_over"]


def to_float01(image) -> np.ndarray:
    """uint8 (/255), uint16 (/65535), bool (0/1) or float -> float32 in [0, 1] (floats are clipped)."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if a.dtype == bool:
        return a.astype(np.float32)
    return np.clip(a.astype(np.float32, copy=False), 0.0, 1.0)


def to_uint8(image) -> np.ndarray:
    """Float in [0, 1] (clipped) -> uint8 with rounding; uint8 passes through unchanged."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a
    return (np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def composite_over(base, rgba) -> np.ndarray:
    """Straight-alpha RGBA layer [..., 4] over an RGB image [..., 3] -> float32 RGB in [0, 1]."""
    layer = to_float01(rgba)
    alpha = layer[..., 3:4]
    return (layer[..., :3] * alpha + to_float01(base) * (1.0 - alpha)).astype(np.float32)

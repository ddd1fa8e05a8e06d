"""The one uint8 <-> float converter pair, and the one place that composites an RGBA edit.

Float images are float32 in [0, 1]; uint8 images are 0..255 (rounded, not truncated).
"""
from __future__ import annotations

import numpy as np

__all__ = ["to_float01", "to_uint8", "composite_over"]


def to_float01(image) -> np.ndarray:
    """uint8 (/255), uint16 (/65535) or bool (0/1) -> float32 in [0, 1]; other arrays are cast to float32
    unchanged (not clipped: a float image may carry anything, e.g. coordinates)."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if a.dtype == bool:
        return a.astype(np.float32)
    return a.astype(np.float32, copy=False)


def to_uint8(image) -> np.ndarray:
    """Float in [0, 1] (clipped) -> uint8 with rounding; uint8 passes through unchanged."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a
    return (np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def composite_over(base, rgba) -> np.ndarray:
    """Straight-alpha RGBA layer [..., 4] over an RGB image [..., 3] -> float32 RGB in [0, 1]."""
    layer = np.clip(to_float01(rgba), 0.0, 1.0)
    alpha = layer[..., 3:4]
    return np.clip(layer[..., :3] * alpha + to_float01(base) * (1.0 - alpha), 0.0, 1.0).astype(np.float32)

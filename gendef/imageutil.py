"""The one uint8 <-> float converter pair, and the one place that composites an RGBA edit.

Float images are float32 in [0, 1]; uint8 images are 0..255 (rounded, not truncated).
"""
from __future__ import annotations

import numpy as np

from .errors import UsageError

__all__ = ["to_float01", "to_uint8", "rgb_uint8", "composite_over"]


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


def rgb_uint8(image, min_side: int = 1) -> np.ndarray:
    """An editor's input image -> contiguous uint8 RGB [H, W, 3]: grey is repeated, alpha dropped,
    floats (in [0, 1]) converted; a wrong shape or NaN/inf is a one-line UsageError."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or min(a.shape[:2]) < min_side:
        raise UsageError(f"image must be RGB shaped [H, W, 3], got {tuple(a.shape)}")
    a = a[..., :3]
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    f = a.astype(np.float32)
    if not np.all(np.isfinite(f)):
        raise UsageError("image contains NaN or inf")
    return to_uint8(f)


def composite_over(base, rgba) -> np.ndarray:
    """Straight-alpha RGBA layer [..., 4] over an RGB image [..., 3] -> float32 RGB in [0, 1]."""
    layer = np.clip(to_float01(rgba), 0.0, 1.0)
    alpha = layer[..., 3:4]
    return np.clip(layer[..., :3] * alpha + to_float01(base) * (1.0 - alpha), 0.0, 1.0).astype(np.float32)

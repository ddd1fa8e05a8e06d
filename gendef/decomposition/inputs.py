"""Input checks for the decomposer: frames, working size, memory, clip files."""
from __future__ import annotations

import os
from typing import Optional

import cv2
import numpy as np

from ..errors import DecomposeError
from ..imageutil import to_float01

# Bytes per working-resolution frame pixel (frames, flows, grids, optimiser state):
# the measured peak is about 180 (1.5 GB for 128 frames at 256x256); the rest is head-room.
BYTES_PER_PIXEL = 240


def as_float_frames(frames) -> np.ndarray:
    """[T, H, W, 3|4] uint8 or float -> float32 RGB in [0, 1]."""
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] not in (3, 4):
        raise DecomposeError(f"frames must be shaped [T, H, W, 3], got {tuple(a.shape)}")
    a = a[..., :3]
    if a.dtype == np.uint8:
        return to_float01(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise DecomposeError(f"frames must be uint8 or float in [0, 1], got dtype {a.dtype}")
    a = a.astype(np.float32)
    if not np.all(np.isfinite(a)):
        raise DecomposeError("frames contain NaN or inf")
    return np.clip(a, 0.0, 1.0)


def working_size(height: int, width: int, size: Optional[int]) -> tuple:
    """(H, W) with the long side equal to ``size`` (aspect kept); None keeps the input."""
    if size is None:
        return int(height), int(width)
    if size < 16:
        raise DecomposeError(f"size must be at least 16, got {size}")
    s = size / max(height, width)
    return max(2, int(round(height * s))), max(2, int(round(width * s)))


def resize_frames(frames: np.ndarray, hw: tuple) -> np.ndarray:
    """Resize [T, H, W, C] with INTER_AREA (the reference the PSNR target is defined against)."""
    h, w = hw
    if frames.shape[1:3] == (h, w):
        return frames
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])


def working_frames(frames, hw: tuple) -> np.ndarray:
    """``resize_frames(as_float_frames(frames), hw)``, a frame at a time: the same numbers, without a
    float copy of full-size frames (a 1080p clip of 128 uint8 frames would need 3.2 GB as float32)."""
    a = np.asarray(frames)
    as_float_frames(a[:0])  # shape and dtype checked before any work
    h, w = hw
    out = np.empty((a.shape[0], h, w, 3), np.float32)
    for t in range(a.shape[0]):
        out[t] = resize_frames(as_float_frames(a[t : t + 1]), hw)[0]
    return out


def available_memory() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return 8 << 30


def check_memory(num_frames: int, height: int, width: int, canvas_scale: float) -> None:
    need = num_frames * height * width * BYTES_PER_PIXEL + int((height + width) ** 2 * canvas_scale**2 * 3 * 4 * 8)
    have = available_memory()
    if need > 0.6 * have:
        raise DecomposeError(
            f"clip too large for memory: {num_frames} frames at {width}x{height} need about "
            f"{need / 2**30:.1f} GiB, {have / 2**30:.1f} GiB free; use fewer frames (--frames) or a smaller --size"
        )

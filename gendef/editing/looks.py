"""Offline "looks" for the canonical image (OpenCV only, no weights, deterministic).

They keep the Stylize editor useful when the diffusion weights are missing:
restyling the canonical image and propagating it still gives a consistent video.
"""
from __future__ import annotations

from typing import Callable, Dict

import cv2
import numpy as np

from ..errors import UsageError
from ..imageutil import to_float01, to_uint8

__all__ = ["LOOKS", "apply_look"]


def _photo(fn: Callable) -> Callable:
    """Run an OpenCV photo filter (BGR uint8) on a float RGB image."""

    def run(img: np.ndarray) -> np.ndarray:
        bgr = cv2.cvtColor(to_uint8(img), cv2.COLOR_RGB2BGR)
        return to_float01(cv2.cvtColor(fn(bgr), cv2.COLOR_BGR2RGB))

    return run


def _pencil_gray(bgr):
    gray, _ = cv2.pencilSketch(bgr, sigma_s=40, sigma_r=0.08, shade_factor=0.04)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def _pencil_color(bgr):
    return cv2.pencilSketch(bgr, sigma_s=40, sigma_r=0.08, shade_factor=0.04)[1]


def _cartoon(img: np.ndarray) -> np.ndarray:
    """Flat colour regions (bilateral smoothing + quantisation) with dark outlines."""
    u8 = to_uint8(img)
    smooth = u8
    for _ in range(3):
        smooth = cv2.bilateralFilter(smooth, 7, 40, 7)
    levels = 6.0
    flat = np.floor(to_float01(smooth) * levels) / (levels - 1)
    gray = cv2.medianBlur(cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY), 5)
    block = max(3, (min(img.shape[:2]) // 16) | 1)
    edges = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, 4)
    return np.clip(flat, 0.0, 1.0) * (to_float01(edges)[..., None])


def _grade(gains, lift=(0.0, 0.0, 0.0)) -> Callable:
    g = np.asarray(gains, np.float32)
    b = np.asarray(lift, np.float32)

    def run(img: np.ndarray) -> np.ndarray:
        return img * g + b

    return run


def _vintage(img: np.ndarray) -> np.ndarray:
    """Sepia tone, faded blacks and a soft vignette."""
    sepia = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)
    out = img @ sepia.T
    out = 0.08 + 0.86 * out
    h, w = img.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot((xs - (w - 1) / 2) / max(w / 2, 1), (ys - (h - 1) / 2) / max(h / 2, 1))
    return out * (1.0 - 0.35 * np.clip(r - 0.4, 0.0, 1.0))[..., None]


def _high_contrast(img: np.ndarray) -> np.ndarray:
    """Local contrast (CLAHE on lightness) plus a global S-curve."""
    lab = cv2.cvtColor(to_uint8(img), cv2.COLOR_RGB2LAB)
    tiles = max(1, min(8, min(img.shape[:2]) // 8))
    lab[..., 0] = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(tiles, tiles)).apply(lab[..., 0])
    out = to_float01(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))
    return out + 0.6 * (out - 0.5) * (1.0 - np.abs(2.0 * out - 1.0))


_LOOKS: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "stylization": _photo(lambda b: cv2.stylization(b, sigma_s=60, sigma_r=0.45)),
    "pencil sketch": _photo(_pencil_gray),
    "color pencil": _photo(_pencil_color),
    "cartoon": _cartoon,
    "edge-preserving": _photo(lambda b: cv2.edgePreservingFilter(b, flags=cv2.RECURS_FILTER, sigma_s=60, sigma_r=0.4)),
    "detail enhance": _photo(lambda b: cv2.detailEnhance(b, sigma_s=10, sigma_r=0.15)),
    "warm grade": _grade((1.12, 1.02, 0.82), (0.03, 0.01, 0.0)),
    "cool grade": _grade((0.85, 1.0, 1.15), (0.0, 0.01, 0.03)),
    "vintage": _vintage,
    "high contrast": _high_contrast,
}
LOOKS = list(_LOOKS)


def apply_look(image, name: str, strength: float = 1.0) -> np.ndarray:
    """Apply look ``name``, blended with the input by ``strength`` in [0, 1]; float32 [H, W, 3]."""
    key = str(name).strip().lower()
    if key not in _LOOKS:
        raise UsageError(f"unknown look {name!r}; choose one of: {', '.join(LOOKS)}")
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.shape[0] < 2 or img.shape[1] < 2:
        raise UsageError(f"image must be RGB shaped [H, W, 3], got {tuple(img.shape)}")
    img = to_float01(img[..., :3])
    if not np.all(np.isfinite(img)):
        raise UsageError("image contains NaN or inf")
    img = np.clip(img, 0.0, 1.0)
    s = float(strength)
    if not np.isfinite(s) or not 0.0 <= s <= 1.0:
        raise UsageError(f"strength must be in [0, 1], got {strength}")
    styled = np.clip(_LOOKS[key](np.ascontiguousarray(img)), 0.0, 1.0)
    return np.clip((1.0 - s) * img + s * styled, 0.0, 1.0).astype(np.float32)

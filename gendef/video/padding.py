"""What a video shows outside its canonical image: ``padding``, one of the generator's ``warp_padding`` names.

A CanonicalVideo renders the way the model that made it was trained (``GenDeF.warp``):

* ``black``: 0 (cv2.BORDER_CONSTANT 0; the default, and every file written before ``padding`` existed);
* ``grey``: 0.5 in [0, 1] for colour (0 in [-1, 1], the official GenDeF; 128 for uint8);
* ``border``: the nearest edge pixel (cv2.BORDER_REPLICATE; grid_sample's ``padding_mode="border"``).

The rule for canonical-space images that are not colours (masks, overlays' premultiplied colour
and alpha, labels, any other channels): ``black`` and ``grey`` give 0 (nothing of a mask or an
overlay lies outside the canvas), ``border`` replicates the edge like the colours (the frame
shows the edge pixel there, so it shows that pixel's mask and edits too). Hence a baked-in edit
(``with_edit``) and the same edit rendered as an overlay (``render``) give the same frames.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import CanonicalVideoError

__all__ = ["INTERPOLATIONS", "PADDINGS", "check_padding", "remap"]

PADDINGS = ("black", "grey", "border")
INTERPOLATIONS = ("bilinear", "bicubic")  # the generator's warp_interpolation names


def check_padding(padding) -> str:
    """``padding`` if it is one of :data:`PADDINGS`; a one-line CanonicalVideoError otherwise."""
    if not isinstance(padding, str) or padding not in PADDINGS:
        raise CanonicalVideoError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
    return padding


def remap(image: np.ndarray, grid_t: np.ndarray, padding: str = "black", colour_channels: int = 0) -> np.ndarray:
    """One frame (bilinear) of a canonical-space image (at most 4 channels) through ``grid_t`` [H, W, 2].

    Outside the canvas: ``border`` replicates the edge on every channel; ``black`` and ``grey`` give
    a constant, 0 on every channel except the first ``colour_channels`` of a ``grey`` video, which
    get 0.5 of the image's range (128 for uint8). Returns cv2.remap's result ([H, W] for a 2-D or
    one-channel image).
    """
    if padding == "border":
        mode, value = cv2.BORDER_REPLICATE, 0.0
    elif padding == "grey" and colour_channels > 0:
        grey = 128.0 if image.dtype == np.uint8 else 0.5
        mode, value = cv2.BORDER_CONSTANT, tuple([grey] * colour_channels + [0.0] * (4 - colour_channels))
    else:
        mode, value = cv2.BORDER_CONSTANT, 0.0
    return cv2.remap(image, grid_t[..., 0], grid_t[..., 1], interpolation=cv2.INTER_LINEAR, borderMode=mode,
                     borderValue=value)

"""How a video samples its canonical image: ``padding`` and ``interpolation``, the generator's
``warp_padding`` and ``warp_interpolation`` names.

A CanonicalVideo renders the way the model that made it was trained (``GenDeF.warp``). Outside the
canonical image (``padding``):

* ``black``: 0 (cv2.BORDER_CONSTANT 0; the default, and every file written before ``padding`` existed);
* ``grey``: 0.5 in [0, 1] for colour (0 in [-1, 1], the official GenDeF; 128 for uint8);
* ``border``: the nearest edge pixel (cv2.BORDER_REPLICATE; grid_sample's ``padding_mode="border"``).

The rule for canonical-space images that are not colours (masks, overlays' premultiplied colour
and alpha, labels, any other channels): ``black`` and ``grey`` give 0 (nothing of a mask or an
overlay lies outside the canvas), ``border`` replicates the edge like the colours (the frame
shows the edge pixel there, so it shows that pixel's mask and edits too). Hence a baked-in edit
(``with_edit``) and the same edit rendered as an overlay (``render``) give the same frames.

Between pixels (``interpolation``):

* ``bilinear``: cv2.INTER_LINEAR (the default, and every file written before ``interpolation`` existed);
* ``bicubic``: cv2.INTER_CUBIC (a = -0.75, the kernel of grid_sample's ``mode="bicubic"``), a float
  colour result clipped to [0, 1] as the model clamps its frames to [-1, 1] (uint8: cv2 saturates).

Bicubic applies to what a frame shows: colour images (the video, an RGB replacement, the uint8
export, the full-size back-projection's render and its alpha) and overlays (premultiplied colour
and alpha sampled unclipped, the composite clipped once, as the same edit baked in rings and is
clipped once). So ``render(rgba)`` stays ``with_edit(rgba).frames()``: equal where frames sample
whole pixels, and between them apart only as under bilinear (composited after sampling rather
than before), with no clipped ringing added. Masks and any other non-colour image
(``warp(colour=False)``: labels, coordinates) stay bilinear on every video: a cubic kernel
overshoots a step by up to 11 % and rings beside it (a mask above 1 or below 0 beside its edge, a
coordinate map bent), and a propagated mask does not depend on the model.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import CanonicalVideoError

__all__ = ["INTERPOLATIONS", "PADDINGS", "check_interpolation", "check_padding", "remap"]

PADDINGS = ("black", "grey", "border")
INTERPOLATIONS = ("bilinear", "bicubic")  # the generator's warp_interpolation names
_CV2_INTERPOLATION = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


def check_padding(padding) -> str:
    """``padding`` if it is one of :data:`PADDINGS`; a one-line CanonicalVideoError otherwise."""
    if not isinstance(padding, str) or padding not in PADDINGS:
        raise CanonicalVideoError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
    return padding


def check_interpolation(interpolation) -> str:
    """``interpolation`` if it is one of :data:`INTERPOLATIONS`; a one-line CanonicalVideoError otherwise."""
    if not isinstance(interpolation, str) or interpolation not in INTERPOLATIONS:
        raise CanonicalVideoError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    return interpolation


def remap(image: np.ndarray, grid_t: np.ndarray, padding: str = "black", colour_channels: int = 0,
          interpolation: str = "bilinear") -> np.ndarray:
    """One frame of a canonical-space image (at most 4 channels) through ``grid_t`` [H, W, 2].

    Outside the canvas: ``border`` replicates the edge on every channel; ``black`` and ``grey`` give
    a constant, 0 on every channel except the first ``colour_channels`` of a ``grey`` video, which
    get 0.5 of the image's range (128 for uint8). ``interpolation``: "bilinear", or "bicubic", after
    which a float colour image (``colour_channels`` > 0) is clipped to [0, 1] on every channel, as
    the model clamps its frames (uint8: cv2 saturates); any other image comes back as sampled (an
    overlay's ringing is clipped once composited). Which images get bicubic is the caller's rule
    (the module docstring). Returns cv2.remap's result ([H, W] for a 2-D or one-channel image).
    """
    if padding == "border":
        mode, value = cv2.BORDER_REPLICATE, 0.0
    elif padding == "grey" and colour_channels > 0:
        grey = 128.0 if image.dtype == np.uint8 else 0.5
        mode, value = cv2.BORDER_CONSTANT, tuple([grey] * colour_channels + [0.0] * (4 - colour_channels))
    else:
        mode, value = cv2.BORDER_CONSTANT, 0.0
    out = cv2.remap(image, grid_t[..., 0], grid_t[..., 1], interpolation=_CV2_INTERPOLATION[interpolation],
                    borderMode=mode, borderValue=value)
    if interpolation == "bicubic" and colour_channels > 0 and out.dtype != np.uint8:
        np.clip(out, 0.0, 1.0, out=out)
    return out

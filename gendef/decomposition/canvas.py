"""Stage 2, the canvas: where the canonical image lives, and its closed-form start."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..video.grid import pixels_to_normalized


@dataclass(frozen=True)
class Canvas:
    """Canonical image geometry: reference pixel q -> canvas pixel ``scale * q + offset``."""

    height: int
    width: int
    scale: float
    offset: tuple  # (x, y), pixel centres aligned

    @property
    def hw(self) -> tuple:
        return self.height, self.width

    def at_level(self, factor: int) -> tuple:
        """(H, W) of this canvas ``factor`` times smaller (ceil)."""
        return -(-self.height // factor), -(-self.width // factor)


def plan_canvas(lo: np.ndarray, hi: np.ndarray, frame_hw: tuple, margin: int, scale: float, cover_frame: bool = True) -> Canvas:
    """Bounding box of everything seen (``lo``/``hi`` in reference pixels), plus the margin
    (and at least the reference frame itself unless ``cover_frame`` is False, as for a sprite)."""
    h, w = frame_hw
    lim = 2.0 * max(h, w)
    lo = np.floor(np.clip(lo, -lim, None) - margin)
    hi = np.ceil(np.clip(hi, None, max(h, w) + lim) + margin)
    if cover_frame:
        lo = np.minimum(lo, [-margin, -margin])
        hi = np.maximum(hi, [w - 1 + margin, h - 1 + margin])
    s = float(scale)
    offset = (s * (-lo + 0.5) - 0.5).astype(np.float32)
    wc = int(math.ceil(s * (hi[0] - lo[0] + 1)))
    hc = int(math.ceil(s * (hi[1] - lo[1] + 1)))
    return Canvas(height=hc, width=wc, scale=s, offset=(float(offset[0]), float(offset[1])))


def stack_below(top: Canvas, sprite: Canvas, gap: int = 4) -> tuple:
    """An atlas: ``sprite`` placed under ``top`` on one canvas -> (atlas canvas, moved sprite canvas).

    The atlas keeps ``top``'s mapping; the sprite keeps its own mapping shifted down.
    """
    dy = top.height + gap
    moved = Canvas(height=sprite.height, width=sprite.width, scale=sprite.scale, offset=(sprite.offset[0], sprite.offset[1] + dy))
    atlas = Canvas(height=dy + sprite.height, width=max(top.width, sprite.width), scale=top.scale, offset=top.offset)
    return atlas, moved


def splat_weights(frames_t, grid_px, canvas_hw: tuple, chunk: int, init=None):
    """Adjoint of bilinear sampling: [1, 4, Hc, Wc] = (sum of w * colour residual, sum of w).

    Obtained by autograd of ``grid_sample`` (so it matches the renderer exactly);
    ``init`` (a canonical [1, 3, Hc, Wc]) makes it splat only the residual.
    """
    import torch
    import torch.nn.functional as F

    hc, wc = canvas_hw
    t_count, _, h, w = frames_t.shape
    num = torch.zeros(1, 4, hc, wc, device=frames_t.device)
    for s in range(0, t_count, chunk):
        e = min(t_count, s + chunk)
        fr = frames_t[s:e].permute(1, 0, 2, 3).reshape(1, 3, (e - s) * h, w)
        g = pixels_to_normalized(grid_px[s:e].detach(), canvas_hw).reshape(1, (e - s) * h, w, 2)
        if init is not None:
            fr = fr - F.grid_sample(init, g, mode="bilinear", padding_mode="border", align_corners=True)
        with torch.enable_grad():
            probe = torch.zeros(1, 4, hc, wc, device=frames_t.device, requires_grad=True)
            out = F.grid_sample(probe, g, mode="bilinear", padding_mode="zeros", align_corners=True)
            target = torch.cat([fr, torch.ones_like(fr[:, :1])], 1)
            (grad,) = torch.autograd.grad((out * target).sum(), probe)
        num += grad
    return num


def splat_canonical(frames_t, grid_px, canvas_hw: tuple, chunk: int, init=None):
    """Closed-form canonical: frames splatted back through the grid, normalised.

    One Jacobi step of the least-squares canonical (from ``init`` when given, e.g.
    the coarser level's canonical, so only its residual is splatted); holes are
    filled by normalised convolution and far regions no frame sees by the mean colour.
    """
    import torch

    num = splat_weights(frames_t, grid_px, canvas_hw, chunk, init)[0].permute(1, 2, 0).cpu().numpy()
    blurred = cv2.GaussianBlur(num, (0, 0), 1.0)
    weight = num[..., 3:4]
    direct = num[..., :3] / np.maximum(weight, 1e-6)
    smooth = blurred[..., :3] / np.maximum(blurred[..., 3:4], 1e-6)
    alpha = np.clip(weight / 0.5, 0.0, 1.0)
    canon = alpha * direct + (1 - alpha) * smooth
    far = blurred[..., 3:4] < 1e-3
    if init is not None:
        canon = init[0].permute(1, 2, 0).cpu().numpy() + np.where(far, 0.0, canon)
    else:
        mean = num[..., :3].reshape(-1, 3).sum(0) / max(float(weight.sum()), 1e-6)
        wide = cv2.GaussianBlur(num, (0, 0), 8.0)
        fill = np.where(wide[..., 3:4] > 1e-4, wide[..., :3] / np.maximum(wide[..., 3:4], 1e-6), mean)
        canon = np.where(far, fill, canon)
    out = torch.from_numpy(np.clip(canon, 0.0, 1.0).astype(np.float32)).permute(2, 0, 1)[None]
    return out.contiguous().to(frames_t.device)

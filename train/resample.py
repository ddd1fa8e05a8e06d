"""Bilinear resampling built from gather and arithmetic only, so autograd differentiates it to any order.

R1 back-propagates D's input gradient through the augmentation with ``create_graph=True``, so
the augmentation's backward must itself be differentiable. ``F.grid_sample``'s backward is a
fused kernel whose own derivative is missing on some builds (torch 2.11 CUDA:
"derivative for aten::grid_sampler_2d_backward is not implemented"). Here the four taps are
``gather`` calls (backward: ``scatter_add``; its backward: ``gather`` again) mixed by weights that
depend only on the coordinates, which works on every device and torch version.

Coordinates are in pixel units with pixel centres at integers (the project's grid convention);
points outside the image are mirrored about the border pixel centres (``reflect``, like
``F.grid_sample(padding_mode="reflection", align_corners=True)``), so no padding is allocated.
"""
from __future__ import annotations

import torch

__all__ = ["reflect_coords", "bilinear_sample", "affine_coords"]


def reflect_coords(x: torch.Tensor, size: int) -> torch.Tensor:
    """Fold coordinates into [0, size - 1] by mirroring about 0 and size - 1 (period 2 (size - 1))."""
    if size <= 1:
        return torch.zeros_like(x)
    span = float(size - 1)
    x = torch.remainder(x, 2 * span)
    return span - (x - span).abs()


def bilinear_sample(image: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """``image`` [N, C, H, W] read at ``coords`` [N, Ho, Wo, 2] = (x, y) pixel positions -> [N, C, Ho, Wo].

    Differentiable to any order in ``image``; first order in ``coords`` (the weights)."""
    n, c, h, w = image.shape
    if coords.shape[0] != n or coords.shape[-1] != 2 or coords.ndim != 4:
        raise ValueError(f"coords must be [{n}, Ho, Wo, 2], got {list(coords.shape)}")
    ho, wo = coords.shape[1:3]
    x = reflect_coords(coords[..., 0], w)
    y = reflect_coords(coords[..., 1], h)
    x0, y0 = x.detach().floor().clamp(0, w - 1), y.detach().floor().clamp(0, h - 1)
    fx, fy = (x - x0).to(image.dtype), (y - y0).to(image.dtype)
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    flat = image.reshape(n, c, h * w)

    def tap(yi, xi):
        idx = (yi * w + xi).reshape(n, 1, ho * wo).expand(n, c, ho * wo)
        return flat.gather(2, idx).reshape(n, c, ho, wo)

    fx, fy = fx[:, None], fy[:, None]
    top = tap(y0, x0) * (1 - fx) + tap(y0, x1) * fx
    bottom = tap(y1, x0) * (1 - fx) + tap(y1, x1) * fx
    return top * (1 - fy) + bottom * fy


def affine_coords(matrix: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Input positions read by every output pixel under a [N, 3, 3] output->input matrix acting on
    centred pixel coordinates (origin at the image centre). Computed in float64, so integer
    transforms (flips, 90-degree turns, integer shifts) land exactly on pixel centres."""
    m = matrix.to(torch.float64)
    cy, cx = (height - 1) / 2, (width - 1) / 2
    ys = torch.arange(height, device=m.device, dtype=torch.float64) - cy
    xs = torch.arange(width, device=m.device, dtype=torch.float64) - cx
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx, gy, torch.ones_like(gx)], -1).reshape(1, -1, 3)  # [1, H*W, 3]
    src = pts @ m[:, :2, :].transpose(1, 2)  # [N, H*W, 2]
    src = src + torch.tensor([cx, cy], device=m.device, dtype=torch.float64)
    return src.reshape(-1, height, width, 2).to(torch.float32)

"""The studio's file formats: trajectories as JSON / CSV, per-frame masks as a zip of PNGs, and the
ImageEditor's painted layers flattened to one RGBA edit. numpy/OpenCV only (no gradio)."""
from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from gendef.imageutil import to_float01
from gendef.viz import as_tracks

__all__ = ["tracks_to_json", "tracks_to_csv", "masks_to_zip", "rgba_from_editor_layers"]


def tracks_to_json(positions, visible, fps: float) -> str:
    """Trajectories as JSON: per point, per frame (frame, time, x, y, visible)."""
    pos, vis = as_tracks(positions, visible)
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    points = []
    for i in range(pos.shape[1]):
        track = []
        for f in range(pos.shape[0]):
            x, y = pos[f, i]
            track.append(
                {
                    "frame": f,
                    "time": round(f / fps, 6),
                    "x": round(float(x), 3) if np.isfinite(x) else None,
                    "y": round(float(y), 3) if np.isfinite(y) else None,
                    "visible": bool(vis[f, i]),
                }
            )
        points.append({"id": i, "track": track})
    doc = {"fps": fps, "num_frames": int(pos.shape[0]), "num_points": int(pos.shape[1]), "points": points}
    return json.dumps(doc, indent=1)


def tracks_to_csv(positions, visible) -> str:
    """Trajectories as CSV with columns frame,point,x,y,visible (one row per frame and point)."""
    pos, vis = as_tracks(positions, visible)
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["frame", "point", "x", "y", "visible"])
    for f in range(pos.shape[0]):
        for i in range(pos.shape[1]):
            x, y = pos[f, i]
            wr.writerow(
                [f, i, f"{x:.3f}" if np.isfinite(x) else "", f"{y:.3f}" if np.isfinite(y) else "", int(vis[f, i])]
            )
    return buf.getvalue()


def masks_to_zip(masks, path: Union[str, os.PathLike]) -> Path:
    """Per-frame masks -> a zip of 8-bit PNGs (0 / 255), mask_0000.png, mask_0001.png, ..."""
    m = np.asarray(masks)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"masks must be shaped [T, H, W], got {tuple(m.shape)}")
    path = Path(path)
    if path.suffix.lower() != ".zip":
        path = path.with_name(path.name + ".zip")
    path.parent.mkdir(parents=True, exist_ok=True)
    digits = max(4, len(str(len(m) - 1)))
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for t, mask in enumerate(m):
            ok, png = cv2.imencode(".png", np.where(mask.astype(bool), 255, 0).astype(np.uint8))
            if not ok:
                raise ValueError(f"could not encode mask {t} as PNG")
            zf.writestr(f"mask_{t:0{digits}d}.png", png.tobytes())
    os.replace(tmp, path)
    return path


def rgba_from_editor_layers(background, layers) -> np.ndarray:
    """Flatten Gradio ImageEditor layers into one RGBA edit, float32 [H, W, 4] in [0, 1].

    Layers are composited in order ("over"); alpha is the union of the layer
    alphas, so pixels no stroke touched stay fully transparent and the edit
    leaves the rest of the video untouched. The background only fixes the size
    (and lets an RGB layer count as painted where it differs from it).
    """
    bg = np.asarray(background) if background is not None else None
    if bg is None:
        first = next((np.asarray(x) for x in layers or [] if x is not None), None)
        if first is None or first.ndim != 3:
            raise ValueError("nothing to flatten: the editor has no background and no layers")
        bg = np.zeros(first.shape[:2] + (3,), np.uint8)
    if bg.ndim != 3 or bg.shape[2] not in (3, 4):
        raise ValueError("background must be an image shaped [H, W, 3] or [H, W, 4]")
    h, w = bg.shape[:2]
    bg_rgb = _unit(bg[..., :3])
    rgb = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w, 1), np.float32)
    for k, layer in enumerate(layers or []):
        if layer is None:
            continue
        lay = np.asarray(layer)
        if lay.ndim != 3 or lay.shape[2] not in (3, 4):
            raise ValueError(f"layer {k} must be shaped [H, W, 4] (RGBA), got {tuple(lay.shape)}")
        if lay.shape[:2] != (h, w):
            lay = cv2.resize(lay, (w, h), interpolation=cv2.INTER_NEAREST)
        lf = _unit(lay)
        if lf.shape[2] == 4:
            la = lf[..., 3:4]
        else:
            la = (np.abs(lf - bg_rgb).max(-1, keepdims=True) > 1.0 / 255.0).astype(np.float32)
        lrgb = lf[..., :3]
        new_alpha = la + alpha * (1.0 - la)
        safe = np.where(new_alpha > 0, new_alpha, 1.0)
        rgb = np.where(new_alpha > 0, (lrgb * la + rgb * alpha * (1.0 - la)) / safe, 0.0)
        alpha = new_alpha
    return np.concatenate([rgb, alpha], axis=-1).astype(np.float32)


def _unit(a: np.ndarray) -> np.ndarray:
    """Any image as float32 clipped to [0, 1]."""
    return np.clip(to_float01(a), 0.0, 1.0)

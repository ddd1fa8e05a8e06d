"""Pictures of what the model does: flow colours, tracks, mask overlays.

Everything the studio shows besides the raw video is drawn here (numpy/OpenCV
only) so the app stays free of array maths and the CLI can reuse the same views.
The studio's file formats (trajectories, mask zips, editor layers) live in ``app.formats``.
Images are float32 [H, W, 3] in [0, 1] unless stated; masks are bool.
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from .imageutil import to_float01, to_uint8

__all__ = [
    "flow_to_color",
    "color_wheel",
    "deformation_strip",
    "deformation_video",
    "segment_timeline",
    "draw_tracks",
    "as_tracks",
    "overlay_masks",
    "mask_tint_layer",
    "cutout",
    "side_by_side",
    "resize_image",
    "point_colors",
    "FIELD_SCALE_FLOOR_PX",
    "field_scale",
]

# The field pictures' full colour never stands for less than this many canonical pixels, so float noise
# in a (nearly) zero field draws as white, not as bold stripes stretched to full saturation.
FIELD_SCALE_FLOOR_PX = 1.0


# --------------------------------------------------------------------------------------
# flow / deformation
# --------------------------------------------------------------------------------------
def flow_to_color(flow, max_magnitude: Optional[float] = None) -> np.ndarray:
    """Flow [H, W, 2] (dx, dy) -> uint8 RGB; hue = direction, saturation = magnitude.

    Hue 0 (red) points right (+x), 90 degrees points down (+y, image rows grow
    downwards), 180 (cyan) left, 270 up; zero motion is white. ``max_magnitude``
    fixes the scale so several frames can share one (default: this flow's max).
    """
    f = np.asarray(flow, dtype=np.float32)
    if f.ndim != 3 or f.shape[2] != 2:
        raise ValueError(f"flow must be shaped [H, W, 2], got {tuple(f.shape)}")
    f = np.where(np.isfinite(f), f, 0.0).astype(np.float32)
    mag = np.sqrt(f[..., 0] ** 2 + f[..., 1] ** 2)
    if max_magnitude is None:
        max_magnitude = float(mag.max()) if mag.size else 0.0
    max_magnitude = float(max_magnitude)
    if not np.isfinite(max_magnitude) or max_magnitude < 0:
        raise ValueError(f"max_magnitude must be a non-negative number, got {max_magnitude}")
    scale = max_magnitude if max_magnitude > 1e-12 else 1.0
    hue = (np.degrees(np.arctan2(f[..., 1], f[..., 0])) + 360.0) % 360.0
    sat = np.clip(mag / scale, 0.0, 1.0)
    hsv = np.stack([hue, sat, np.ones_like(sat)], axis=-1).astype(np.float32)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return to_uint8(rgb)


def color_wheel(size: int = 64) -> np.ndarray:
    """Legend for :func:`flow_to_color`: uint8 [size, size, 3], white outside the disc."""
    c = (size - 1) / 2.0
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    flow = np.stack([xs - c, ys - c], axis=-1)
    img = flow_to_color(flow, max_magnitude=max(c, 1e-6))
    img[np.hypot(xs - c, ys - c) > c] = 255
    return img


def _frame_identity(video) -> np.ndarray:
    """Where each grid pixel would sample with no motion (grid centred on the canvas)."""
    from .video.grid import identity_grid

    h, w = video.grid.shape[1:3]  # the grid's lattice (the output size may be larger)
    hc, wc = video.canvas_size
    return identity_grid(h, w, 1, offset=((wc - w) / 2.0, (hc - h) / 2.0))[0]


def _fit_height(img: np.ndarray, height: int) -> np.ndarray:
    h, w = img.shape[:2]
    new_w = max(1, int(round(w * height / h)))
    interp = cv2.INTER_NEAREST if height >= h else cv2.INTER_AREA
    return cv2.resize(img, (new_w, height), interpolation=interp)


def field_scale(disp: np.ndarray) -> float:
    """The field pictures' full-colour magnitude: max(largest |displacement|, ``FIELD_SCALE_FLOOR_PX``) pixels."""
    observed = float(np.sqrt((disp**2).sum(-1)).max()) if disp.size else 0.0
    return max(observed if np.isfinite(observed) else 0.0, FIELD_SCALE_FLOOR_PX)


def deformation_strip(video, num: int = 4, tile: int = 128, gap: int = 2) -> np.ndarray:
    """Canonical image + ``num`` evenly spaced frames, and under each frame its displacement.

    Top row: canonical, frames; bottom row: a colour-wheel legend, then
    ``grid - identity`` of each frame on one shared scale (so strengths compare):
    full colour = max(largest |displacement| shown, 1 px) (``FIELD_SCALE_FLOOR_PX``),
    so a field that moves less than a pixel draws pale and a zero field white.
    Small models are upscaled with nearest neighbour so their pixels stay visible.
    """
    num = int(num)
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    tile = int(tile)
    if tile < 8:
        raise ValueError(f"tile must be >= 8 pixels, got {tile}")
    t = video.num_frames
    idx = np.unique(np.linspace(0, t - 1, min(num, t)).round().astype(int))
    frames = np.stack([video.render_frame(int(i)) for i in idx])
    disp = video.grid[idx] - _frame_identity(video)[None]
    scale = field_scale(disp)
    top = [_fit_height(to_uint8(video.canonical), tile)] + [_fit_height(to_uint8(f), tile) for f in frames]
    bottom = [_fit_height(color_wheel(64), tile)] + [
        _fit_height(flow_to_color(d, max_magnitude=scale), tile) for d in disp
    ]
    bottom[0] = _pad_to_width(bottom[0], top[0].shape[1])
    rows = [_hstack(top, gap), _hstack(bottom, gap)]
    width = max(r.shape[1] for r in rows)
    rows = [_pad_to_width(r, width) for r in rows]
    sep = np.full((gap, width, 3), 255, np.uint8)
    return np.concatenate([rows[0], sep, rows[1]], axis=0)


def deformation_video(video, max_magnitude: Optional[float] = None) -> np.ndarray:
    """Every frame's displacement ``grid - identity`` as colours, float32 [T, H, W, 3].

    One scale for the whole clip (default: max(its largest displacement, 1 px),
    ``FIELD_SCALE_FLOOR_PX``), so the colours' saturation is comparable from frame
    to frame and a zero field draws white.
    """
    disp = video.grid - _frame_identity(video)[None]
    if max_magnitude is None:
        max_magnitude = field_scale(disp)
    return to_float01(np.stack([flow_to_color(d, max_magnitude) for d in disp]))


TIMELINE_CUT = (220, 30, 30)  # uint8 RGB of a hard cut's mark
TIMELINE_PICKED = (40, 90, 230)  # frame around the picked segment's canonical image


def segment_timeline(video, picked: Optional[int] = None, tile: int = 96, gap: int = 4, bar: int = 14) -> np.ndarray:
    """A chain of segments as one picture, uint8 [H, W, 3].

    Top: each segment's canonical image (height ``tile``, the picked one framed in blue).
    Bottom: the clip's frames left to right, one bar per segment over the frames it renders
    (neighbours on alternating lanes, so an overlap shows as bars side by side) and a red
    line at each hard cut.
    """
    tile, n = int(tile), video.num_segments
    if tile < 8:
        raise ValueError(f"tile must be >= 8 pixels, got {tile}")
    thumbs = []
    for i, seg in enumerate(video.segments):
        img = _fit_height(to_uint8(seg.canonical), tile)
        border = TIMELINE_PICKED if i == picked else (255, 255, 255)
        thumbs.append(cv2.copyMakeBorder(img, 3, 3, 3, 3, cv2.BORDER_CONSTANT, value=border))
    top = _hstack(thumbs, gap)
    width = top.shape[1]
    lanes = np.full((2 * bar + 4, width, 3), 255, np.uint8)
    colors = (point_colors(n) * 255).astype(np.uint8)
    x = lambda t: int(round(t * (width - 1) / video.num_frames))  # noqa: E731 - clip frame -> column
    for i, (s, e) in enumerate(zip(video.starts, video.ends)):
        y0 = 2 + (i % 2) * bar
        cv2.rectangle(lanes, (x(s), y0), (max(x(e) - 1, x(s)), y0 + bar - 2), tuple(int(c) for c in colors[i]), -1)
    for c in sorted(video.cuts):
        lanes[:, max(x(c) - 1, 0) : x(c) + 1] = TIMELINE_CUT
    sep = np.full((gap, width, 3), 255, np.uint8)
    return np.concatenate([top, sep, lanes], axis=0)


def _hstack(tiles, gap: int) -> np.ndarray:
    h = tiles[0].shape[0]
    parts = []
    for i, t in enumerate(tiles):
        if i:
            parts.append(np.full((h, gap, 3), 255, np.uint8))
        parts.append(t)
    return np.concatenate(parts, axis=1)


def _pad_to_width(img: np.ndarray, width: int) -> np.ndarray:
    extra = width - img.shape[1]
    if extra <= 0:
        return img
    left = extra // 2
    return np.pad(img, ((0, 0), (left, extra - left), (0, 0)), constant_values=255)


# --------------------------------------------------------------------------------------
# tracks
# --------------------------------------------------------------------------------------
def point_colors(n: int) -> np.ndarray:
    """n well separated RGB colours in [0, 1] (golden-angle hues), stable across calls."""
    hues = (np.arange(n) * 137.508) % 360.0
    hsv = np.stack([hues, np.full(n, 0.9), np.ones(n)], axis=-1).astype(np.float32)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0] if n else np.zeros((0, 3), np.float32)


def _video_frames(frames, name: str = "frames") -> np.ndarray:
    f = np.asarray(frames)
    if f.ndim != 4 or f.shape[-1] != 3:
        raise ValueError(f"{name} must be shaped [T, H, W, 3], got {tuple(f.shape)}")
    return to_float01(f)


def as_tracks(positions, visible, num_frames: Optional[int] = None) -> tuple:
    """(positions float64 [T, N, 2], visible bool [T, N]) checked; a point with a NaN position is not visible."""
    pos = np.asarray(positions, dtype=np.float64)
    vis = np.asarray(visible).astype(bool)
    if pos.ndim != 3 or pos.shape[2] != 2:
        raise ValueError(f"positions must be shaped [T, N, 2], got {tuple(pos.shape)}")
    if vis.shape != pos.shape[:2]:
        raise ValueError(f"visible must be shaped {pos.shape[:2]} (like positions), got {tuple(vis.shape)}")
    if num_frames is not None and pos.shape[0] != num_frames:
        raise ValueError(f"tracks have {pos.shape[0]} frames but the video has {num_frames}")
    vis = vis & np.isfinite(pos).all(-1)
    return pos, vis


TRACK_TRAIL = 8  # frames a track's fading trail reaches back


def draw_tracks(frames, positions, visible, radius: Optional[int] = None, trail: int = TRACK_TRAIL,
                first: Optional[int] = None) -> np.ndarray:
    """Dots at each point's position plus a fading trail over the last ``trail`` frames.

    A point is drawn in frame t only while it is visible in t, and trail segments
    only join consecutive frames where it was visible, so occluded or off-screen
    stretches leave no marks. ``first``: the frames are clip frames ``first, first + 1, ...``
    of a longer clip whose tracks ``positions``/``visible`` cover every frame (a chunk of
    the clip; trails reach back before ``first``); None: the tracks are the frames'.
    """
    out = _video_frames(frames).copy()
    t, h, w, _ = out.shape
    pos, vis = as_tracks(positions, visible, t if first is None else None)
    off = 0 if first is None else int(first)
    if not 0 <= off <= pos.shape[0] - t:
        raise ValueError(f"frames {off}..{off + t - 1} are not all in the tracks' {pos.shape[0]} frames")
    n = pos.shape[1]
    if radius is None:
        radius = max(1, int(round(min(h, w) / 64)))
    radius = max(1, int(radius))
    thickness = max(1, radius // 2)
    colors = point_colors(n)
    shift = 4
    k = float(1 << shift)
    fixed = np.round(pos * k)
    for f in range(t):
        img, g = out[f], off + f
        for i in range(n):
            if not vis[g, i]:
                continue
            col = tuple(float(c) for c in colors[i])
            for s in range(max(1, g - int(trail) + 1), g + 1):
                if vis[s - 1, i] and vis[s, i]:
                    p0 = (int(fixed[s - 1, i, 0]), int(fixed[s - 1, i, 1]))
                    p1 = (int(fixed[s, i, 0]), int(fixed[s, i, 1]))
                    cv2.line(img, p0, p1, col, thickness, cv2.LINE_AA, shift)
            centre = (int(fixed[g, i, 0]), int(fixed[g, i, 1]))
            cv2.circle(img, centre, int(radius * k), col, -1, cv2.LINE_AA, shift)
    return np.clip(out, 0.0, 1.0)


# --------------------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------------------
def _masks_like(frames: np.ndarray, masks) -> np.ndarray:
    m = np.asarray(masks)
    if m.shape != frames.shape[:3]:
        raise ValueError(f"masks must be shaped {frames.shape[:3]} (like the frames), got {tuple(m.shape)}")
    return m.astype(bool)


def _rgb(color, name: str) -> np.ndarray:
    c = np.asarray(color, dtype=np.float32).reshape(-1)
    if c.shape != (3,) or not np.all(np.isfinite(c)):
        raise ValueError(f"{name} must be an (r, g, b) triple in [0, 1], got {color!r}")
    if c.max() > 1.0:
        c = c / 255.0
    return np.clip(c, 0.0, 1.0)


def overlay_masks(frames, masks, color=(1.0, 0.0, 0.0), alpha: float = 0.5) -> np.ndarray:
    """Tint the masked pixels of every frame with ``color`` (opacity ``alpha``)."""
    f = _video_frames(frames)
    m = _masks_like(f, masks)
    a = float(np.clip(alpha, 0.0, 1.0))
    out = f.copy()
    out[m] = (1.0 - a) * f[m] + a * _rgb(color, "color")
    return out


def mask_tint_layer(mask, color=(1.0, 0.0, 0.0), alpha: float = 0.5) -> np.ndarray:
    """A mask [H, W] as an RGBA overlay [H, W, 4] (straight alpha): ``color`` at opacity ``alpha`` where masked."""
    m = np.asarray(mask).astype(np.float32) * float(np.clip(alpha, 0.0, 1.0))
    rgb = np.broadcast_to(_rgb(color, "color"), m.shape + (3,))
    return np.concatenate([rgb, m[..., None]], axis=-1).astype(np.float32)


def cutout(frames, masks, background=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Keep the masked pixels, replace the rest with ``background``."""
    f = _video_frames(frames)
    m = _masks_like(f, masks)
    out = np.empty_like(f)
    out[...] = _rgb(background, "background")
    out[m] = f[m]
    return out


# --------------------------------------------------------------------------------------
# layout helpers
# --------------------------------------------------------------------------------------
def side_by_side(a, b, gap: int = 2) -> np.ndarray:
    """Two videos next to each other (e.g. original | edited) with a white gap."""
    fa = _video_frames(a, "a")
    fb = _video_frames(b, "b")
    if fa.shape[:3] != fb.shape[:3]:
        raise ValueError(f"videos differ in frames/size: {fa.shape[:3]} vs {fb.shape[:3]}")
    gap = max(0, int(gap))
    sep = np.ones(fa.shape[:2] + (gap, 3), np.float32)
    return np.concatenate([fa, sep, fb], axis=2)


def resize_image(img, size: Sequence[int]) -> np.ndarray:
    """Resize to (h, w) keeping dtype; bool masks use nearest neighbour, RGBA is premultiplied."""
    a = np.asarray(img)
    if a.ndim not in (2, 3):
        raise ValueError(f"image must be [H, W] or [H, W, C], got {tuple(a.shape)}")
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {(h, w)}")
    if a.shape[:2] == (h, w):
        return a.copy()
    if a.dtype == bool:
        r = cv2.resize(a.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        return r.astype(bool).reshape((h, w) + a.shape[2:])
    src = a.astype(np.float32) if a.dtype not in (np.uint8, np.float32) else a
    shrink = h < a.shape[0] and w < a.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    if a.ndim == 3 and a.shape[2] == 4:
        # RGBA: resample premultiplied so transparent pixels do not darken stroke edges
        f = _unit(src)
        pre = np.concatenate([f[..., :3] * f[..., 3:], f[..., 3:]], -1)
        r = cv2.resize(pre, (w, h), interpolation=interp)
        al = r[..., 3:]
        rgb = np.where(al > 1e-6, r[..., :3] / np.maximum(al, 1e-6), 0.0)
        out = np.clip(np.concatenate([rgb, al], -1), 0.0, 1.0).astype(np.float32)
        if a.dtype == np.uint8:
            return to_uint8(out)
        return out.astype(a.dtype, copy=False)
    if a.ndim == 3 and a.shape[2] > 4:
        r = np.stack([cv2.resize(src[..., c], (w, h), interpolation=interp) for c in range(a.shape[2])], -1)
    else:
        r = cv2.resize(src, (w, h), interpolation=interp)
    return r.reshape((h, w) + a.shape[2:]).astype(a.dtype, copy=False)


def _unit(a: np.ndarray) -> np.ndarray:
    """Any image as float32 clipped to [0, 1]."""
    return np.clip(to_float01(a), 0.0, 1.0)

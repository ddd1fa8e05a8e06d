"""CanonicalVideo: the one data model of the project.

A video is a canonical image plus, for every output pixel of every frame, the
position it samples in the canonical image (``grid``, canonical pixel units,
pixel centres at integer coordinates). Everything the studio does -- editing,
segmentation, tracking, export -- is an operation on this object, so sampled
GAN videos and decomposed real videos are treated identically.

The conversion between these pixel units and the normalised [-1, 1]
coordinates used by the networks lives in :mod:`gendef.video.grid` and nowhere
else (``normalized_to_pixels``, ``pixels_to_normalized``), beside the other grid
functions (identity, upsampling, inversion).

Output size versus grid size (the rule every operation follows):

* ``grid`` [T, Hg, Wg, 2] lives at a *working* resolution; ``size`` = (H, W) is the
  output frame size (default (Hg, Wg)). The deformation is the bilinear
  interpolant of the grid, with pixel centres at integers on both lattices:
  output pixel (x, y) sits at grid position
  ``u = (x + 0.5) * Wg / W - 0.5``, ``v = (y + 0.5) * Hg / H - 0.5``
  (cv2.resize's INTER_LINEAR convention), and the edge cells are extrapolated
  linearly (so an affine motion is upsampled exactly). ``grid.upsample_grid``
  is the one implementation; it runs per frame, so a full-size grid is never
  held for every frame at once.
* Grid *values* are always pixels of the stored canonical image, whatever its
  resolution. A canonical image of the same canvas at another resolution
  (``Hc' x Wc'``) comes with grid values ``x' = (x + 0.5) * Wc' / Wc - 0.5``
  (same for y): :meth:`CanonicalVideo.with_canonical_resolution` does that in one place.
* Every operation speaks output pixels: ``render``/``warp``/``propagate_mask``
  return [T, H, W, ...], ``track`` returns output-pixel positions,
  ``frame_to_canonical`` takes them, ``flows`` are output-sized and in output
  pixels (frame-space flow: the exact flow at the grid's pixels, upsampled).

Outside the canonical image (``padding``, the generator's ``warp_padding`` names): a video shows
what the model that made it was trained to show there -- ``black`` (0, the default), ``grey`` (0.5
for colour) or ``border`` (the nearest edge pixel). Masks, overlays and other non-colour images
get 0 outside for black and grey and the edge for border (the rule in :mod:`gendef.video.padding`).
Between pixels (``interpolation``, the generator's ``warp_interpolation`` names): ``bilinear`` (the
default) or ``bicubic`` (cv2.INTER_CUBIC, clipped to [0, 1]) for what the frames show -- colours and
overlays; masks and other non-colour images are bilinear on every video (the same module's rule).
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import CanonicalVideoError
from ..imageutil import to_float01
from . import tracking
from .frame_edit import frame_layer_to_canonical
from .grid import upsample_grid
from .padding import INTERPOLATIONS, PADDINGS, check_interpolation, check_padding, remap
from .npzformat import (  # noqa: F401  (the file limits are part of this module's API)
    FORMAT_VERSION, MAX_CANVAS_PIXELS, MAX_FILE_FRAMES, MAX_GRID_VALUES, MAX_METADATA_BYTES, check_npz,
    read_canonical_arrays, write_npz,
)

__all__ = [
    "CanonicalVideo",
    "INTERPOLATIONS",
    "PADDINGS",
    "check_npz",
]

# longest output side accepted for ``size`` (16K), and the largest array one call
# (render, warp, masks, flows) allocates; beyond it, work frame by frame (iter_frames)
MAX_OUTPUT_SIDE = 16384
MAX_RENDER_BYTES = 6 << 30
# The .npz format and its limits (MAX_FILE_FRAMES, ...) live in :mod:`gendef.video.npzformat`;
# point tracking, frame look-up and flows in :mod:`gendef.video.tracking`.


# --------------------------------------------------------------------------------------
# The data model
# --------------------------------------------------------------------------------------
@dataclass(eq=False)
class CanonicalVideo:
    """Canonical image [Hc, Wc, 3] float32 in [0, 1] + grid [T, Hg, Wg, 2] + fps + output ``size`` + ``padding``
    + ``interpolation``.

    ``size`` = (H, W) of the output frames, default the grid's own (Hg, Wg). The grid
    values are pixels of ``canonical``; output pixels map onto the grid lattice with
    pixel centres aligned (see the module docstring for the exact rule). ``padding``:
    what frames show where the grid samples outside the canonical image, one of
    :data:`PADDINGS` -- "black" (0; the default), "grey" (0.5) or "border" (the nearest
    edge pixel), as the generator's ``warp_padding``; every operation that warps a
    canonical-space image follows it (masks and overlays: 0 outside unless "border").
    ``interpolation``: how frames sample between canonical pixels, one of :data:`INTERPOLATIONS`
    -- "bilinear" (the default) or "bicubic" (sharper; clipped to [0, 1]), as the generator's
    ``warp_interpolation``; colours and overlays follow it, masks and other non-colour images
    are always bilinear.
    """

    canonical: np.ndarray
    grid: np.ndarray
    fps: float = 16.0
    metadata: dict = field(default_factory=dict)
    size: Optional[tuple] = None
    padding: str = "black"
    interpolation: str = "bilinear"

    def __post_init__(self):
        self.canonical = _validate_canonical(self.canonical)
        self.grid = _validate_grid(self.grid)
        try:
            self.fps = float(self.fps)
        except (TypeError, ValueError):
            raise CanonicalVideoError(f"fps must be a number, got {self.fps!r}") from None
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise CanonicalVideoError(f"fps must be a positive finite number, got {self.fps}")
        if not isinstance(self.metadata, dict):
            raise CanonicalVideoError("metadata must be a dict")
        self.size = _validate_size(self.size, self.grid_size)
        self.padding = check_padding(self.padding)
        self.interpolation = check_interpolation(self.interpolation)
        self._frames_cache = None

    # ---- shape helpers ---------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return int(self.grid.shape[0])

    @property
    def frame_size(self) -> tuple:
        """(H, W) of the output frames (= ``size``)."""
        return self.size

    @property
    def grid_size(self) -> tuple:
        """(Hg, Wg) of the grid's working lattice."""
        return int(self.grid.shape[1]), int(self.grid.shape[2])

    @property
    def canvas_size(self) -> tuple:
        """(Hc, Wc) of the canonical image."""
        return int(self.canonical.shape[0]), int(self.canonical.shape[1])

    def __repr__(self) -> str:
        grid = "" if self.grid_size == self.size else f", grid_size={self.grid_size}"
        padding = "" if self.padding == "black" else f", padding={self.padding!r}"
        interp = "" if self.interpolation == "bilinear" else f", interpolation={self.interpolation!r}"
        return (
            f"CanonicalVideo(canonical={self.canvas_size}, frames={self.num_frames}, "
            f"frame_size={self.frame_size}{grid}, fps={self.fps:g}{padding}{interp})"
        )

    # ---- output pixels <-> grid lattice ------------------------------------------------
    def frame_grid(self, t: int) -> np.ndarray:
        """Frame t's sampling grid at output size [H, W, 2] (upsampled on the fly)."""
        return upsample_grid(self.grid[t], self.size)

    def to_grid_coords(self, points) -> np.ndarray:
        """Output-pixel (x, y) [..., 2] -> the same points on the grid's lattice."""
        p = np.asarray(points, dtype=np.float64)
        (hg, wg), (h, w) = self.grid_size, self.size
        return np.stack([(p[..., 0] + 0.5) * (wg / w) - 0.5, (p[..., 1] + 0.5) * (hg / h) - 0.5], axis=-1)

    def to_output_coords(self, points) -> np.ndarray:
        """Grid-lattice (x, y) [..., 2] -> output pixels (inverse of :meth:`to_grid_coords`)."""
        p = np.asarray(points, dtype=np.float64)
        (hg, wg), (h, w) = self.grid_size, self.size
        return np.stack([(p[..., 0] + 0.5) * (w / wg) - 0.5, (p[..., 1] + 0.5) * (h / hg) - 0.5], axis=-1)

    def check_alloc(self, channels: int, itemsize: int, what: str, frames: Optional[int] = None) -> None:
        """Refuse (one line) an output of ``frames`` (default all) frames x ``channels`` over MAX_RENDER_BYTES."""
        h, w = self.size
        need = (self.num_frames if frames is None else frames) * h * w * channels * itemsize
        if need > MAX_RENDER_BYTES:
            raise CanonicalVideoError(
                f"{what} of {self.num_frames} frames at {w}x{h} would need {need / 2**30:.1f} GiB "
                f"(limit {MAX_RENDER_BYTES / 2**30:.0f} GiB); use a smaller output size or iter_frames()"
            )

    # ---- rendering ---------------------------------------------------------------------
    def _remap(self, image: np.ndarray, t: int, colour: bool = False, grid_t: Optional[np.ndarray] = None,
               shown: Optional[bool] = None) -> np.ndarray:
        """One frame of a canonical-space image of at most 4 channels; ``colour``: its channels are colours
        (outside the canvas they follow ``padding`` in full; otherwise as masks, see the class docstring).
        ``shown``: it is what a frame shows, so it follows ``interpolation`` (default: colour images; an
        overlay passes True); otherwise bilinear (masks and other non-colour images)."""
        g = self.frame_grid(t) if grid_t is None else grid_t
        chans = 1 if image.ndim == 2 else image.shape[2]
        interp = self.interpolation if (colour if shown is None else shown) else "bilinear"
        r = remap(image, g, self.padding, colour_channels=chans if colour else 0, interpolation=interp)
        return r[..., None] if image.ndim == 3 and r.ndim == 2 else r

    def _warp_frame(self, img: np.ndarray, t: int, grid_t: Optional[np.ndarray] = None, colour: bool = False) -> np.ndarray:
        """One frame of a float canonical-space image (any channel count)."""
        g = self.frame_grid(t) if grid_t is None else grid_t
        if img.ndim == 3 and img.shape[2] > 4:  # cv2.remap handles at most 4 channels per call
            parts = [self._remap(np.ascontiguousarray(img[..., s : s + 4]), t, colour, grid_t=g) for s in range(0, img.shape[2], 4)]
            return np.concatenate(parts, axis=-1)
        return self._remap(img, t, colour, grid_t=g)

    def _canonical_space(self, image: np.ndarray) -> np.ndarray:
        img = np.asarray(image)
        if img.ndim not in (2, 3) or img.shape[:2] != self.canvas_size:
            raise CanonicalVideoError(
                f"image must be {self.canvas_size[0]}x{self.canvas_size[1]} (the canonical size), "
                f"got shape {tuple(img.shape)}"
            )
        return np.ascontiguousarray(to_float01(img))

    def warp(self, image: np.ndarray, colour: Optional[bool] = None) -> np.ndarray:
        """Warp any image living in canonical space (any channel count) through every frame.

        Returns [T, H, W] for a 2-D input and [T, H, W, C] otherwise, float32, at output size.
        Outside the canvas a colour image shows what ``padding`` says (grey: 0.5); any other
        image (mask, alpha, labels) shows 0, or its edge for "border". A colour image follows
        ``interpolation`` (bicubic: clipped to [0, 1]); any other image is bilinear. ``colour``:
        whether ``image`` is a colour image; None (default) means "it has 3 channels".
        """
        img = self._canonical_space(image)
        chans = 1 if img.ndim == 2 else img.shape[2]
        colour = chans == 3 if colour is None else bool(colour)
        self.check_alloc(chans, 4, "warping")
        out = np.empty((self.num_frames,) + self.frame_size + img.shape[2:], dtype=np.float32)
        for t in range(self.num_frames):
            out[t] = self._warp_frame(img, t, colour=colour)
        return out

    def frames(self) -> np.ndarray:
        """The video: [T, H, W, 3] float32 (cached up to 512 MB; the object is treated as immutable)."""
        if self._frames_cache is not None:
            return self._frames_cache
        out = self.warp(self.canonical, colour=True)
        if out.nbytes <= 512 << 20:
            self._frames_cache = out
        return out

    def _prepare_edit(self, image):
        """(kind, float image) for :meth:`render_frame`; kind is 'video', 'mask', 'rgb' or 'rgba'."""
        if image is None:
            return "video", self.canonical
        img = np.asarray(image)
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[..., 0]
        if img.ndim == 2:
            return "mask", self._canonical_space(img)
        if img.ndim == 3 and img.shape[2] == 3:
            return "rgb", self._canonical_space(img)
        if img.ndim == 3 and img.shape[2] == 4:
            f = self._canonical_space(img)
            alpha = f[..., 3:4]
            return "rgba", np.ascontiguousarray(np.concatenate([f[..., :3] * alpha, alpha], axis=-1))
        raise CanonicalVideoError(
            f"edit must be RGB, RGBA or a single-channel mask, got shape {tuple(img.shape)}"
        )

    def _render_prepared(self, kind: str, img: np.ndarray, t: int) -> np.ndarray:
        g = self.frame_grid(t)
        if kind != "rgba":
            return self._warp_frame(img, t, grid_t=g, colour=kind != "mask")
        w = self._remap(img, t, grid_t=g, shown=True)
        base = self._frames_cache[t] if self._frames_cache is not None else self._remap(self.canonical, t, True, grid_t=g)
        a = w[..., 3:4] if self.interpolation == "bicubic" else np.clip(w[..., 3:4], 0.0, 1.0)  # rings as baked in
        return np.clip(w[..., :3] + base * (1.0 - a), 0.0, 1.0).astype(np.float32)

    def render_frame(self, t: int, image: Optional[np.ndarray] = None) -> np.ndarray:
        """Frame t of :meth:`render` ([H, W, 3], or [H, W] for a mask), at output size."""
        if not 0 <= t < self.num_frames:
            raise CanonicalVideoError(f"frame {t} out of range 0..{self.num_frames - 1}")
        return self._render_prepared(*self._prepare_edit(image), t)

    def iter_frames(self, image: Optional[np.ndarray] = None):
        """Yield the frames of :meth:`render` one by one (memory: one output frame)."""
        kind, img = self._prepare_edit(image)
        for t in range(self.num_frames):
            yield self._render_prepared(kind, img, t)

    def render(self, image: Optional[np.ndarray] = None) -> np.ndarray:
        """Frames of the canonical image, or of an edit living in canonical space.

        * ``None``: the video itself.
        * RGB [Hc, Wc, 3]: a replacement canonical image (e.g. stylised).
        * RGBA [Hc, Wc, 4]: an overlay (scribble), alpha-composited over the original frames.
        * mask [Hc, Wc] or [Hc, Wc, 1]: warped soft mask [T, H, W].

        Outside the canvas (``padding``): the video and an RGB replacement show black, grey or the
        edge; an overlay adds nothing there unless "border" (then its edge), a mask is 0 there
        unless "border" (then its edge) -- so ``render(rgba)`` equals ``with_edit(rgba).frames()``.
        Between pixels the video, RGB replacements and overlays follow ``interpolation``; masks are
        bilinear.
        """
        if image is None:
            return self.frames().copy()
        kind, img = self._prepare_edit(image)
        self.check_alloc(1 if kind == "mask" else 3, 4, "rendering")
        out = np.empty((self.num_frames,) + self.frame_size + (() if kind == "mask" else (3,)), np.float32)
        for t in range(self.num_frames):
            out[t] = self._render_prepared(kind, img, t)
        return out

    def propagate_mask(self, mask: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """Canonical mask -> per-frame boolean masks [T, H, W] at output size."""
        m = np.asarray(mask)
        if m.ndim == 3 and m.shape[2] == 1:
            m = m[..., 0]
        if m.ndim != 2:
            raise CanonicalVideoError(f"mask must be 2-D, got shape {tuple(m.shape)}")
        if m.dtype == bool:
            m = m.astype(np.float32)
        img = self._canonical_space(m)
        self.check_alloc(1, 1, "propagating a mask")
        out = np.empty((self.num_frames,) + self.frame_size, dtype=bool)
        for t in range(self.num_frames):
            out[t] = self._warp_frame(img, t) >= threshold
        return out

    # ---- geometry (gendef.video.tracking) ----------------------------------------------
    def track(self, points) -> tuple:
        """Canonical points [N, 2] (x, y) -> output-pixel positions [T, N, 2] and visibility [T, N].

        See :func:`gendef.video.tracking.track` (sub-pixel inverse look-up of the grid).
        """
        return tracking.track(self, points)

    def frame_to_canonical(self, points, frame: int = 0) -> np.ndarray:
        """Points given on frame ``frame`` (output pixels) -> canonical coordinates (bilinear grid look-up)."""
        return tracking.frame_to_canonical(self, points, frame)

    def flows(self, space: str = "frame") -> np.ndarray:
        """Forward flow between consecutive frames, [T-1, H, W, 2] at output size.

        ``space``: "frame" (output pixels) or "canonical" (grid[t+1] - grid[t]); see
        :func:`gendef.video.tracking.flows`.
        """
        return tracking.flows(self, space)

    # ---- output size and canonical resolution ------------------------------------------
    def replaced(self, **changes) -> "CanonicalVideo":
        """This video with ``changes`` to any of its fields, validated as new; every other field kept
        (``padding`` and ``interpolation`` included), ``metadata`` copied."""
        changes.setdefault("metadata", dict(self.metadata))
        return replace(self, **changes)

    def with_size(self, size: Sequence[int]) -> "CanonicalVideo":
        """Same canonical and motion, frames rendered at ``size`` = (H, W)."""
        return self.replaced(size=tuple(size))

    def with_canonical_resolution(self, canonical: np.ndarray, size: Optional[Sequence[int]] = None) -> "CanonicalVideo":
        """Same video with a canonical image of the same canvas at another resolution.

        ``canonical`` [Hc', Wc', 3] covers exactly the canvas of the current one; grid
        values are rescaled to its pixels (``x' = (x + 0.5) * Wc' / Wc - 0.5``, same for
        y), so every frame shows the same content, sharper. ``size`` optionally sets the
        output size at the same time.
        """
        new = _validate_canonical(canonical)
        (hc, wc), (hn, wn) = self.canvas_size, new.shape[:2]
        scale = np.array([wn / wc, hn / hc], np.float32)
        grid = (self.grid + 0.5) * scale - 0.5
        out_size = self.size if size is None else tuple(size)
        return self.replaced(canonical=new, grid=grid, size=out_size)

    # ---- persistence (gendef.video.npzformat) --------------------------------------------
    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write an ``.npz`` (no pickles). Written atomically: a crash leaves the old file.

        ``padding`` is written unless it is "black", ``interpolation`` unless it is "bilinear" (the
        defaults, what a file without them means), so such files stay byte for byte as before.
        """
        meta = dict(self.metadata)
        meta.setdefault("format_version", FORMAT_VERSION)
        arrays = dict(
            canonical=self.canonical,
            grid=self.grid,
            fps=np.array(self.fps, dtype=np.float64),
            size=np.array(self.size, dtype=np.int64),
            metadata=np.array(json.dumps(meta)),
        )
        if self.padding != "black":
            arrays["padding"] = np.array(self.padding)
        if self.interpolation != "bilinear":
            arrays["interpolation"] = np.array(self.interpolation)
        return write_npz(path, arrays)

    @classmethod
    def load(cls, path: Union[str, os.PathLike, io.IOBase]) -> "CanonicalVideo":
        """Read an ``.npz`` written by :meth:`save`; any damage gives a CanonicalVideoError.

        Member headers are checked against the MAX_* limits (:func:`check_npz`) before any
        array is decompressed. A file written before ``padding`` existed loads as "black", one
        before ``interpolation`` as "bilinear"; a padding other than :data:`PADDINGS` or an
        interpolation other than :data:`INTERPOLATIONS` is refused.
        """
        return cls(**read_canonical_arrays(path))

    def to_video(self, path: Union[str, os.PathLike], image: Optional[np.ndarray] = None, fps: Optional[float] = None,
                 audio="auto") -> Path:
        """Export frames (of the video or of an edit) as .mp4 or .gif, at output size.

        Frames are rendered one at a time straight to uint8 (:meth:`frames_uint8_iter`) and
        streamed to the encoder (a .gif collects its frames).
        ``audio`` (mp4 and other video containers; a gif is always silent): ``"auto"`` muxes
        the span of the source clip's sound recorded in the metadata (see :meth:`audio_span`),
        ``None``/``"none"`` exports silently, a file path uses that file's sound.
        """
        from .io import check_output_path, write_video_frames

        check_output_path(path)
        return write_video_frames(self.frames_uint8_iter(image), path, fps=fps or self.fps, audio=self.audio_span(audio, path))

    def audio_span(self, audio="auto", path=None):
        """The sound an export of this video plays (``gendef.video.audio.AudioSpan``), or None.

        A missing or silent source logs one warning line and gives None (a silent export).
        """
        from .audio import export_audio

        return export_audio(audio, self.metadata, self.num_frames / self.fps, path)

    def frames_uint8(self, image: Optional[np.ndarray] = None) -> np.ndarray:
        """:meth:`render` as uint8 [T, H, W, 3] (:meth:`frames_uint8_iter` stacked; no float copy of the clip)."""
        self.check_alloc(3, 1, "exporting")
        frames = np.empty((self.num_frames,) + self.frame_size + (3,), np.uint8)
        for t, f in enumerate(self.frames_uint8_iter(image)):
            frames[t] = f
        return frames

    def frames_uint8_iter(self, image: Optional[np.ndarray] = None):
        """Yield the frames of :meth:`render` as uint8 [H, W, 3], one at a time (memory: one frame).

        The video and RGB edits are resampled in 8 bits directly (the canonical converted
        once; within one level of the float render); overlays and masks go through float.
        """
        from ..imageutil import to_uint8

        kind, img = self._prepare_edit(image)
        src = to_uint8(img) if kind in ("video", "rgb") else None
        for t in range(self.num_frames):
            if src is not None:
                yield self._remap(src, t, True)
            else:
                f = self._render_prepared(kind, img, t)
                yield to_uint8(f[..., None] if f.ndim == 2 else f)

    def frame_edit_to_canonical(self, edit: np.ndarray, frame: int) -> np.ndarray:
        """An edit made on frame ``frame`` -> the same edit in canonical space, ready to propagate.

        ``edit``: RGBA [H, W, 4] (straight alpha), RGB [H, W, 3] (an opaque replacement of the
        frame) or a mask [H, W], at the frame size, float in [0, 1] or uint8. Returns float32
        RGBA [Hc, Wc, 4] (or a mask [Hc, Wc]); canonical pixels the frame never shows get
        alpha 0, so ``render``/``with_edit`` leave them untouched.
        """
        img = np.asarray(edit)
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[..., 0]
        if img.shape[:2] != self.frame_size or not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (3, 4))):
            h, w = self.frame_size
            raise CanonicalVideoError(f"a frame edit must be RGBA, RGB or a mask of the frame size {w}x{h}, got shape {tuple(img.shape)}")
        if not 0 <= int(frame) < self.num_frames:
            raise CanonicalVideoError(f"frame {frame} out of range 0..{self.num_frames - 1}")
        if img.ndim == 3 and img.shape[2] == 3:
            img = np.concatenate([to_float01(img), np.ones(img.shape[:2] + (1,), np.float32)], -1)
        return frame_layer_to_canonical(self.frame_grid(int(frame)), img, self.canvas_size)

    def with_edit(self, rgba: np.ndarray) -> "CanonicalVideo":
        """Same motion, with an RGBA edit living in canonical space composited into the canonical image."""
        from ..imageutil import composite_over

        img = np.asarray(rgba)
        if img.ndim != 3 or img.shape[2] != 4 or img.shape[:2] != self.canvas_size:
            raise CanonicalVideoError(f"edit must be RGBA of the canonical size {self.canvas_size}, got shape {tuple(img.shape)}")
        return self.with_canonical(composite_over(self.canonical, img))

    def with_canonical(self, canonical: np.ndarray) -> "CanonicalVideo":
        """Same motion, another canonical image (an edit baked in)."""
        return self.replaced(canonical=canonical)


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------
def _validate_canonical(c) -> np.ndarray:
    c = np.asarray(c)
    if c.ndim != 3 or c.shape[2] != 3:
        raise CanonicalVideoError(f"canonical must have shape [Hc, Wc, 3], got {tuple(c.shape)}")
    if c.shape[0] < 2 or c.shape[1] < 2:
        raise CanonicalVideoError(f"canonical must be at least 2x2, got {c.shape[0]}x{c.shape[1]}")
    if c.dtype == np.uint8:
        c = to_float01(c)
    elif not np.issubdtype(c.dtype, np.floating):
        raise CanonicalVideoError(f"canonical must be float32 in [0, 1] (or uint8), got dtype {c.dtype}")
    c = np.ascontiguousarray(c, dtype=np.float32)
    if not np.all(np.isfinite(c)):
        raise CanonicalVideoError("canonical contains NaN or inf")
    if c.min() < -1e-3 or c.max() > 1 + 1e-3:
        raise CanonicalVideoError(f"canonical values must be in [0, 1], got [{c.min():.3g}, {c.max():.3g}]")
    return np.clip(c, 0.0, 1.0)


def _validate_grid(g) -> np.ndarray:
    g = np.asarray(g)
    if g.ndim != 4 or g.shape[3] != 2:
        raise CanonicalVideoError(f"grid must have shape [T, H, W, 2], got {tuple(g.shape)}")
    if g.shape[0] < 1 or g.shape[1] < 2 or g.shape[2] < 2:
        raise CanonicalVideoError(f"grid needs at least 1 frame of 2x2 pixels, got {tuple(g.shape)}")
    if not np.issubdtype(g.dtype, np.floating):
        raise CanonicalVideoError(f"grid must be float32 (canonical pixel units), got dtype {g.dtype}")
    g = np.ascontiguousarray(g, dtype=np.float32)
    if not np.all(np.isfinite(g)):
        raise CanonicalVideoError("grid contains NaN or inf")
    return g


def _validate_size(size, grid_size: tuple) -> tuple:
    """Output size (H, W): two ints in [2, MAX_OUTPUT_SIDE]; None means the grid's size."""
    if size is None:
        return tuple(grid_size)
    try:
        vals = [float(v) for v in np.asarray(size, dtype=np.float64).reshape(-1)]
    except (TypeError, ValueError):
        raise CanonicalVideoError(f"size must be (height, width), got {size!r}") from None
    if len(vals) != 2 or not all(np.isfinite(v) and v == int(v) for v in vals):
        raise CanonicalVideoError(f"size must be two whole numbers (height, width), got {size!r}")
    h, w = int(vals[0]), int(vals[1])
    if not (2 <= h <= MAX_OUTPUT_SIDE and 2 <= w <= MAX_OUTPUT_SIDE):
        raise CanonicalVideoError(f"size must be between 2 and {MAX_OUTPUT_SIDE} pixels a side, got {w}x{h}")
    return h, w

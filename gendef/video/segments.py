"""SegmentedVideo: a whole clip as a chain of CanonicalVideos, and the one call that loads either kind.

Segment i is a CanonicalVideo of T_i frames that renders clip frames [start_i, start_i + T_i).
Neighbours overlap by at least one frame, except at a hard cut, where the next segment starts
exactly where the previous one ends (``cuts`` names those clip frames). A frame is rendered by at
most two segments; across an overlap of L frames the second segment's weight rises linearly,
(j + 1) / (L + 1) at the overlap's j-th frame, and the first one's falls (a cross-fade); at a cut
nothing is blended. A chain of one segment is exactly its CanonicalVideo.

Edits carry along the chain (:meth:`SegmentedVideo.carry`): an edit living on segment k's canonical
image is rendered into the frames k shares with k+1 (and k-1), each such frame layer is taken back
to the neighbour's canonical image through its grid (:func:`~gendef.video.frame_edit.frame_layer_to_canonical`,
the same inversion as a frame edit), and so on outward. Canonical pixels a segment never shows in a
shared frame receive nothing, so content a segment never shows stays unedited; a cut stops the carry.

Edits are given either as one canonical-space image of segment ``segment`` (carried to the others)
or as a list with one entry per segment (None: unedited), as :meth:`carry` and
:meth:`frame_edit_to_canonical` return. Every operation speaks clip frames and output pixels.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np

from ..errors import CanonicalVideoError
from ..imageutil import to_float01, to_uint8
from .canonical_video import MAX_RENDER_BYTES, CanonicalVideo
from .npzformat import FORMAT_VERSION, MAX_SEGMENTS, is_segmented_npz, read_segmented_arrays, write_npz
from .padding import remap as padding_remap
from . import tracking
from .tracking import validate_points

__all__ = ["SegmentedVideo", "load_video_npz"]


class SegmentedVideo:
    """Segments ``[(start_frame, CanonicalVideo), ...]`` in clip order, an fps, metadata and hard ``cuts``.

    ``cuts``: clip frames where a segment starts with a hard cut (zero overlap, no blend); each must be
    some segment's start. ``fps`` defaults to the first segment's. All segments share one output size;
    each keeps its own ``padding`` (what it shows outside its canvas) and ``interpolation``, saved with
    the chain.
    """

    def __init__(self, segments, fps: Optional[float] = None, metadata: Optional[dict] = None, cuts=()):
        pairs = _validate_pairs(segments)
        self.starts = tuple(s for s, _ in pairs)
        self.segments = tuple(v for _, v in pairs)
        self.cuts = frozenset(_validate_cuts(cuts, self.starts))
        self.fps = _validate_fps(self.segments[0].fps if fps is None else fps)
        if metadata is not None and not isinstance(metadata, dict):
            raise CanonicalVideoError("metadata must be a dict")
        self.metadata = dict(metadata or {})
        self._plan = _plan(self.starts, [v.num_frames for v in self.segments], self.cuts)

    # ---- the chain -----------------------------------------------------------------------
    @property
    def num_segments(self) -> int:
        return len(self.segments)

    @property
    def num_frames(self) -> int:
        return len(self._plan)

    @property
    def size(self) -> tuple:
        """(H, W) of the output frames (every segment's ``size``)."""
        return self.segments[0].size

    frame_size = size

    @property
    def ends(self) -> tuple:
        """One past the last clip frame of each segment."""
        return tuple(s + v.num_frames for s, v in zip(self.starts, self.segments))

    def coverage(self, frame: int) -> tuple:
        """Who renders clip frame ``frame``: ``((segment, local frame, weight), ...)``, weights summing to 1."""
        self._check_frame(frame)
        return self._plan[int(frame)]

    def segment_of(self, frame: int) -> int:
        """The segment that weighs most in clip frame ``frame`` (the earlier one on a tie)."""
        return max(self.coverage(frame), key=lambda c: (c[2], -c[0]))[0]

    def shared_frames(self, i: int) -> range:
        """Clip frames segments i and i+1 both render (empty at a cut)."""
        return range(self.starts[i + 1], self.ends[i])

    def __repr__(self) -> str:
        h, w = self.size
        return (f"SegmentedVideo(segments={self.num_segments}, frames={self.num_frames}, starts={list(self.starts)}, "
                f"cuts={sorted(self.cuts)}, frame_size=({h}, {w}), fps={self.fps:g})")

    def _check_frame(self, frame) -> None:
        if not 0 <= int(frame) < self.num_frames:
            raise CanonicalVideoError(f"frame {frame} out of range 0..{self.num_frames - 1}")

    def _check_segment(self, k) -> int:
        if not 0 <= int(k) < self.num_segments:
            raise CanonicalVideoError(f"segment {k} out of range 0..{self.num_segments - 1}")
        return int(k)

    # ---- carrying edits along the chain ----------------------------------------------------
    def carry(self, edit: np.ndarray, segment: int = 0) -> list:
        """An edit of segment ``segment``'s canonical image -> one edit per segment (None where it never shows).

        ``edit``: RGBA [Hc, Wc, 4] (straight alpha), RGB [Hc, Wc, 3] (a replacement, carried as an
        opaque layer) or a mask [Hc, Wc]. Entry ``segment`` is ``edit`` itself; the others are RGBA
        (or masks) in their own canonical space.
        """
        k = self._check_segment(segment)
        img = np.asarray(edit)
        img = img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img
        if img.shape[:2] != self.segments[k].canvas_size or not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (3, 4))):
            hc, wc = self.segments[k].canvas_size
            raise CanonicalVideoError(f"an edit of segment {k} must be RGBA, RGB or a mask of its canonical size {wc}x{hc}, "
                                      f"got shape {tuple(img.shape)}")
        edits = [None] * self.num_segments
        edits[k] = img
        return self._spread(edits, k, k, _as_layer(img))

    def frame_edit_to_canonical(self, edit: np.ndarray, frame: int) -> list:
        """An edit painted on clip frame ``frame`` -> one canonical-space edit per segment (None where unseen).

        ``edit`` as for :meth:`CanonicalVideo.frame_edit_to_canonical` (RGBA, RGB or a mask at frame size).
        Each segment rendering that frame takes it directly; the others receive it along the chain.
        """
        self._check_frame(frame)
        cov = self.coverage(frame)
        edits = [None] * self.num_segments
        for i, local, _ in cov:
            edits[i] = self.segments[i].frame_edit_to_canonical(edit, local)
        lo, hi = cov[0][0], cov[-1][0]
        return self._spread(edits, lo, hi, edits[lo], edits[hi])

    def _spread(self, edits: list, lo: int, hi: int, left_layer, right_layer=None) -> list:
        """Fill ``edits`` outward from segments lo (leftward) and hi (rightward), carrying layers."""
        layer = left_layer
        for i in range(lo, 0, -1):
            layer = self._carry_step(layer, i, i - 1) if layer is not None else None
            edits[i - 1] = layer
        layer = left_layer if right_layer is None else right_layer
        for i in range(hi, self.num_segments - 1):
            layer = self._carry_step(layer, i, i + 1) if layer is not None else None
            edits[i + 1] = layer
        return edits

    def _carry_step(self, layer: np.ndarray, src: int, dst: int) -> Optional[np.ndarray]:
        """A layer (straight RGBA or mask) on segment src's canonical -> the same on dst's, via their shared frames."""
        frames = self.shared_frames(min(src, dst))
        best = None
        for f in frames:
            framed = _layer_on_frame(self.segments[src], layer, f - self.starts[src])
            if not (_weight(framed) > 0).any():
                continue
            got = self.segments[dst].frame_edit_to_canonical(framed, f - self.starts[dst])
            if best is None:
                best = got
            else:  # a canonical pixel several shared frames show keeps its strongest sample
                stronger = _weight(got) > _weight(best)
                best = np.where(stronger[..., None] if got.ndim == 3 else stronger, got, best)
        if best is None or not (_weight(best) > 0).any():
            return None
        return best

    def _edits(self, edits, segment: int) -> list:
        """One entry per segment (None: unedited) from a per-segment list or one image of ``segment``."""
        if edits is None:
            return [None] * self.num_segments
        if isinstance(edits, (list, tuple)):
            if len(edits) != self.num_segments:
                raise CanonicalVideoError(f"edits must list one entry per segment ({self.num_segments}), got {len(edits)}")
            return list(edits)
        return self.carry(edits, segment)

    # ---- rendering -------------------------------------------------------------------------
    def iter_frames(self, edits=None, segment: int = 0) -> Iterator[np.ndarray]:
        """Yield the frames of :meth:`render` one by one (memory: a frame per segment rendering it)."""
        per_seg = self._edits(edits, segment)
        mask = _is_mask_edits(per_seg)
        running = {}
        for t, cov in enumerate(self._plan):
            out = None
            for i, local, w in cov:
                if i not in running:
                    running[i] = self._segment_frames(i, per_seg[i], mask)
                f = next(running[i])
                out = f if len(cov) == 1 else (w * f if out is None else out + w * f)
                if local == self.segments[i].num_frames - 1:
                    del running[i]
            yield out

    def _segment_frames(self, i: int, edit, mask: bool) -> Iterator[np.ndarray]:
        seg = self.segments[i]
        if mask and edit is None:
            return iter([np.zeros(seg.size, np.float32)] * seg.num_frames)
        return seg.iter_frames(edit)

    def render(self, edits=None, segment: int = 0) -> np.ndarray:
        """Every frame of the whole clip, [N, H, W, 3] float32 (or [N, H, W] for masks).

        ``edits``: None (the clip), one canonical-space image of segment ``segment`` (RGB replacement,
        RGBA overlay or mask, carried to the other segments), or a list with one entry per segment.
        """
        per_seg = self._edits(edits, segment)
        mask = _is_mask_edits(per_seg)
        h, w = self.size
        need = self.num_frames * h * w * (1 if mask else 3) * 4
        if need > MAX_RENDER_BYTES:
            raise CanonicalVideoError(f"rendering {self.num_frames} frames at {w}x{h} would need {need / 2**30:.1f} GiB "
                                      f"(limit {MAX_RENDER_BYTES / 2**30:.0f} GiB); use iter_frames()")
        out = np.empty((self.num_frames, h, w) + (() if mask else (3,)), np.float32)
        for t, f in enumerate(self.iter_frames(per_seg)):
            out[t] = f
        return out

    def render_frame(self, frame: int, edits=None, segment: int = 0) -> np.ndarray:
        """Clip frame ``frame`` of :meth:`render` ([H, W, 3], or [H, W] for masks), blended across an overlap."""
        self._check_frame(frame)
        per_seg = self._edits(edits, segment)
        mask = _is_mask_edits(per_seg)
        out = None
        for i, local, w in self._plan[int(frame)]:
            seg, e = self.segments[i], per_seg[i]
            f = np.zeros(seg.size, np.float32) if mask and e is None else seg.render_frame(local, e)
            out = w * f if out is None else out + w * f
        return out.astype(np.float32)

    def frames(self) -> np.ndarray:
        """The whole clip, [N, H, W, 3] float32 (:meth:`render` of no edit)."""
        return self.render()

    def frames_uint8(self, edits=None, segment: int = 0) -> np.ndarray:
        """:meth:`frames_uint8_iter` stacked: uint8 [N, H, W, 3]."""
        h, w = self.size
        need = self.num_frames * h * w * 3
        if need > MAX_RENDER_BYTES:
            raise CanonicalVideoError(f"exporting {self.num_frames} frames at {w}x{h} would need {need / 2**30:.1f} GiB "
                                      f"(limit {MAX_RENDER_BYTES / 2**30:.0f} GiB); use frames_uint8_iter()")
        out = np.empty((self.num_frames, h, w, 3), np.uint8)
        for t, f in enumerate(self.frames_uint8_iter(edits, segment)):
            out[t] = f
        return out

    def propagate_mask(self, mask, threshold: float = 0.5, segment: int = 0) -> np.ndarray:
        """A mask on segment ``segment``'s canonical (or one per segment) -> per-frame booleans [N, H, W]."""
        if isinstance(mask, (list, tuple)):
            masks = [None if m is None else _float_mask(m) for m in mask]
        else:
            masks = _float_mask(mask)
        per_seg = self._edits(masks, segment)
        if not _is_mask_edits(per_seg):
            raise CanonicalVideoError("propagate_mask needs masks [Hc, Wc]")
        out = np.empty((self.num_frames,) + tuple(self.size), bool)
        for t, f in enumerate(self.iter_frames(per_seg)):
            out[t] = f >= threshold
        return out

    def frames_uint8_iter(self, edits=None, segment: int = 0) -> Iterator[np.ndarray]:
        """:meth:`iter_frames` as uint8 [H, W, 3] (a mask repeated on the three channels)."""
        if self.num_segments == 1:  # exactly CanonicalVideo's export
            yield from self.segments[0].frames_uint8_iter(self._edits(edits, segment)[0])
            return
        for f in self.iter_frames(edits, segment):
            yield to_uint8(np.repeat(f[..., None], 3, -1) if f.ndim == 2 else f)

    def to_video(self, path: Union[str, os.PathLike], edits=None, fps: Optional[float] = None, audio="auto",
                 segment: int = 0) -> Path:
        """Export the whole clip (or an edit of it) as .mp4 or .gif, streamed frame by frame.

        ``audio`` as for :meth:`CanonicalVideo.to_video`: "auto" plays the source's span recorded in
        the clip's metadata, None/"none" is silent, a file path plays that file's sound.
        """
        from .audio import export_audio
        from .io import check_fps, check_output_path, write_video_frames

        check_output_path(path)
        rate = check_fps(fps or self.fps)
        span = export_audio(audio, self.metadata, self.num_frames / self.fps, path)
        return write_video_frames(self.frames_uint8_iter(edits, segment), path, fps=rate, audio=span)

    # ---- geometry --------------------------------------------------------------------------
    def frame_to_canonical(self, points, frame: int = 0) -> np.ndarray:
        """Points on clip frame ``frame`` -> canonical coordinates of segment :meth:`segment_of` (frame)."""
        self._check_frame(frame)
        k = self.segment_of(frame)
        return self.segments[k].frame_to_canonical(points, int(frame) - self.starts[k])

    def track(self, points, segment: int = 0) -> tuple:
        """Points on segment ``segment``'s canonical [P, 2] -> positions [N, P, 2] and visibility [N, P].

        Each segment tracks with :meth:`CanonicalVideo.track`; at a boundary a point is handed to the
        next segment through a shared frame where it is visible (its frame position looked up in
        the neighbour's grid). In shared frames the two positions are blended with the frame weights.
        Frames of segments the point never reaches (not visible in any shared frame, or past a cut)
        are NaN and not visible.
        """
        k = self._check_segment(segment)
        pts = validate_points(points)
        per = [None] * self.num_segments
        per[k] = self.segments[k].track(pts) + (np.ones(len(pts), bool),)
        for order in (range(k, 0, -1), range(k, self.num_segments - 1)):
            for i in order:
                j = i - 1 if order.step < 0 else i + 1
                per[j] = self._hand_over(per[i], i, j, len(pts))
        return self._merge_tracks(per, len(pts))

    def _hand_over(self, res, src: int, dst: int, n: int) -> tuple:
        """Track results (pos, vis, known) of segment dst from those of its neighbour src."""
        pos, vis, known = res
        t_dst = self.segments[dst].num_frames
        out = (np.full((t_dst, n, 2), np.nan, np.float32), np.zeros((t_dst, n), bool), np.zeros(n, bool))
        frames = list(self.shared_frames(min(src, dst)))
        if not frames:
            return out
        locals_src = np.array(frames) - self.starts[src]
        seen = vis[locals_src] & known[None]  # [F, n]
        order = np.argsort(np.abs(np.arange(len(frames)) - (len(frames) - 1) / 2.0), kind="stable")
        h, w = self.size
        canon, start = np.zeros((n, 2), np.float64), np.zeros((n, 2), np.float64)
        for fi in order:  # the most central shared frame where each point is visible
            take = seen[fi] & ~out[2]
            if take.any():
                start[take] = np.clip(pos[locals_src[fi], take], 0.0, [w - 1.0, h - 1.0])
                canon[take] = self.segments[dst].frame_to_canonical(start[take], frames[fi] - self.starts[dst])
                out[2][take] = True
        if out[2].any():
            p, v = tracking.track(self.segments[dst], canon[out[2]], start=start[out[2]])
            out[0][:, out[2]] = p
            out[1][:, out[2]] = v
        return out

    def _merge_tracks(self, per: list, n: int) -> tuple:
        pos = np.full((self.num_frames, n, 2), np.nan, np.float32)
        vis = np.zeros((self.num_frames, n), bool)
        for t, cov in enumerate(self._plan):
            if len(cov) == 1:
                i, local, _ = cov[0]
                pos[t], vis[t] = per[i][0][local], per[i][1][local] & per[i][2]
                continue
            (i, li, wi), (j, lj, wj) = cov
            pi, pj = per[i][0][li], per[j][0][lj]
            vi, vj = per[i][1][li] & per[i][2], per[j][1][lj] & per[j][2]
            both = (wi * pi + wj * pj).astype(np.float32)
            heavy_i = (pi if wi >= wj else pj)
            pos[t] = np.where((vi & vj)[:, None], both, np.where(vi[:, None], pi, np.where(vj[:, None], pj, heavy_i)))
            vis[t] = vi | vj
        return pos, vis

    # ---- edits baked in, persistence -------------------------------------------------------
    def with_edit(self, edits, segment: int = 0) -> "SegmentedVideo":
        """Same motion, with an edit (one image of segment ``segment``, carried, or one per segment) baked in.

        RGBA entries are composited into their segment's canonical image; an RGB entry replaces it.
        """
        new = []
        for seg, e in zip(self.segments, self._edits(edits, segment)):
            if e is None:
                new.append(seg)
            elif np.ndim(e) == 3 and np.shape(e)[2] == 3:
                new.append(seg.with_canonical(to_float01(np.asarray(e))))
            else:
                new.append(seg.with_edit(e))
        return SegmentedVideo(list(zip(self.starts, new)), fps=self.fps, metadata=dict(self.metadata), cuts=self.cuts)

    def with_size(self, size) -> "SegmentedVideo":
        """Same chain, every segment's frames rendered at ``size`` = (H, W)."""
        return SegmentedVideo([(s, v.with_size(size)) for s, v in zip(self.starts, self.segments)], fps=self.fps,
                              metadata=dict(self.metadata), cuts=self.cuts)

    def head(self, n: int) -> "SegmentedVideo":
        """The first ``n`` clip frames: segments starting later dropped, the last one shortened.

        A shortened segment that no longer outlasts its neighbour is dropped too (the neighbour
        renders those frames alone).
        """
        n = int(n)
        if not 1 <= n <= self.num_frames:
            raise CanonicalVideoError(f"head needs 1 to {self.num_frames} frames, got {n}")
        pairs = [(s, v) for s, v in zip(self.starts, self.segments) if s < n]
        while True:
            s, v = pairs[-1]
            if s + v.num_frames > n:
                pairs[-1] = (s, v.replaced(grid=v.grid[: n - s]))
            if len(pairs) > 1 and pairs[-1][0] + pairs[-1][1].num_frames <= pairs[-2][0] + pairs[-2][1].num_frames:
                pairs.pop()
                continue
            break
        kept = {s for s, _ in pairs}
        return SegmentedVideo(pairs, fps=self.fps, metadata=dict(self.metadata), cuts=[c for c in self.cuts if c in kept])

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write the whole chain to one ``.npz`` (no pickles), atomically (``padding``, one per segment, only if one
        isn't black; ``interpolation`` likewise only if one isn't bilinear)."""
        meta = dict(self.metadata)
        meta.setdefault("format_version", FORMAT_VERSION)
        arrays = {}
        for i, seg in enumerate(self.segments):
            arrays[f"seg{i}_canonical"] = seg.canonical
            arrays[f"seg{i}_grid"] = seg.grid
        arrays.update(
            starts=np.array(self.starts, np.int64), cuts=np.array(sorted(self.cuts), np.int64),
            fps=np.array(self.fps, np.float64), size=np.array(self.size, np.int64),
            metadata=np.array(json.dumps(meta)),
            segment_metadata=np.array(json.dumps([dict(s.metadata) for s in self.segments])),
        )
        if any(seg.padding != "black" for seg in self.segments):  # none written: every segment black
            arrays["padding"] = np.array([seg.padding for seg in self.segments])
        if any(seg.interpolation != "bilinear" for seg in self.segments):  # none written: every segment bilinear
            arrays["interpolation"] = np.array([seg.interpolation for seg in self.segments])
        return write_npz(path, arrays)

    @classmethod
    def load(cls, path: Union[str, os.PathLike, io.IOBase]) -> "SegmentedVideo":
        """Read a file written by :meth:`save` (headers checked against the limits before any array is read)."""
        a = read_segmented_arrays(path)
        try:
            pairs = [(s, CanonicalVideo(c, g, a["fps"], m, size=a["size"], padding=p, interpolation=i))
                     for s, c, g, m, p, i in a["segments"]]
            return cls(pairs, fps=a["fps"], metadata=a["metadata"], cuts=a["cuts"])
        except CanonicalVideoError as e:
            raise CanonicalVideoError(f"{getattr(path, 'name', path)}: {e}") from None

    def as_canonical(self) -> CanonicalVideo:
        """The CanonicalVideo of a one-segment chain (the clip's fps; its metadata over the segment's)."""
        if self.num_segments != 1:
            raise CanonicalVideoError(f"a chain of {self.num_segments} segments is not one CanonicalVideo")
        seg = self.segments[0]
        return seg.replaced(fps=self.fps, metadata={**seg.metadata, **self.metadata})


def load_video_npz(path: Union[str, os.PathLike, io.IOBase]) -> Union[CanonicalVideo, SegmentedVideo]:
    """Open either kind of .npz: a CanonicalVideo file, or a one-segment chain, gives a CanonicalVideo;
    a chain of several segments gives a SegmentedVideo."""
    if is_segmented_npz(path):
        video = SegmentedVideo.load(path)
        return video.as_canonical() if video.num_segments == 1 else video
    return CanonicalVideo.load(path)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _validate_pairs(segments) -> list:
    try:
        pairs = [(s, v) for s, v in segments]
    except (TypeError, ValueError):
        raise CanonicalVideoError("segments must be a sequence of (start_frame, CanonicalVideo) pairs") from None
    if not 1 <= len(pairs) <= MAX_SEGMENTS:
        raise CanonicalVideoError(f"a SegmentedVideo needs 1 to {MAX_SEGMENTS} segments, got {len(pairs)}")
    out = []
    for i, (s, v) in enumerate(pairs):
        if not isinstance(v, CanonicalVideo):
            raise CanonicalVideoError(f"segment {i} must be a CanonicalVideo, got {type(v).__name__}")
        if isinstance(s, (bool, np.bool_)) or not float(s) == int(s):
            raise CanonicalVideoError(f"segment {i}'s start must be a whole frame number, got {s!r}")
        out.append((int(s), v))
    if out[0][0] != 0:
        raise CanonicalVideoError(f"the first segment must start at frame 0, got {out[0][0]}")
    sizes = {v.size for _, v in out}
    if len(sizes) != 1:
        raise CanonicalVideoError(f"every segment must have the same output size, got {sorted(sizes)}")
    return out


def _validate_cuts(cuts, starts: tuple) -> set:
    try:
        got = {int(c) for c in cuts}
    except (TypeError, ValueError):
        raise CanonicalVideoError(f"cuts must be clip frame numbers, got {cuts!r}") from None
    bad = sorted(got - set(starts[1:]))
    if bad:
        raise CanonicalVideoError(f"cuts {bad} are not the start of a segment after the first ({list(starts[1:])})")
    return got


def _validate_fps(fps) -> float:
    try:
        f = float(fps)
    except (TypeError, ValueError):
        raise CanonicalVideoError(f"fps must be a number, got {fps!r}") from None
    if not np.isfinite(f) or f <= 0:
        raise CanonicalVideoError(f"fps must be a positive finite number, got {f}")
    return f


def _plan(starts: tuple, lengths: list, cuts: set) -> list:
    """Per clip frame: ((segment, local frame, weight), ...), after checking the chain covers the clip."""
    ends = [s + n for s, n in zip(starts, lengths)]
    for i in range(len(starts) - 1):
        overlap = ends[i] - starts[i + 1]
        where = f"segments {i} and {i + 1} (frames {starts[i]}..{ends[i] - 1} and {starts[i + 1]}..{ends[i + 1] - 1})"
        if starts[i + 1] <= starts[i] or ends[i + 1] <= ends[i]:
            raise CanonicalVideoError(f"{where}: each segment must start and end after the previous one")
        if starts[i + 1] in cuts and overlap != 0:
            raise CanonicalVideoError(f"{where}: a hard cut at frame {starts[i + 1]} needs zero overlap, got {overlap}")
        if starts[i + 1] not in cuts and overlap < 1:
            raise CanonicalVideoError(f"{where}: neighbours must overlap by at least 1 frame (or name the boundary a cut)")
        if i + 2 < len(starts) and starts[i + 2] < ends[i]:
            raise CanonicalVideoError(f"{where}: segment {i + 2} starts before segment {i} ends (at most two segments a frame)")
    plan = [[] for _ in range(ends[-1])]
    for i, (s, e) in enumerate(zip(starts, ends)):
        for t in range(s, e):
            plan[t].append([i, t - s, 1.0])
    for i in range(len(starts) - 1):
        n = ends[i] - starts[i + 1]
        for j in range(n):
            w = (j + 1) / (n + 1)
            first, second = plan[starts[i + 1] + j]
            first[2], second[2] = 1.0 - w, w
    return [tuple(tuple(c) for c in cov) for cov in plan]


def _as_layer(img: np.ndarray) -> np.ndarray:
    """A canonical-space edit as a straight-alpha float RGBA layer (RGB: opaque) or a float mask."""
    f = to_float01(img)
    if f.ndim == 3 and f.shape[2] == 3:
        return np.concatenate([f, np.ones(f.shape[:2] + (1,), np.float32)], -1)
    return f


def _weight(layer: np.ndarray) -> np.ndarray:
    return layer if layer.ndim == 2 else layer[..., -1]


def _layer_on_frame(seg: CanonicalVideo, layer: np.ndarray, t: int) -> np.ndarray:
    """A canonical-space layer (straight RGBA or mask) as seen in the segment's local frame t (same kind).

    Outside the segment's canvas the layer is 0, or its edge for a "border" segment; an RGBA layer
    follows the segment's ``interpolation`` (as an overlay), a mask is bilinear (the rules for masks
    and overlays in :mod:`gendef.video.padding`).
    """
    g = seg.frame_grid(t)

    def remap(x, interpolation="bilinear"):
        return padding_remap(np.ascontiguousarray(x), g, seg.padding, interpolation=interpolation)

    if layer.ndim == 2:
        return np.clip(remap(layer), 0.0, 1.0)
    pre = remap(np.concatenate([layer[..., :3] * layer[..., 3:], layer[..., 3:]], -1), seg.interpolation)
    a = np.clip(pre[..., 3:], 0.0, 1.0)
    rgb = np.where(a > 1e-6, pre[..., :3] / np.maximum(a, 1e-6), 0.0)
    return np.clip(np.concatenate([rgb, a], -1), 0.0, 1.0).astype(np.float32)


def _float_mask(m) -> np.ndarray:
    a = np.asarray(m)
    return a.astype(np.float32) if a.dtype == bool else a


def _is_mask_edits(edits: list) -> bool:
    """Whether the per-segment edits are masks (all of them), refusing a mix of masks and images."""
    kinds = {np.ndim(e) == 2 or (np.ndim(e) == 3 and np.shape(e)[2] == 1) for e in edits if e is not None}
    if len(kinds) > 1:
        raise CanonicalVideoError("edits must be all masks or all images (RGB/RGBA), not a mix")
    return kinds == {True}

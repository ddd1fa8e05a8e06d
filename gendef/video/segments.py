"""``SegmentedVideo``: a clip as a chain of CanonicalVideos (stand-in, replaced by the segments branch).

Stand-in, replaced by the segments branch: only the constructor, ``segments``, ``num_frames``,
``render()`` / ``iter_frames()`` and ``save()`` that the decomposer needs. Segment k renders
the frames ``start_k .. start_k + T_k - 1`` of the clip; where two neighbours overlap, the
frame is a linear cross-fade from the earlier segment to the later one.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator, Sequence, Union

import numpy as np

from ..errors import CanonicalVideoError
from .canonical_video import CanonicalVideo


class SegmentedVideo:
    """Segments ``[(start_frame, CanonicalVideo), ...]`` in clip order, fps, and the frames where a hard cut starts."""

    def __init__(self, segments: Sequence, fps: float = 16.0, cuts: Sequence[int] = (), metadata: dict = None):
        if not segments:
            raise CanonicalVideoError("a SegmentedVideo needs at least one segment")
        self.segments = [(int(s), v) for s, v in segments]
        starts = [s for s, _ in self.segments]
        if starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
            raise CanonicalVideoError(f"segment starts must begin at 0 and increase, got {starts}")
        for (s, v), (s2, _) in zip(self.segments, self.segments[1:]):
            if s2 > s + v.num_frames:
                raise CanonicalVideoError(f"gap between the segment at frame {s} ({v.num_frames} frames) and the one at {s2}")
        self.fps = float(fps)
        self.cuts = [int(c) for c in cuts]
        self.metadata = dict(metadata or {})

    @property
    def num_frames(self) -> int:
        return max(s + v.num_frames for s, v in self.segments)

    @property
    def frame_size(self) -> tuple:
        return self.segments[0][1].frame_size

    def _weights(self, t: int) -> list:
        """[(segment index, local frame, weight)] of the segments that render frame t."""
        hits = [(k, t - s, v.num_frames) for k, (s, v) in enumerate(self.segments) if s <= t < s + v.num_frames]
        if len(hits) == 1:
            return [(hits[0][0], hits[0][1], 1.0)]
        (k0, l0, n0), (k1, l1, _) = hits[0], hits[-1]
        span = n0 - (self.segments[k1][0] - self.segments[k0][0])  # frames the two share
        w1 = (l1 + 1) / (span + 1)
        return [(k0, l0, 1.0 - w1), (k1, l1, w1)]

    def render_frame(self, t: int) -> np.ndarray:
        if not 0 <= t < self.num_frames:
            raise CanonicalVideoError(f"frame {t} out of range 0..{self.num_frames - 1}")
        out = None
        for k, local, w in self._weights(t):
            f = self.segments[k][1].render_frame(local) * np.float32(w)
            out = f if out is None else out + f
        return out

    def iter_frames(self) -> Iterator[np.ndarray]:
        for t in range(self.num_frames):
            yield self.render_frame(t)

    def render(self) -> np.ndarray:
        """Every frame of the whole clip [T, H, W, 3] float32."""
        return np.stack(list(self.iter_frames()))

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """One ``.npz``: ``seg{k}_canonical``, ``seg{k}_grid``, ``starts``, ``fps``, ``cuts``, ``metadata`` (json). Atomic."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        arrays = {
            "starts": np.array([s for s, _ in self.segments], np.int64),
            "fps": np.array(self.fps, np.float64),
            "cuts": np.array(self.cuts, np.int64),
            "metadata": np.array(json.dumps({**self.metadata, "segments": [v.metadata for _, v in self.segments]})),
        }
        for k, (_, v) in enumerate(self.segments):
            arrays[f"seg{k}_canonical"], arrays[f"seg{k}_grid"] = v.canonical, v.grid
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
            os.replace(tmp, path)
        except OSError as e:
            raise CanonicalVideoError(f"{path}: cannot write ({e.strerror or e})") from None
        finally:
            tmp.unlink(missing_ok=True)
        return path

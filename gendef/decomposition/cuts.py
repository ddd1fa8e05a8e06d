"""Cheap per-frame statistics of a clip, and the hard cuts they show.

One pass over the working-size frames keeps, per frame, a grey thumbnail (64 px wide), a
colour histogram and the global shift from the previous frame (phase correlation of the
thumbnails): a few kB a frame, so a whole clip's statistics fit in memory while the frames
themselves stream past. A hard cut is a spike of the histogram distance (or of the
motion-compensated thumbnail difference) between neighbours, far above its local median.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import cv2
import numpy as np

from ..imageutil import to_float01

THUMB_WIDTH = 64
HIST_BINS = 16
CUT_HIST = 0.3  # histogram distance (half L1, 0..1) a cut must exceed
CUT_THUMB = 0.12  # mean |difference| of aligned grey thumbnails (0..1) a cut must exceed
CUT_RATIO = 4.0  # ... and be this many times the local median


@dataclass
class ClipStats:
    """Per-frame statistics: thumbnails [T, h, 64] float32, histograms [T, 3*16], shift [T, 2]
    (x, y) in working pixels from frame t-1 to frame t (0 for frame 0), and ``scale``: working
    pixels per thumbnail pixel."""

    scale: float = 1.0
    thumbs: List[np.ndarray] = field(default_factory=list)
    hists: List[np.ndarray] = field(default_factory=list)
    shifts: List[np.ndarray] = field(default_factory=list)

    def add(self, frame: np.ndarray) -> None:
        """One working-size frame (float [H, W, 3] in [0, 1], or uint8)."""
        f = to_float01(frame)
        h, w = f.shape[:2]
        tw = min(THUMB_WIDTH, w)
        th = max(8, int(round(h * tw / w)))
        self.scale = w / tw
        grey = cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (tw, th), interpolation=cv2.INTER_AREA)
        hist = np.concatenate([np.histogram(f[..., c], bins=HIST_BINS, range=(0.0, 1.0))[0] for c in range(3)]).astype(np.float32)
        shift = np.zeros(2, np.float32)
        if self.thumbs:
            win = cv2.createHanningWindow((tw, th), cv2.CV_32F)
            (dx, dy), _ = cv2.phaseCorrelate(self.thumbs[-1], grey, win)
            shift = np.float32([dx, dy]) * self.scale
        self.thumbs.append(grey)
        self.hists.append(hist / max(float(hist.sum()) / 3.0, 1.0))
        self.shifts.append(shift)

    def __len__(self) -> int:
        return len(self.thumbs)


def aligned_difference(a: np.ndarray, b: np.ndarray, shift_px: np.ndarray) -> float:
    """Mean |a - b| of two thumbnails over the part they share once b is moved back by
    ``shift_px`` (thumbnail pixels); 1.0 when they share less than a quarter of the frame."""
    h, w = a.shape
    dx, dy = int(round(float(shift_px[0]))), int(round(float(shift_px[1])))
    if abs(dx) > 0.75 * w or abs(dy) > 0.75 * h:
        return 1.0
    ya, yb = slice(max(0, dy), h + min(0, dy)), slice(max(0, -dy), h + min(0, -dy))
    xa, xb = slice(max(0, dx), w + min(0, dx)), slice(max(0, -dx), w + min(0, -dx))
    return float(np.abs(a[ya, xa] - b[yb, xb]).mean())


def neighbour_scores(stats: ClipStats) -> tuple:
    """(histogram distance [T], aligned thumbnail difference [T]) between frame t-1 and t (0 at t=0)."""
    n = len(stats)
    hist_d, thumb_d = np.zeros(n), np.zeros(n)
    for t in range(1, n):
        hist_d[t] = 0.5 * float(np.abs(stats.hists[t] - stats.hists[t - 1]).sum()) / 3.0
        thumb_d[t] = aligned_difference(stats.thumbs[t - 1], stats.thumbs[t], stats.shifts[t] / stats.scale)
    return hist_d, thumb_d


def _local(d: np.ndarray, t: int, window: int = 8) -> float:
    """Median of ``d`` over up to ``window`` neighbours on each side of t (t itself and d[0] left out)."""
    around = np.concatenate([d[max(1, t - window) : t], d[t + 1 : t + 1 + window]])
    return float(np.median(around)) if len(around) else 0.0


def _spikes(d: np.ndarray, floor: float) -> np.ndarray:
    out = np.zeros(len(d), bool)
    for t in range(1, len(d)):
        out[t] = d[t] > max(floor, CUT_RATIO * _local(d, t))
    return out


def near_cuts(stats: ClipStats, share: float = 0.5) -> np.ndarray:
    """[T] bool: the colour histogram changes from frame t-1 to t in a spike as at a cut
    (``CUT_RATIO`` times its local median) of at least ``share`` of a cut's floor: every cut seen
    in colour, and changes that come near one (a cut between shots of similar colours, or out of
    fast motion). The thumbnail signal is left out: with the shift rounded to whole thumbnail
    pixels it reads 0.08 on plain pans, as high as half its floor."""
    hist_d, _ = neighbour_scores(stats)
    return _spikes(hist_d, share * CUT_HIST)


def find_cuts(stats: ClipStats) -> list:
    """Frames that start a new shot (a cut lies between frame t-1 and t), in order."""
    hist_d, thumb_d = neighbour_scores(stats)
    both = _spikes(hist_d, CUT_HIST) | _spikes(thumb_d, CUT_THUMB)
    cuts = [int(t) for t in np.nonzero(both)[0]]
    return [t for i, t in enumerate(cuts) if i == 0 or t - cuts[i - 1] > 1]  # a flash: keep its first frame

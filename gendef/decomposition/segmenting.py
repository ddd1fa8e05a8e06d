"""Where one canvas stops explaining a clip: spans from cuts, drift, changed content and length.

Within a shot (between hard cuts) a span grows frame by frame from its first frame until

* ``drift``: the camera's accumulated shift since the span's first frame passes ``drift`` times
  the long side (the canvas would grow past what the fit handles well);
* ``content``: the grey thumbnail, moved back by that shift, differs from the first frame's by
  more than ``content`` (something entered, left or changed: a mover, a turn, a light);
* ``length``: it has ``max_span`` frames (memory and quality both fall with longer spans).

The next span of the same shot starts ``overlap`` frames before the previous one ends, so
neighbours share frames to blend across; after a cut the next span starts at the cut.
``SpanStream`` then hands out each span's frames from a stream of frames, holding no more than
one span at a time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from .cuts import ClipStats, aligned_difference


@dataclass(frozen=True)
class SpanRules:
    max_span: int = 48
    min_span: int = 6  # bikes.mp4 30-61 (cyclist passing a taxi): 6-frame spans 28.3-31.8 dB, 8: 27.1-30.1, 12: 26.1-28.0
    overlap: int = 2  # 6-frame spans overlapping by 2 cost what 12-frame spans overlapping by 4 cost
    drift: float = 0.5  # of the long side
    content: float = 0.12  # mean |grey difference| of the aligned thumbnails


@dataclass(frozen=True)
class Span:
    start: int
    end: int  # exclusive
    reason: str  # why it ends: "cut", "drift", "content", "length" or "end"

    @property
    def frames(self) -> int:
        return self.end - self.start


def _span_end(stats: ClipStats, s: int, b: int, rules: SpanRules, long_side: int) -> tuple:
    """(end, reason) of the span starting at s in the shot ending at b (exclusive)."""
    acc = np.zeros(2)
    for t in range(s + 1, b):
        acc = acc + stats.shifts[t]
        if t - s + 1 > rules.max_span:
            return t, "length"
        if t - s < rules.min_span:
            continue
        if np.hypot(*acc) > rules.drift * long_side:
            return t, "drift"
        if aligned_difference(stats.thumbs[s], stats.thumbs[t], acc / stats.scale) > rules.content:
            return t, "content"
    return b, "end"


def plan_spans(stats: ClipStats, cuts: list, long_side: int, rules: SpanRules = SpanRules()) -> list:
    """Spans covering frames 0 .. len(stats) - 1 (see the module docstring)."""
    n = len(stats)
    bounds = [0] + [c for c in cuts if 0 < c < n] + [n]
    shots = [(a, b) for a, b in zip(bounds, bounds[1:])]
    merged = []
    for a, b in shots:  # a one-frame shot (a flash) joins the shot before it
        if merged and (b - a < 2 or merged[-1][1] - merged[-1][0] < 2):
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    spans = []
    for i, (a, b) in enumerate(merged):
        s = a
        while True:
            e, why = _span_end(stats, s, b, rules, long_side)
            if e < b and b - e < rules.min_span // 2 and b - s <= rules.max_span + rules.min_span // 2:
                e, why = b, "end"  # a short tail joins this span
            if e >= b:
                spans.append(Span(s, b, "cut" if i < len(merged) - 1 else "end"))
                break
            spans.append(Span(s, e, why))
            s = max(s + 1, e - rules.overlap)
    return spans


class SpanStream:
    """Each span's frames [T, H, W, 3] from a stream of frames, in order; ``peak_held`` is the
    most frames it ever held at once (one span: the stream is never gathered whole)."""

    def __init__(self, frames: Iterable[np.ndarray], spans: list):
        self.frames, self.spans, self.peak_held = frames, spans, 0

    def __iter__(self) -> Iterator[tuple]:
        buf, k = [], 0
        for t, f in enumerate(self.frames):
            if k >= len(self.spans):
                break
            if t >= self.spans[k].start:
                buf.append((t, f))
            self.peak_held = max(self.peak_held, len(buf))
            while k < len(self.spans) and t == self.spans[k].end - 1:
                span = self.spans[k]
                yield span, np.stack([f for i, f in buf if i >= span.start])
                k += 1
                keep = self.spans[k].start if k < len(self.spans) else t + 1
                buf = [(i, f) for i, f in buf if i >= keep]

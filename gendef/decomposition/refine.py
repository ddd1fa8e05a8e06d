"""Residual-driven refinement of a whole clip's spans, within a budget of refitted frames.

After a span's fit, each of its frames is scored (PSNR of the fit against the frame). A span
whose worst frame is below ``floor_db`` is split where it fails, and only the failing part is
fitted again:

* at a **near cut** inside the span (``cuts.near_cuts``: a colour spike a cut would show, too
  weak for ``find_cuts``): the two sides are fitted apart and the boundary becomes a hard cut;
* else around the **bad frames**: the part holding them (plus the ``overlap`` frames shared with
  the rest) is fitted on its own, and the rest keeps the span's fit (its grid, sliced), so a
  long span with a few bad frames costs a few frames; when the bad frames are spread over the
  span, both halves are fitted again. Where the neighbouring spans' frames leave no room for
  ``overlap`` shared frames (a short piece after a cut), the pieces share one frame, so edits
  still carry between them (bikes.mp4: the first frame of the shot at 76, 25.97 -> 31.4 dB).

A split is kept only when it raises the span's worst frame by ``gain_db`` (rendered as the
chain renders it, overlaps cross-faded); the pieces are refined again, ``depth`` levels at most.
Every refit counts its frames against the clip's budget (``budget`` x the clip's frames).
Pieces never make a frame shared by three segments: ``lo`` / ``hi`` bound where they may meet.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np

from ..imageutil import to_float01
from ..video.canonical_video import CanonicalVideo
from ..video.segments import SegmentedVideo

FitFn = Callable[[np.ndarray], CanonicalVideo]
ALLOWANCE = 1.5  # frames a chosen span may refit, per frame of its own (a split of both halves and one more)


@dataclass(frozen=True)
class Refinement:
    floor_db: float = 27.0  # a span's worst frame below this is refitted (issue 28's floor is 26 dB, blends cost some)
    gain_db: float = 0.5  # a split is kept when the worst frame rises this much
    min_frames: int = 2  # frames of a refitted piece, at least (bikes.mp4 76-77, the first two frames of a shot: 31.4 dB)
    budget: float = 0.25  # refitted frames, as a share of the clip's frames
    depth: int = 3  # splits of splits, at most
    overlap: int = 2  # frames a piece shares with its neighbour in the same shot


@dataclass
class Piece:
    start: int  # local frame in the span
    video: CanonicalVideo
    refit: bool = False
    ends_by: str = ""  # "cut" or "refine" for a piece a split ended; "" for the span's last


class Budget:
    """Frames a refinement may still refit (``left``) and has refitted (``spent``)."""

    def __init__(self, frames: float):
        self.left, self.spent = float(frames), 0

    def take(self, frames: int) -> bool:
        if frames > self.left:
            return False
        self.left -= frames
        self.spent += frames
        return True


def pick_spans(worst: list, lengths: list, rules: Refinement, clip_frames: int) -> dict:
    """{span index: frames it may refit}: the spans whose worst frame is under the floor, worst
    first, each allowed ``ALLOWANCE`` x its frames while the clip's budget lasts."""
    left, out = rules.budget * clip_frames, {}
    for k in sorted(range(len(worst)), key=lambda k: worst[k]):
        if worst[k] >= rules.floor_db or left < rules.min_frames:
            break
        out[k] = min(ALLOWANCE * lengths[k], left)
        left -= out[k]
    return out


def frame_psnr(rendered, frames: np.ndarray) -> np.ndarray:
    """PSNR of each rendered frame (float in [0, 1]) against ``frames`` [T, H, W, 3] (uint8 or float in [0, 1])."""
    out = []
    for a, b in zip(rendered, frames):
        mse = float(np.mean((np.asarray(a, np.float64) - to_float01(b)) ** 2))
        out.append(99.0 if mse <= 1e-10 else 10.0 * np.log10(1.0 / mse))
    return np.array(out)


def _slice(vid: CanonicalVideo, a: int, b: int) -> CanonicalVideo:
    return vid.replaced(grid=vid.grid[a:b])


def _refit_frames(plan: list) -> int:
    return sum(b - a for a, b, refit, _ in plan if refit)


def _cut_plan(n: int, c: int, lo: int, hi: int) -> list:
    """(a, b, refit, ends_by) pieces of a split at a near cut c; a side the neighbour span covers is dropped."""
    plan = []
    if c > lo:
        plan.append((0, c, c >= 2, "cut"))
    if c < hi:
        plan.append((c, n, n - c >= 2, ""))
    return plan


def _edge_plans(i0: int, i1: int, n: int, lo: int, hi: int, ov: int, r: Refinement) -> list:
    """Pieces that refit the bad frames i0..i1 at one end of the span, sharing ``ov`` frames with the kept rest."""
    options = []
    s = i1 + 1  # refit [0, s + ov), keep the fit on [s, n)
    if s >= lo and s + ov <= hi and s + ov >= r.min_frames and n > s + ov:
        options.append([(0, s + ov, True, "refine"), (s, n, False, "")])
    e = i0  # keep the fit on [0, e), refit [e - ov, n)
    if e - ov >= max(lo, 1) and e <= hi and n - (e - ov) >= r.min_frames:
        options.append([(0, e, False, "refine"), (e - ov, n, True, "")])
    return [o for o in options if _refit_frames(o) <= 0.75 * n]


def _bad_plan(pf: np.ndarray, floor: float, lo: int, hi: int, r: Refinement) -> list:
    """Pieces that fit the bad frames apart from the good ones (see the module docstring); [] if none fits.
    Where the neighbours' frames leave no room for pieces sharing ``r.overlap`` frames, they share one."""
    n, ov = len(pf), r.overlap
    bad = np.nonzero(pf < floor)[0]
    i0, i1 = int(bad[0]), int(bad[-1])
    options = _edge_plans(i0, i1, n, lo, hi, ov, r)
    if options:
        return min(options, key=_refit_frames)
    m = n // 2  # both halves again
    s = min(max(m - ov // 2, lo), hi - ov)
    if s >= max(lo, 1) and s + ov <= hi and s + ov >= r.min_frames and n - s >= r.min_frames and s + ov < n:
        return [(0, s + ov, True, "refine"), (s, n, True, "")]
    options = _edge_plans(i0, i1, n, lo, hi, 1, r) if ov > 1 else []
    return min(options, key=_refit_frames) if options else []


def _chain_psnr(pieces: List[Piece], cuts: list, frames: np.ndarray) -> np.ndarray:
    first = pieces[0].start
    chain = SegmentedVideo([(p.start - first, p.video) for p in pieces], fps=pieces[0].video.fps, cuts=[c - first for c in cuts])
    return frame_psnr(chain.iter_frames(), frames[first:])


def refine_span(frames: np.ndarray, vid: CanonicalVideo, fit: FitFn, near: np.ndarray, lo: int, hi: int,
                rules: Refinement, budget: Budget, depth: Optional[int] = None) -> Tuple[List[Piece], list]:
    """A span's frames [n, H, W, 3] and its fit -> (pieces, local frames where a new hard cut starts).

    ``near`` [n] bool: a near cut between local frame t-1 and t; ``lo``: the first local frame a
    piece after the first may start at (where the previous span's frames end; 0 after a cut);
    ``hi``: the last local frame a piece before the last may end at (where the next span
    starts; n before a cut). A side of a cut at ``lo`` or ``hi`` is left to that neighbour.
    """
    depth = rules.depth if depth is None else depth
    n = len(frames)
    pf = frame_psnr(vid.iter_frames(), frames)
    keep = [Piece(0, vid)], []
    if pf.min() >= rules.floor_db or depth <= 0:
        return keep
    cuts_here = [t for t in np.nonzero(near)[0] if max(lo, 1) <= t <= min(hi, n - 1)]
    if cuts_here:
        plan = _cut_plan(n, int(cuts_here[0]), lo, hi)
    else:
        plan = _bad_plan(pf, rules.floor_db, lo, hi, rules)
    if not plan or not budget.take(_refit_frames(plan)):
        return keep
    pieces = [Piece(a, fit(frames[a:b]) if refit else _slice(vid, a, b), refit, why) for a, b, refit, why in plan]
    cuts = [int(cuts_here[0])] if cuts_here else []
    first, end = plan[0][0], plan[-1][1]
    new = _chain_psnr(pieces, [c for c in cuts if first < c < end], frames[:end])
    if new.min() < pf[first:end].min() + rules.gain_db:
        return keep
    return _refine_pieces(frames, pieces, plan, fit, near, lo, hi, rules, budget, depth - 1, cuts)


def _refine_pieces(frames, pieces: List[Piece], plan: list, fit: FitFn, near, lo: int, hi: int,
                   rules: Refinement, budget: Budget, depth: int, cuts: list) -> Tuple[List[Piece], list]:
    """Refine each refitted piece of a kept split again; a piece whose refinement did not split it stays as it was."""
    out, out_cuts = [], list(cuts)
    for k, (p, (a, b, refit, _)) in enumerate(zip(pieces, plan)):
        p_lo = max(lo - a, 0) if k == 0 else plan[k - 1][1] - a
        p_hi = (min(hi, b) if k == len(plan) - 1 else plan[k + 1][0]) - a
        sub, sub_cuts = refine_span(frames[a:b], p.video, fit, near[a:b], p_lo, p_hi, rules, budget, depth) if refit else ([p], [])
        if len(sub) < 2:
            out.append(p)
            continue
        for q in sub:
            q.start += a
        sub[-1].ends_by = sub[-1].ends_by or p.ends_by
        out += sub
        out_cuts += [c + a for c in sub_cuts]
    return out, sorted(set(out_cuts))

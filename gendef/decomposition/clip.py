"""Whole clips: a clip file -> one CanonicalVideo, or a SegmentedVideo of chained spans.

Two streaming passes over the file, each holding at most one span of working-size frames:

1. ``scan``: cheap statistics of every frame (``cuts.ClipStats``), the hard cuts, the spans
   (``segmenting.plan_spans``);
2. each span's frames are decomposed (``pipeline.decompose``; with ``layers="auto"`` a span
   runs the layers' trial only where its one-canvas fit finds movers), one CanonicalVideo per span;
   with ``refinement``, a span whose worst frame the fit explains poorly is split there and that
   part fitted again (``refine.refine_span``, within a budget of frames); a refit keeps its span's
   choice of one canvas under ``layers="auto"`` (no second trial of layers on the same frames).

A clip that needs one span is decomposed exactly as ``decompose_file`` does (same numbers).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

from ..errors import DecomposeError, VideoIOError
from .cuts import ClipStats, find_cuts, near_cuts
from .inputs import working_size
from .pipeline import decompose, decompose_file
from .refine import Budget, Refinement, frame_psnr, pick_spans, refine_span
from .segmenting import SpanRules, SpanStream, plan_spans

SegmentProgress = Callable[[int, int, str], None]  # (segment index, number of segments (0: not known yet), message)
MAX_CLIP_FRAMES = 3600  # 2 minutes at 30 fps; more is refused (the output grids alone grow with the frames)
MAX_GRID_BYTES = 1 << 30  # the saved grids of every segment together (float32, working size)
# A span's canvas at 1 canonical pixel per frame pixel unless asked otherwise: on bikes.mp4 frames
# 70-81 (fast pan) the motion's estimate asked for 2x and gave 21.7 dB and stipple 6.1 (12-frame spans
# seldom zoom enough to need more).
SEGMENT_CANVAS_SCALE = 1.0
SEGMENT_STEPS = 40  # steps per span when a clip is split: bikes.mp4 0-59, 12-frame spans: 34.55 dB at 40, 34.73 at 60, 34.92 at 90


def _frame_count(info, start: int, frames: Optional[int], size: int) -> int:
    avail = max(info.frames - start, 0)
    n = avail if frames is None else min(frames, avail)
    if n < 2:
        raise DecomposeError(f"{info.path}: need at least 2 frames from frame {start}, the clip has {info.frames}")
    if n > MAX_CLIP_FRAMES:
        raise DecomposeError(
            f"{info.path}: {n} frames; at most {MAX_CLIP_FRAMES} frames (2 min at 30 fps) are decomposed at once: pick a span with --start/--frames"
        )
    h, w = working_size(info.height, info.width, size)
    if n * h * w * 8 > MAX_GRID_BYTES:
        most = MAX_GRID_BYTES // (h * w * 8)
        raise DecomposeError(f"{info.path}: {n} frames at {w}x{h} need more than {MAX_GRID_BYTES >> 30} GiB of grids; at most {most} frames at this --size")
    return n


def _frames(path, start: int, count: int, hw: tuple):
    from ..video.reader import iter_clip

    return iter_clip(path, start=start, count=count, resize_to=hw, dtype="float32")


def scan(path, start: int, count: int, hw: tuple, rules: SpanRules = SpanRules()) -> tuple:
    """(cuts, spans) of frames ``start .. start + count - 1`` (frame numbers relative to ``start``)."""
    return _scan(path, start, count, hw, rules)[:2]


def _scan(path, start: int, count: int, hw: tuple, rules: SpanRules) -> tuple:
    """(cuts, spans, near cuts [count] bool)."""
    stats = ClipStats()
    for f in _frames(path, start, count, hw):
        stats.add(f)
    if len(stats) < 2:
        raise DecomposeError(f"{path}: fewer than 2 decodable frames from frame {start}")
    cuts = find_cuts(stats)
    return cuts, plan_spans(stats, cuts, max(hw), rules), near_cuts(stats)


def _fit_spans(stream: SpanStream, fit, score: bool) -> tuple:
    """Each span's fit -> (pieces: per span [(clip frame, CanonicalVideo)], worst frame of each span in dB,
    or [] when ``score`` is off)."""
    pieces, worst = [], []
    for k, (span, video) in enumerate(stream):
        vid = fit(k, "")(video)
        if score:
            worst.append(float(frame_psnr(vid.frames(), video).min()))  # the fit's own render, cached
        pieces.append([_segment(vid, span.start, span.reason)])
    return pieces, worst


def _layers_of(span_vid, layers) -> dict:
    """``layers`` for a refit of part of a span: one canvas where ``auto`` chose one for the whole span
    (its trial, if movers called for one, found layers did not pay there); else as asked."""
    auto = isinstance(layers, str) and layers.strip().lower() == "auto"
    return {"layers": 1} if auto and span_vid.metadata.get("layers_chosen") == 1 else {}


def _segment(vid, start: int, reason: str) -> tuple:
    """(clip frame, the video without its rendered frames (the fit's PSNR cached them), span and why it ends in its metadata)."""
    vid = vid.with_size(vid.frame_size)
    vid.metadata.update({"span": [start, start + vid.num_frames], "ends_by": reason})
    return start, vid


def _bounds(k: int, spans: list, pieces: list, cuts: set) -> tuple:
    """(lo, hi) of span k for ``refine_span``: where the segments before it end, where those after it start."""
    span = spans[k]
    lo = 0 if k == 0 or span.start in cuts else pieces[k - 1][-1][0] + pieces[k - 1][-1][1].num_frames - span.start
    hi = span.frames if k + 1 == len(spans) else min(pieces[k + 1][0][0] - span.start, span.frames)
    return lo, hi


def _refine_spans(frames, spans: list, cuts: list, near, pieces: list, worst: list, fit, rules: Refinement) -> tuple:
    """Split and refit the spans whose worst frame is under ``rules.floor_db`` (``refine.refine_span``),
    worst first while the budget lasts; ``frames``: the clip's frames again, as a stream. Replaces
    ``pieces[k]`` of each refined span; -> (refitted frames, every hard cut)."""
    chosen = pick_spans(worst, [s.frames for s in spans], rules, len(near))
    order = sorted(chosen)
    all_cuts, spent, unspent = set(cuts), 0, 0.0
    for k, (span, video) in zip(order, SpanStream(frames, [spans[k] for k in order])):
        lo, hi = _bounds(k, spans, pieces, all_cuts)
        budget = Budget(chosen[k] + unspent)  # what the spans before it left goes on to it
        got, new_cuts = refine_span(video, pieces[k][0][1], fit(k, ", refining"), near[span.start : span.end], lo, hi, rules, budget)
        spent, unspent = spent + budget.spent, budget.left
        all_cuts |= {span.start + c for c in new_cuts}
        pieces[k] = [_segment(p.video, span.start + p.start, p.ends_by or span.reason) for p in got]
    return spent, sorted(all_cuts)


def decompose_clip(
    path,
    start: int = 0,
    frames: Optional[int] = None,
    size: int = 256,
    steps: Optional[int] = None,
    progress: Optional[SegmentProgress] = None,
    rules: SpanRules = SpanRules(),
    info=None,
    refinement: Optional[Refinement] = Refinement(),
    **kwargs,
):
    """A clip file -> CanonicalVideo (one span: exactly ``decompose_file``) or SegmentedVideo.

    ``progress(segment_index, num_segments, message)``: num_segments is 0 while the clip is
    scanned. ``kwargs`` go to ``decompose`` (layers, device, threads, ...); a full-size
    ``output_size`` applies to a one-span clip only: several spans stay at the working size
    (metadata ``output_note`` says so). ``info``: the clip's header when the caller has probed it
    already (``gendef.video.reader.probe``). ``refinement``: when and how much a poorly explained
    span is split and refitted (``refine.Refinement``; by default a budget of 0.25 of the clip's
    frames; None: never, as before issue 28's refinement). A one-span clip is ``decompose_file``'s
    result either way.
    """
    from ..video.audio import source_audio
    from ..video.reader import probe
    from ..video.segments import SegmentedVideo

    report = progress or (lambda i, n, m: None)
    t0 = time.perf_counter()
    try:
        info = probe(path) if info is None else info
        count = _frame_count(info, start, frames, size)
        hw = working_size(info.height, info.width, size)
        if kwargs.get("output_size") is not None:  # a bad choice fails before the scan, not after the fit
            from ..video.fullsize import resolve_output_size

            resolve_output_size(kwargs["output_size"], (info.height, info.width), hw)
        report(0, 0, f"scanning {count} frames for cuts and drift")
        cuts, spans, near = _scan(path, start, count, hw, rules)
        if len(spans) == 1:
            one = lambda f, m: report(0, 1, m)  # noqa: E731
            return decompose_file(path, start=start, frames=frames, size=size, steps=steps, progress=one, info=info, **kwargs)
        output_size = kwargs.pop("output_size", None)
        if kwargs.get("canvas_scale") is None:
            kwargs["canvas_scale"] = SEGMENT_CANVAS_SCALE
        seg_steps = SEGMENT_STEPS if steps is None else steps

        def fit(k, what, **over):
            tell = lambda f, m: report(k, len(spans), f"segment {k + 1}/{len(spans)} (frames {spans[k].start}-{spans[k].end - 1}){what}: {m}")  # noqa: E731
            return lambda v: decompose(v, size=size, steps=seg_steps, fps=info.fps, progress=tell, **{**kwargs, **over})  # noqa: E731

        def refit(k, what):  # a piece keeps its span's choice of one canvas (no second trial of layers on its frames)
            return fit(k, what, **_layers_of(pieces[k][0][1], kwargs.get("layers", "auto")))

        stream = SpanStream(_frames(path, start, count, hw), spans)
        pieces, worst = _fit_spans(stream, fit, refinement is not None)
        spent = 0
        if refinement is not None:
            spent, cuts = _refine_spans(_frames(path, start, count, hw), spans, cuts, near, pieces, worst, refit, refinement)
        segments = [p for span_pieces in pieces for p in span_pieces]
    except VideoIOError as e:
        raise DecomposeError(str(e)) from None
    meta = {
        "source": "decompose", "source_path": str(path), "start": int(start), "source_size": [info.height, info.width],
        "seconds": round(time.perf_counter() - t0, 2), "steps": int(seg_steps), "peak_frames_held": stream.peak_held,
    }
    trials = [v.metadata["layers_trial"]["seconds"] for _, v in segments if "layers_trial" in v.metadata]
    if trials:  # layers auto tries layers only in spans where movers were found (layer_choice)
        meta.update({"layers_trials": len(trials), "layers_trial_seconds": round(sum(trials), 2)})
    if refinement is not None:
        meta.update({"refitted_frames": int(spent), "refine_floor_db": refinement.floor_db})
    if output_size is not None and str(output_size).strip().lower() != "working":
        meta["output_note"] = f"{len(segments)} segments are kept at the working size ({hw[1]}x{hw[0]}); output size {output_size} applies to one-segment clips"
    p = Path(path)
    sound = source_audio(p, start / info.fps, count / info.fps) if p.is_file() else None
    if sound:
        meta["audio"] = sound
    return SegmentedVideo(segments, fps=info.fps, cuts=cuts, metadata=meta)

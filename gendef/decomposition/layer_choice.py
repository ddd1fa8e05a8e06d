"""How many layers the fit gets. ``fit_working_size`` is the stage boundary (frames at working
size in, a ``CanonicalVideo`` whose grid has the working frame size out): one canvas,
``--layers N``'s layered fit (``fit.fit_layered``), or ``--layers auto``, which keeps one canvas
unless a cheap trial measures that layers pay:

1. The single-canvas fit (exactly what ``--layers 1`` returns).
2. Where its errors leave blobs that move against the scene around them (any share of the
   frame above the mover mask's noise floor), a trial: one canvas and the layers (one per
   mover group), each started from the same flow and fitted for ``TRIAL_STEPS`` of the
   steps. No mover, no trial: such clips pay nothing extra.
3. Where the trial's layers beat its canvas by ``TRIAL_GAIN_DB``, the full layered fit
   (``fit.fit_layered``, what ``--layers N`` runs, N = the groups + 1), kept only if it
   beats the single-canvas fit by ``settings.gain_db`` on the frames.

Metadata: ``layers_chosen``, ``layers_reason`` and, where a trial ran, ``layers_trial``.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Optional

import numpy as np

from ..video.canonical_video import CanonicalVideo
from .fit import Fit, FitSettings, ProgressFn, fit_layered, fit_levels
from .movers import mover_mask, relative_motion, split_movers

MIN_RELATIVE_MOTION = 0.35  # px per frame against the scene around it: an independent mover
MOVER_FLOOR = 0.002  # share of the pixels one canvas leaves unexplained below which nothing is tried
TRIAL_STEPS = 0.04  # of the fit's steps, per arm, at full size (6 of 140): about a fifth of the one-canvas fit
TRIAL_GAIN_DB = 0.5  # the trial's PSNR gain of the layers over one canvas that earns the full layered fit (as ``gain_db``)


def _psnr(vid: CanonicalVideo, video: np.ndarray) -> float:
    mse = float(np.mean((vid.frames() - video) ** 2))
    return 99.0 if mse <= 1e-10 else 10.0 * math.log10(1.0 / mse)


def _choice(vid: CanonicalVideo, n_layers: int, reason: str, trial: dict = None) -> CanonicalVideo:
    vid.metadata.update({"layers_chosen": int(n_layers), "layers_reason": reason})
    if trial is not None:
        vid.metadata["layers_trial"] = trial
    return vid


def _layered(video: np.ndarray, settings: FitSettings, flows: tuple, mask: np.ndarray, groups: list, report: ProgressFn) -> Fit:
    """A fit with the scene and one layer per mover group, not yet optimised."""
    layered = Fit(video, replace(settings, auto_layers=False, robust=settings.layered_robust), report, flows=flows, movers=mask)
    for group in groups:
        layered.add_layer(group)
    return layered


def trial(video: np.ndarray, settings: FitSettings, flows: tuple, mask: np.ndarray, groups: list) -> dict:
    """Equal cheap budgets for one canvas and for the layers at full size: each starts from
    its closed-form canonical and takes ``TRIAL_STEPS`` of the steps; their PSNR over every
    frame (at the last step) and the gain."""
    t0 = time.perf_counter()
    steps = max(2, int(round(settings.steps * TRIAL_STEPS)))
    quiet = lambda f, m: None  # noqa: E731
    single = Fit(video, replace(settings, layers=1, auto_layers=False), quiet, flows=flows)
    single.fit_level(1, steps, first_level=True)
    layered = _layered(video, settings, flows, mask, groups, quiet)
    layered.fit_level(1, steps, first_level=True)
    return {
        "gain_db": round(layered.level_psnr - single.level_psnr, 2),
        "one_canvas_db": round(single.level_psnr, 2),
        "layers_db": round(layered.level_psnr, 2),
        "steps": steps,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def fit_auto(video: np.ndarray, settings: FitSettings, fps: float, report: ProgressFn) -> CanonicalVideo:
    """One canvas, then (only where movers are found) the trial, then (only where the trial
    gains ``TRIAL_GAIN_DB``) up to ``settings.layers`` layers; metadata says what and why."""
    t0 = time.perf_counter()
    fit = Fit(video, replace(settings, layers=1, auto_layers=False), report)
    fit.total_steps = settings.steps + settings.steps + settings.steps // 4
    fit_levels(fit, settings.steps)
    single = fit.result(fps)
    mask = mover_mask(fit.errors())
    single_s = time.perf_counter() - t0
    if settings.layers < 2 or mask.mean() < MOVER_FLOOR:
        return _choice(single, 1, f"1 layer: no independent mover ({mask.mean():.1%} of the pixels unexplained)")
    groups = [g for g in split_movers(mask, fit.flows, settings.layers - 1) if relative_motion(g, mask, fit.flows) >= MIN_RELATIVE_MOTION]
    if not groups:
        return _choice(single, 1, f"1 layer: what one canvas misses ({mask.mean():.0%} of the pixels) moves with the scene")
    share = float(np.mean([g.mean() for g in groups]) * len(groups))
    movers = f"{len(groups)} independent mover{'s' if len(groups) > 1 else ''}, {share:.1%} of the frame"
    report(0.45, f"{movers}: a cheap trial of {len(groups) + 1} layers against one canvas")
    tried = trial(video, settings, fit.flows, mask, groups)
    tried["fraction_of_fit"] = round(tried["seconds"] / max(single_s, 1e-6), 3)
    said = f"trial {tried['gain_db']:+.1f} dB in {tried['seconds']:.1f} s"
    if tried["gain_db"] < TRIAL_GAIN_DB:
        return _choice(single, 1, f"1 layer: {movers}, but layers did not pay ({said}, under {TRIAL_GAIN_DB:+.1f} dB)", tried)
    report(0.5, f"{movers}, {said}: fitting {len(groups) + 1} layers")
    layered = replace(settings, auto_layers=False, robust=settings.layered_robust, layers=len(groups) + 1)
    multi = fit_layered(video, layered, fps, lambda f, m: report(0.5 + 0.45 * f, m), flows=fit.flows)
    multi_db, single_db = _psnr(multi, video), _psnr(single, video)
    versus = f"{multi_db:.1f} dB vs {single_db:.1f} dB with one canvas"
    n_layers = len(multi.metadata["layers"])
    if n_layers > 1 and multi_db >= single_db + settings.gain_db:
        return _choice(multi, n_layers, f"{n_layers} layers: {movers}, {said} ({versus})", tried)
    return _choice(single, 1, f"1 layer: {movers}, {said}, but the layered fit did not help ({versus})", tried)


def fit_working_size(video: np.ndarray, settings: FitSettings, fps: float = 16.0, progress: Optional[ProgressFn] = None) -> CanonicalVideo:
    """Frames [T, H, W, 3] float in [0, 1] at working size -> CanonicalVideo (grid [T, H, W, 2]).

    One smooth canvas first; with ``settings.layers`` > 1, what it cannot explain
    (independent movers, found as blobs of large error) becomes a layer of its own and
    the fit starts again from the flow with the movers left out of the scene's motion;
    with ``settings.auto_layers``, ``fit_auto`` decides.
    """
    report = progress or (lambda f, m: None)
    if settings.auto_layers:
        return fit_auto(video, settings, fps, report)
    if settings.layers < 2:
        return fit_levels(Fit(video, settings, report), settings.steps).result(fps)
    return fit_layered(video, settings, fps, report)

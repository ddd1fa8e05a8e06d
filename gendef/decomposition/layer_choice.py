"""How many layers the fit gets. ``fit_working_size`` is the stage boundary (frames at working
size in, a ``CanonicalVideo`` whose grid has the working frame size out): one canvas,
``--layers N``'s layered fit (``fit.fit_layered``), or ``--layers auto``, which keeps one canvas
unless a cheap trial measures that layers pay, and reuses what it computed on the way:

1. The single-canvas fit up to its last level (the half-size level: about half its time).
2. Where its errors (at that level's size) leave blobs that move against the scene around them
   (any share of the frame above the mover mask's noise floor), a trial: the layered fit (one
   layer per mover group) takes the first ``TRIAL_STEPS`` of that level's steps, and its PSNR
   is compared with the one-canvas fit's at the same step of the same level (recorded as it
   ran: that arm costs nothing). Where nothing is found there, the one-canvas fit is finished
   and looked at again, as before. No mover, no trial: such clips pay nothing extra.
3. Where the trial's layers beat one canvas by ``TRIAL_GAIN_DB``, ``--layers N``'s layered fit
   (``fit.fit_layered``, N = the groups + 1, from the same flow), kept only if it beats the
   one-canvas fit by ``settings.gain_db``; the one-canvas fit's last level is run only where
   that is in doubt (``LAST_LEVEL_DB``). Elsewhere the one-canvas fit is finished: exactly what
   ``--layers 1`` returns.

Metadata: ``layers_chosen``, ``layers_reason`` and, where a trial ran, ``layers_trial``.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Optional

import numpy as np

from ..video.canonical_video import CanonicalVideo
from .fit import Fit, FitSettings, LevelRun, ProgressFn, _levels, fit_layered, fit_levels
from .movers import mover_mask, relative_motion, split_movers

MIN_RELATIVE_MOTION = 0.35  # px per frame against the scene around it: an independent mover
MOVER_FLOOR = 0.002  # share of the pixels one canvas leaves unexplained below which nothing is tried
TRIAL_STEPS = 0.15  # of the first level's steps, per arm (13 of 84 at half size)
LAST_LEVEL_DB = 4.0  # most the one-canvas fit's last level adds (0.5-3.75 dB on the layered scenes and real clips); a layered fit that beats the unfinished one by less waits for it
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


def trial(run: LevelRun, one_canvas_psnrs: list, steps: int) -> dict:
    """The first ``steps`` steps of the layered fit's first level (``run``), against the one-canvas
    fit's first ``steps`` steps of the same level (``one_canvas_psnrs``, its PSNR at every step):
    both start from their closed-form canonical from the same flow and follow the same learning
    rates, so the budgets are equal. Their PSNR at step ``steps`` (at that level's size) and the gain."""
    t0 = time.perf_counter()
    run.advance(steps)
    single, layers = one_canvas_psnrs[steps - 1], run.psnrs[steps - 1]
    return {
        "gain_db": round(layers - single, 2),
        "one_canvas_db": round(single, 2),
        "layers_db": round(layers, 2),
        "steps": steps,
        "scale": f"1/{run.factor}",
        "seconds": round(time.perf_counter() - t0, 2),
    }


class _OneCanvas:
    """The one-canvas fit, run up to its last level, so that ``--layers auto`` can decide there
    and finish it only where one canvas is kept: ``finish`` runs the rest, and the result is then
    exactly what ``--layers 1`` gives (``fit.fit_levels``'s steps, in the same order)."""

    def __init__(self, video: np.ndarray, settings: FitSettings, report: ProgressFn):
        self.fit = Fit(video, replace(settings, layers=1, auto_layers=False), report)
        self.fit.total_steps = settings.steps + settings.steps + settings.steps // 4
        self.levels = _levels(video.shape[1], video.shape[2], settings.steps)
        for i, (factor, n_steps) in enumerate(self.levels[:-1] or self.levels):
            self.fit.fit_level(factor, n_steps, first_level=(i == 0))
        self.left, self.video = self.levels[-1:] if len(self.levels) > 1 else [], None

    def finish(self, fps: float) -> CanonicalVideo:
        for factor, n_steps in self.left:
            self.fit.fit_level(factor, n_steps, first_level=False)
        self.left = []
        self.video = self.video or self.fit.result(fps)
        return self.video

    def movers(self, most: int) -> tuple:
        """(mask of what the fit leaves unexplained, the groups in it that move against the scene)."""
        mask = mover_mask(self.fit.errors())
        if most < 2 or mask.mean() < MOVER_FLOOR:
            return mask, []
        flows = self.fit.flows
        return mask, [g for g in split_movers(mask, flows, most - 1) if relative_motion(g, mask, flows) >= MIN_RELATIVE_MOTION]


def _keep_layers(one: _OneCanvas, multi: CanonicalVideo, video: np.ndarray, settings: FitSettings, fps: float) -> tuple:
    """(keep the layered fit?, "x dB vs y dB ..."): it must beat the one-canvas fit by
    ``settings.gain_db``; an unfinished one-canvas fit is finished first unless the layers beat
    it by ``LAST_LEVEL_DB`` more than that (the most its last level adds)."""
    multi_db = _psnr(multi, video)
    if len(multi.metadata["layers"]) < 2:
        return False, f"{multi_db:.1f} dB, one layer found"
    if one.left:
        unfinished_db = _psnr(one.fit.result(fps), video)
        if multi_db >= unfinished_db + settings.gain_db + LAST_LEVEL_DB:
            return True, f"{multi_db:.1f} dB vs {unfinished_db:.1f} dB with one canvas before its last level"
    single_db = _psnr(one.finish(fps), video)
    return multi_db >= single_db + settings.gain_db, f"{multi_db:.1f} dB vs {single_db:.1f} dB with one canvas"


def fit_auto(video: np.ndarray, settings: FitSettings, fps: float, report: ProgressFn) -> CanonicalVideo:
    """One canvas up to its last level, where the movers and (only where movers are found) the
    trial decide; then either the one-canvas fit is finished, or (only where the trial gains
    ``TRIAL_GAIN_DB``) ``--layers N``'s layered fit runs instead; metadata says what and why."""
    t0 = time.perf_counter()
    one = _OneCanvas(video, settings, report)
    mask, groups = one.movers(settings.layers)
    if not groups and one.left:  # nothing found before the last level: look again after it, as before
        one.finish(fps)
        mask, groups = one.movers(settings.layers)
    single_s = time.perf_counter() - t0
    if settings.layers < 2 or mask.mean() < MOVER_FLOOR:
        return _choice(one.finish(fps), 1, f"1 layer: no independent mover ({mask.mean():.1%} of the pixels unexplained)")
    if not groups:
        return _choice(one.finish(fps), 1, f"1 layer: what one canvas misses ({mask.mean():.0%} of the pixels) moves with the scene")
    share = float(np.mean([g.mean() for g in groups]) * len(groups))
    movers = f"{len(groups)} independent mover{'s' if len(groups) > 1 else ''}, {share:.1%} of the frame"
    first_steps = one.levels[0][1]
    steps = min(first_steps, max(2, int(round(first_steps * TRIAL_STEPS))))
    if steps < 1:
        return _choice(one.finish(fps), 1, f"1 layer: {movers}, but no steps to try layers with")
    report(0.45, f"{movers}: a trial of {len(groups) + 1} layers against one canvas")
    t1 = time.perf_counter()
    run = _layered(video, settings, one.fit.flows, mask, groups, lambda f, m: None).start_level(*one.levels[0], first_level=True)
    tried = trial(run, one.fit.history[0][1], steps)
    tried["seconds"] = round(time.perf_counter() - t1, 2)  # with the layered fit's start
    tried["fraction_of_fit"] = round(tried["seconds"] / max(single_s, 1e-6), 3)
    said = f"trial {tried['gain_db']:+.1f} dB in {tried['seconds']:.1f} s"
    if tried["gain_db"] < TRIAL_GAIN_DB:
        return _choice(one.finish(fps), 1, f"1 layer: {movers}, but layers did not pay ({said}, under {TRIAL_GAIN_DB:+.1f} dB)", tried)
    report(0.5, f"{movers}, {said}: fitting {len(groups) + 1} layers")
    layered = replace(settings, auto_layers=False, robust=settings.layered_robust, layers=len(groups) + 1)
    multi = fit_layered(video, layered, fps, lambda f, m: report(0.5 + 0.45 * f, m), flows=one.fit.flows)
    keep, versus = _keep_layers(one, multi, video, settings, fps)
    if keep:
        n_layers = len(multi.metadata["layers"])
        return _choice(multi, n_layers, f"{n_layers} layers: {movers}, {said} ({versus})", tried)
    return _choice(one.finish(fps), 1, f"1 layer: {movers}, {said}, but the layered fit did not help ({versus})", tried)


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

"""FID and FVD of a GenDeF generator against a video dataset.

Two families of metric names:

- StyleGAN-V's protocols with the published TorchScript detectors (comparable with the
  paper's Table 1): ``fid50k_full``, ``fvd2048_16f``, ``fvd2048_128f``,
  ``fvd2048_128f_subsample8f`` -- see :mod:`gendef.metrics.stylegan_v`.
- The torchvision / pytorch-i3d alternatives (no TorchScript file needed, NOT comparable
  with published numbers): ``fid`` (torchvision Inception-v3, random real frames, one
  generated frame per video at a random time below 128) and ``fvdN`` (our I3D port from a
  state dict, N consecutive frames).

Detectors are built on first use. A caller that evaluates again and again passes one
:class:`~gendef.metrics.cache.MetricsCache` (the trainer keeps one per run): detectors and
real-data statistics are kept in it, so evaluating every N training steps only pays for the
generated side. Nothing is cached per process.
"""
from __future__ import annotations

import os
import re
from typing import Dict, Iterable, Optional, Sequence

import numpy as np
import torch

from .cache import MetricsCache
from .frechet import feature_stats, frechet_distance
from .i3d import I3DFeatures
from .inception import DEFAULT_INCEPTION_WEIGHTS, InceptionFeatures
from .stylegan_v import evaluate_protocol, is_protocol_metric
from ..errors import MetricsError

__all__ = ["PROTOCOL", "evaluate", "fid", "fvd", "parse_metrics", "generated_clips", "generated_frames", "MetricsCache"]

PROTOCOL = dict(num_videos=2048, num_fid_frames=50000, fid_time_range=128, batch_size=16, inception_size=299, i3d_size=224, seed=0)


def parse_metrics(names) -> list:
    """'fid,fvd16' -> ['fid', 'fvd16']; fvdN means N-frame clips."""
    if isinstance(names, str):
        names = names.split(",")
    out = []
    for n in names:
        n = n.strip().lower()
        if not n:
            continue
        if n not in ("fid",) and not re.fullmatch(r"fvd\d+", n) and not is_protocol_metric(n):
            raise MetricsError(f"unknown metric {n!r}: use fid50k_full, fvd2048_16f, fvd2048_128f, "
                               "fvd2048_128f_subsample8f (StyleGAN-V) or fid, fvdN (torchvision alternatives)")
        out.append(n)
    if not out:
        raise MetricsError("no metrics requested")
    return out


def _kept(cache: Optional[MetricsCache], key: tuple, build):
    """``build()``, kept in ``cache.detectors`` under ``key`` when there is a cache."""
    if cache is None:
        return build()
    if key not in cache.detectors:
        cache.detectors[key] = build()
    return cache.detectors[key]


def _inception(detector, size: int, device, cache: Optional[MetricsCache] = None) -> InceptionFeatures:
    if isinstance(detector, torch.nn.Module):
        return detector.to(device).eval()
    source = detector or os.environ.get("GENDEF_INCEPTION_WEIGHTS") or DEFAULT_INCEPTION_WEIGHTS
    key = ("inception", str(source), size, str(device))
    return _kept(cache, key, lambda: InceptionFeatures.from_weights(source, size).to(device))


def _i3d(detector, size: int, device, cache: Optional[MetricsCache] = None) -> I3DFeatures:
    if isinstance(detector, torch.nn.Module):
        return detector.to(device).eval()
    source = detector or os.environ.get("GENDEF_I3D_WEIGHTS")
    if not source:
        raise MetricsError(
            "FVD needs I3D weights: pass --i3d-weights (or eval.i3d / GENDEF_I3D_WEIGHTS) with a path, URL or hub id "
            "of an InceptionI3d Kinetics-400 state dict (safetensors or a plain torch state dict)"
        )
    key = ("i3d", str(source), size, str(device))
    return _kept(cache, key, lambda: I3DFeatures.from_weights(source, size).to(device))


# ----------------------------------------------------------------------------- generated side
@torch.no_grad()
def generated_clips(model, num_videos: int, num_frames: int, batch_size: int, seed: int, device, chunk: int = 16):
    """Yields [B, T, 3, R, R] in [0, 1]: consecutive frames 0..T-1 of fresh videos."""
    gen = torch.Generator().manual_seed(int(seed))
    for s in range(0, num_videos, batch_size):
        b = min(batch_size, num_videos - s)
        z_c, z_d, noise = model.make_latents(b, num_frames, generator=gen, device=device)
        canon = model.canonical(z_c, 1.0, "const")
        parts = []
        for t0 in range(0, num_frames, chunk):
            times = torch.arange(t0, min(t0 + chunk, num_frames), device=device, dtype=torch.float32)
            parts.append(model.generate(z_c, z_d, noise, times, noise_mode="const", canonical=canon)["frames"].float())
        yield (torch.cat(parts, 1).clamp(-1, 1) + 1) / 2


@torch.no_grad()
def generated_frames(model, num: int, batch_size: int, seed: int, device, time_range: int = 128):
    """Yields [B, 3, R, R] in [0, 1]: one frame per video at a random time in [0, time_range)."""
    gen = torch.Generator().manual_seed(int(seed) + 1)
    for s in range(0, num, batch_size):
        b = min(batch_size, num - s)
        z_c, z_d, noise = model.make_latents(b, time_range, generator=gen, device=device)
        times = torch.randint(0, time_range, (b, 1), generator=gen).float().to(device)
        yield (model.generate(z_c, z_d, noise, times, noise_mode="const")["frames"][:, 0].float().clamp(-1, 1) + 1) / 2


# ----------------------------------------------------------------------------- real side
def _real_frames(data, resolution: int, num: int, batch_size: int, seed: int):
    from ..data import FrameDataset

    ds = FrameDataset(data, resolution)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(ds))[:num] if len(ds) >= num else rng.integers(0, len(ds), num)
    for s in range(0, num, batch_size):
        items = [ds[(int(i), int(rng.integers(2**31)))] for i in idx[s : s + batch_size]]
        yield (torch.stack(items) + 1) / 2


def _real_clips(data, resolution: int, num_videos: int, num_frames: int, batch_size: int, seed: int):
    from ..data import ClipDataset

    ds = ClipDataset(data, resolution, num_frames=2, max_dist=2)
    long_enough = [i for i, v in enumerate(ds.videos) if v.length >= num_frames]
    if not long_enough:
        longest = max(v.length for v in ds.videos)
        raise MetricsError(f"FVD{num_frames} needs real videos of {num_frames} frames; the longest in {data} has {longest}")
    rng = np.random.default_rng(seed)
    for s in range(0, num_videos, batch_size):
        clips = []
        for _ in range(min(batch_size, num_videos - s)):
            vi = long_enough[int(rng.integers(len(long_enough)))]
            start = int(rng.integers(0, ds.videos[vi].length - num_frames + 1))
            clips.append(torch.from_numpy(ds.read_clip(vi, start, num_frames)))
        yield torch.stack(clips).permute(0, 1, 4, 2, 3).float() / 255.0


def _features(batches: Iterable[torch.Tensor], detector, device) -> np.ndarray:
    return np.concatenate([detector(b.to(device)).double().cpu().numpy() for b in batches])


def _real_stats(cache: Optional[MetricsCache], key: tuple, fresh: bool, compute) -> tuple:
    """``compute()`` (mean, covariance), kept in ``cache.real_stats`` unless ``fresh`` (a ready detector module)."""
    if cache is None or fresh:
        return compute()
    if key not in cache.real_stats:
        cache.real_stats[key] = compute()
    return cache.real_stats[key]


# ----------------------------------------------------------------------------- metrics
def fid(model, data, num_frames: int = PROTOCOL["num_fid_frames"], detector=None, size: int = PROTOCOL["inception_size"],
        batch_size: int = PROTOCOL["batch_size"], seed: int = 0, device="cpu", time_range: int = PROTOCOL["fid_time_range"],
        cache: Optional[MetricsCache] = None) -> float:
    """Fréchet Inception Distance between generated and real frames; ``cache`` keeps the detector and
    the real statistics for the next call."""
    det = _inception(detector, size, device, cache)
    key = ("fid", str(data), model.resolution, num_frames, seed, size, str(detector))
    real = _real_stats(cache, key, isinstance(detector, torch.nn.Module), lambda: feature_stats(
        _features(_real_frames(data, model.resolution, num_frames, batch_size, seed), det, device)))
    fake = feature_stats(_features(generated_frames(model, num_frames, batch_size, seed, device, time_range), det, device))
    return frechet_distance(*real, *fake)


def fvd(model, data, num_frames: int = 16, num_videos: int = PROTOCOL["num_videos"], detector=None,
        size: int = PROTOCOL["i3d_size"], batch_size: int = PROTOCOL["batch_size"], seed: int = 0, device="cpu",
        cache: Optional[MetricsCache] = None) -> float:
    """Fréchet Video Distance on clips of ``num_frames`` consecutive frames; ``cache`` as in :func:`fid`."""
    det = _i3d(detector, size, device, cache)
    key = ("fvd", str(data), model.resolution, num_frames, num_videos, seed, size, str(detector))
    real = _real_stats(cache, key, isinstance(detector, torch.nn.Module), lambda: feature_stats(
        _features(_real_clips(data, model.resolution, num_videos, num_frames, batch_size, seed), det, device)))
    fake = feature_stats(_features(generated_clips(model, num_videos, num_frames, batch_size, seed, device), det, device))
    return frechet_distance(*real, *fake)


def evaluate(
    model,
    data,
    metrics: Sequence[str] = ("fid", "fvd16"),
    num_videos: int = PROTOCOL["num_videos"],
    num_fid_frames: int = PROTOCOL["num_fid_frames"],
    fid_time_range: int = PROTOCOL["fid_time_range"],
    batch_size: int = PROTOCOL["batch_size"],
    inception=None,
    i3d=None,
    inception_size: int = PROTOCOL["inception_size"],
    i3d_size: int = PROTOCOL["i3d_size"],
    seed: int = 0,
    device=None,
    inception_torchscript=None,
    i3d_torchscript=None,
    data_options=None,
    cache: Optional[MetricsCache] = None,
) -> Dict[str, float]:
    """{'fvd2048_16f': ..., 'fid': ...} for a GenDeF model.

    StyleGAN-V metrics use ``inception_torchscript`` / ``i3d_torchscript`` (path, URL, hub file or a
    ready module; default: the official URLs), ``num_videos`` clips and ``num_fid_frames`` fakes.
    ``fid`` / ``fvdN`` use ``inception`` / ``i3d`` (torchvision / state-dict weight sources or modules).
    ``data_options`` (``chunk``, ``chunk_min``, ``resize``: gendef.data's dataset options) build the
    StyleGAN-V metrics' real set as training reads the data; ``fid`` / ``fvdN`` ignore them.
    ``cache`` (a :class:`MetricsCache` the caller keeps) holds the detectors and the real statistics
    for the next call; without one nothing outlives the call."""
    names = parse_metrics(metrics)
    if not os.path.exists(str(data)):
        raise MetricsError(f"dataset {data}: no such file or folder")
    device = torch.device(device) if device is not None else model.device
    if num_videos < 2 or num_fid_frames < 2:
        raise MetricsError("need at least 2 videos / frames for a covariance")
    was_training = model.training
    model.eval()
    try:
        out = {}
        for n in names:
            if is_protocol_metric(n):
                count = num_fid_frames if n.startswith("fid") else num_videos
                out[n] = evaluate_protocol(model, data, n, count, inception_torchscript, i3d_torchscript, seed, device,
                                           data_options=data_options, cache=cache)
            elif n == "fid":
                out[n] = fid(model, data, num_fid_frames, inception, inception_size, batch_size, seed, device, fid_time_range,
                             cache=cache)
            else:
                out[n] = fvd(model, data, int(n[3:]), num_videos, i3d, i3d_size, batch_size, seed, device, cache=cache)
        return out
    finally:
        model.train(was_training)

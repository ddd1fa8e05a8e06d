"""StyleGAN-V's metric protocols, with the detectors it publishes (numbers comparable with
GenDeF's Table 1 and StyleGAN-V's tables).

As in StyleGAN-V's ``src/metrics`` (``metric_main.py``, ``frechet_video_distance.py``,
``frechet_inception_distance.py``, ``metric_utils.py``):

- ``fvd2048_16f`` / ``fvd2048_128f``: I3D features of 2048 real and 2048 generated clips of
  16 / 128 consecutive frames. ``fvd2048_128f_subsample8f``: 16 frames, every 8th (spans 128).
  Reals: the videos long enough for the clip (``discard_short_videos``), in dataset order,
  the first 2048 of them (fewer if the dataset has fewer), one clip per video at a uniformly
  random start ``o`` in ``[0, L - n*s + s - 1]``, frames ``o, o+s, ..., o+(n-1)s``.
  Fakes: a fresh video per clip, frames at times ``0, s, ..., (n-1)s``.
- ``fid50k_full``: Inception features of every frame of every real video, against 50,000
  generated frames taken as frames 0..15 of 3,125 generated videos.
- Both sides are uint8 [0, 255] (fakes quantised as ``x*127.5+128``); the detectors rescale and
  resize internally (I3D: ``rescale=True, resize=True, return_features=True``; Inception:
  ``return_features=True``). Statistics use the population covariance (divide by N), as
  ``FeatureStats.get_mean_cov`` does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .cache import MetricsCache
from .frechet import frechet_distance
from .torchscript import I3D, INCEPTION, load_detector, to_uint8
from ..errors import MetricsError

__all__ = ["VideoProtocol", "FVD_PROTOCOLS", "FID_PROTOCOLS", "is_protocol_metric", "real_clip_plan", "fake_clip_times",
           "FeatureMoments", "fvd", "fid", "evaluate_protocol"]


@dataclass(frozen=True)
class VideoProtocol:
    num_frames: int
    subsample: int = 1
    num_videos: int = 2048

    @property
    def span(self) -> int:
        return self.num_frames * self.subsample


FVD_PROTOCOLS = {
    "fvd2048_16f": VideoProtocol(16),
    "fvd2048_128f": VideoProtocol(128),
    "fvd2048_128f_subsample8f": VideoProtocol(16, 8),
}
FID_PROTOCOLS = {"fid50k_full": dict(num_gen=50000, video_frames=16)}
FRAMES_PER_BATCH = 128  # StyleGAN-V: NUM_FRAMES_IN_BATCH[128] frames per I3D batch


def is_protocol_metric(name: str) -> bool:
    return name in FVD_PROTOCOLS or name in FID_PROTOCOLS


# ----------------------------------------------------------------------------- sampling plans
def real_clip_plan(lengths: Sequence[int], proto: VideoProtocol, max_videos: int, rng: np.random.Generator) -> List[Tuple[int, np.ndarray]]:
    """(video index, frame indices) of the real clips: long-enough videos in order, first ``max_videos``."""
    long_enough = [i for i, n in enumerate(lengths) if n >= proto.span]
    plan = []
    for vi in long_enough[:max_videos]:
        start = int(rng.integers(0, lengths[vi] - proto.span + proto.subsample))  # randint(0, L-n*s+s-1)
        plan.append((vi, start + np.arange(proto.num_frames) * proto.subsample))
    return plan


def fake_clip_times(proto: VideoProtocol) -> torch.Tensor:
    return torch.arange(proto.num_frames, dtype=torch.float32) * proto.subsample


# ----------------------------------------------------------------------------- statistics
class FeatureMoments:
    """Running mean / population covariance in float64 (50k x 2048 features never held at once)."""

    def __init__(self):
        self.n, self.sum, self.outer = 0, None, None

    def add(self, feats: torch.Tensor) -> None:
        f = feats.double().cpu().numpy()
        if self.sum is None:
            self.sum, self.outer = np.zeros(f.shape[1]), np.zeros((f.shape[1], f.shape[1]))
        self.n += f.shape[0]
        self.sum += f.sum(0)
        self.outer += f.T @ f

    def mean_cov(self):
        if self.n < 2:
            raise MetricsError(f"need at least 2 feature vectors, got {self.n}")
        mean = self.sum / self.n
        return mean, self.outer / self.n - np.outer(mean, mean)


def _stats(batches: Iterator[torch.Tensor], detector, device) -> tuple:
    acc = FeatureMoments()
    for pixels in batches:
        acc.add(detector(pixels.to(device)))
    return acc.mean_cov()


# ----------------------------------------------------------------------------- real side
def _reader(data, resolution: int, data_options: dict = None):
    from ..data import FrameDataset

    class _Reader(FrameDataset):
        def frames(self, vi: int, idx: np.ndarray) -> np.ndarray:
            return self._read_frames(self.videos[vi], np.asarray(idx) - int(idx[0]), int(idx[0]))

    return _Reader(data, resolution, **(data_options or {}))


def _read(reader, vi, idx) -> torch.Tensor:
    from ..errors import VideoIOError

    try:
        return torch.from_numpy(reader.frames(vi, idx)).permute(0, 3, 1, 2)  # uint8 [T, 3, R, R]
    except VideoIOError as e:
        raise MetricsError(f"real video {reader.videos[vi].name}: {e}") from None


def real_clips(data, resolution: int, proto: VideoProtocol, num_videos: int, batch: int, seed: int,
               data_options: dict = None):
    """uint8 [B, 3, T, R, R] batches of the real clips (I3D layout); ``data_options`` (chunks,
    crop/squash: gendef.data.FrameDataset's) build the real set as training reads it."""
    reader = _reader(data, resolution, data_options)
    plan = real_clip_plan([v.length for v in reader.videos], proto, num_videos, np.random.default_rng(seed))
    if len(plan) < 2:
        longest = max(v.length for v in reader.videos)
        raise MetricsError(f"{proto.num_frames}-frame FVD (stride {proto.subsample}) needs real videos of {proto.span} frames; "
                           f"{data} has {len(plan)} (longest {longest})")
    for s in range(0, len(plan), batch):
        yield torch.stack([_read(reader, vi, idx) for vi, idx in plan[s:s + batch]]).permute(0, 2, 1, 3, 4)


def real_frames(data, resolution: int, batch: int, data_options: dict = None):
    """uint8 [B, 3, R, R]: every frame of every real video, in order ("full")."""
    reader = _reader(data, resolution, data_options)
    for vi, v in enumerate(reader.videos):
        for s in range(0, v.length, batch):
            yield _read(reader, vi, np.arange(s, min(s + batch, v.length)))


# ----------------------------------------------------------------------------- generated side
@torch.no_grad()
def fake_videos(model, num: int, times: torch.Tensor, batch: int, seed: int, device, chunk: int = 16):
    """uint8 [B, T, 3, R, R]: ``num`` fresh videos rendered at ``times``."""
    gen = torch.Generator().manual_seed(int(seed))
    for s in range(0, num, batch):
        b = min(batch, num - s)
        z_c, z_d, noise = model.make_latents(b, int(times.max()) + 1, generator=gen, device=device)
        canon = model.canonical(z_c, 1.0, "const")
        parts = [model.generate(z_c, z_d, noise, times[t0:t0 + chunk].to(device), noise_mode="const", canonical=canon)["frames"]
                 for t0 in range(0, len(times), chunk)]
        yield to_uint8(torch.cat(parts, 1)).cpu()


# ----------------------------------------------------------------------------- metrics
def _detector(spec, detector, device, cache: Optional[MetricsCache]):
    """(detector, cache key of its real statistics); a ready module is never cached against."""
    if isinstance(detector, torch.nn.Module):
        return detector.to(device).eval(), None
    det = load_detector(spec, detector, device, cache)
    return det, str(detector or spec.url)


def frame_set_options(data_options) -> dict:
    """FID's real set is StyleGAN-V's ImageFolderDataset: every frame of the zip, never chunked
    (metrics/frechet_inception_distance.py: use_image_dataset=True), resized as training does."""
    return {k: v for k, v in (data_options or {}).items() if k == "resize"}


def _options_key(data_options) -> tuple:
    return tuple(sorted((data_options or {}).items()))


def _real_stats(key, batches, det, device, cache: Optional[MetricsCache]):
    if key[-1] is None or cache is None:
        return _stats(batches(), det, device)
    key = ("stylegan_v",) + key
    if key not in cache.real_stats:
        cache.real_stats[key] = _stats(batches(), det, device)
    return cache.real_stats[key]


def fvd(model, data, name: str = "fvd2048_16f", num_videos: int = None, detector=None, seed: int = 0, device="cpu",
        batch_frames: int = FRAMES_PER_BATCH, data_options: dict = None, cache: Optional[MetricsCache] = None) -> float:
    """StyleGAN-V FVD (``name`` in FVD_PROTOCOLS) with its TorchScript I3D (path, URL or module);
    ``cache`` keeps the detector and the real statistics for the next call."""
    proto = FVD_PROTOCOLS[name]
    n = int(num_videos or proto.num_videos)
    batch = max(1, batch_frames // proto.num_frames)
    det, det_key = _detector(I3D, detector, device, cache)
    key = ("fvd", str(data), _options_key(data_options), model.resolution, name, n, seed, det_key)
    real = _real_stats(key, lambda: real_clips(data, model.resolution, proto, n, batch, seed, data_options), det, device, cache)
    fakes = (v.permute(0, 2, 1, 3, 4) for v in fake_videos(model, n, fake_clip_times(proto), batch, seed + 1, device))
    return frechet_distance(*real, *_stats(fakes, det, device))


def fid(model, data, num_gen: int = None, detector=None, seed: int = 0, device="cpu", batch_frames: int = 64,
        video_frames: int = FID_PROTOCOLS["fid50k_full"]["video_frames"], data_options: dict = None,
        cache: Optional[MetricsCache] = None) -> float:
    """StyleGAN-V ``fid50k_full`` with StyleGAN2-ADA's TorchScript Inception: every real frame
    against ``num_gen`` generated frames (frames 0..15 of each generated video); ``cache`` as in :func:`fvd`."""
    n = int(num_gen or FID_PROTOCOLS["fid50k_full"]["num_gen"])
    det, det_key = _detector(INCEPTION, detector, device, cache)
    data_options = frame_set_options(data_options)
    key = ("fid", str(data), _options_key(data_options), model.resolution, det_key)
    real = _real_stats(key, lambda: real_frames(data, model.resolution, batch_frames, data_options), det, device, cache)
    times = torch.arange(video_frames, dtype=torch.float32)
    videos = -(-n // video_frames)
    batch = max(1, batch_frames // video_frames)

    def frames():
        left = n
        for v in fake_videos(model, videos, times, batch, seed + 2, device):
            f = v.flatten(0, 1)[:left]  # the last video contributes only what 50k still needs
            left -= len(f)
            yield f

    return frechet_distance(*real, *_stats(frames(), det, device))


def evaluate_protocol(model, data, name: str, count: int = None, inception=None, i3d=None, seed: int = 0, device="cpu",
                      data_options: dict = None, cache: Optional[MetricsCache] = None) -> float:
    """One StyleGAN-V metric by name; ``count`` overrides 2048 clips / 50k frames (tests, quick looks)."""
    if name in FVD_PROTOCOLS:
        return fvd(model, data, name, count, i3d, seed, device, data_options=data_options, cache=cache)
    if name in FID_PROTOCOLS:
        return fid(model, data, count, inception, seed, device, data_options=data_options, cache=cache)
    raise MetricsError(f"unknown StyleGAN-V metric {name!r}: use one of {sorted(FVD_PROTOCOLS) + sorted(FID_PROTOCOLS)}")

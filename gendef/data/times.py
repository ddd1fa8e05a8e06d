"""Which times a training clip shows (StyleGAN-V's sparse "random" sampling, as in the official code).

A clip of K frames spans a gap d drawn from the powers of two in [K-1, min(len-1, max_dist)]
({2, 4, 8, 16, 32} for K=3, max_dist=32); its first frame sits at a random offset, its last at
offset + d and the others at distinct integer positions in between. Real clips use integer
offsets; generated clips (``fractional=True``) use a real-valued offset, so G sees fractional
times, over the length of a random real video capped at ``max_num_frames`` (1024).
"""
from __future__ import annotations

import numpy as np

__all__ = ["power_of_two_gaps", "sample_times", "TIME_SAMPLINGS"]

TIME_SAMPLINGS = ("stylegan_v", "uniform")
_ALL_GAPS = tuple(2**i for i in range(12))  # StyleGAN-V's total_dists: 1 .. 2048


def power_of_two_gaps(num_frames: int, max_gap: int) -> list:
    return [d for d in _ALL_GAPS if num_frames - 1 <= d <= max_gap]


def sample_times(num_frames: int, video_len: int, max_dist: int, rng: np.random.Generator,
                 fractional: bool = False) -> np.ndarray:
    """Sorted times [K] (float64) of one clip inside a video of ``video_len`` frames."""
    gaps = power_of_two_gaps(num_frames, min(int(video_len) - 1, int(max_dist)))
    if not gaps:
        raise ValueError(f"a {num_frames}-frame clip needs a video of >= {num_frames} frames within "
                         f"max_dist={max_dist}, got {video_len}")
    d = int(rng.choice(gaps))
    room = int(video_len) - d - 1
    offset = rng.random() * room if fractional else float(rng.integers(0, room + 1))
    inner = rng.choice(np.arange(1, d), size=num_frames - 2, replace=False) if num_frames > 2 else []
    return offset + np.sort(np.concatenate([[0.0, float(d)], np.asarray(inner, dtype=np.float64)]))

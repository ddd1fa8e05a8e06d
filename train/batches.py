"""What each step trains on: the step-indexed data order and the times of generated clips."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["StepBatchSampler", "infinite_loader", "sample_clip_times", "sample_generator_times"]


class StepBatchSampler:
    """Infinite batches of (index, sample_seed) derived from (seed, rank, step, micro-batch):
    the data order depends only on the step, so a resumed run sees exactly what the
    uninterrupted run would have seen, with any number of workers."""

    def __init__(self, num_items: int, batch: int, seed: int, rank: int, start_step: int, accum: int = 1):
        self.n, self.batch, self.seed, self.rank = num_items, batch, seed, rank
        self.start_step, self.accum = start_step, accum

    def __iter__(self):
        step = self.start_step
        while True:
            for micro in range(self.accum):
                rng = np.random.default_rng([self.seed, self.rank, step, micro])
                idx = rng.integers(0, self.n, size=self.batch)
                seeds = rng.integers(0, 2**31 - 1, size=self.batch)
                yield [(int(i), int(s)) for i, s in zip(idx, seeds)]
            step += 1


def infinite_loader(dataset, cfg: dict, batch: int, rank: int, start_step: int):
    sampler = StepBatchSampler(len(dataset), batch, int(cfg["seed"]), rank, start_step, cfg["grad_accum"])
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=int(cfg["num_workers"]),
        persistent_workers=int(cfg["num_workers"]) > 0,
        pin_memory=torch.cuda.is_available(),
        # Its own generator: creating the iterator must not consume the global RNG that
        # checkpoints restore, or a resumed run would drift from the uninterrupted one.
        generator=torch.Generator().manual_seed(int(cfg["seed"]) * 1000 + rank),
    )
    return iter(loader)


def sample_clip_times(batch: int, num_frames: int, max_dist: int, time_range: int, device) -> torch.Tensor:
    """Times for generated clips, drawn like the real ones (StyleGAN-V's sparse sampling) but
    starting anywhere in [0, time_range) so G learns the whole range used at evaluation.
    Uses torch's RNG, which checkpoints restore."""
    out = torch.empty(batch, num_frames)
    for i in range(batch):
        d = int(torch.randint(num_frames - 1, max(max_dist, num_frames), ()))
        start = int(torch.randint(0, max(time_range - d, 1), ()))
        inner = (torch.randperm(d - 1)[: num_frames - 2] + 1).sort().values if num_frames > 2 else torch.empty(0)
        out[i] = start + torch.cat([torch.zeros(1), inner.float(), torch.full((1,), float(d))])
    return out.to(device)


def sample_generator_times(batch: int, num_frames: int, max_dist: int, video_lengths, max_num_frames: int,
                           device) -> torch.Tensor:
    """StyleGAN-V / official GenDeF: each generated clip takes the length of a random real video
    (capped at ``max_num_frames``) and the real clips' power-of-two gaps, at a fractional offset
    (gendef.data.times). Seeded from torch's RNG, which checkpoints restore."""
    from gendef.data.times import sample_times

    rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
    lengths = np.minimum(np.asarray(video_lengths, dtype=np.int64), int(max_num_frames))
    picks = rng.choice(lengths, size=batch)
    t = np.stack([sample_times(num_frames, int(n), max_dist, rng, fractional=True) for n in picks])
    return torch.from_numpy(t).float().to(device)

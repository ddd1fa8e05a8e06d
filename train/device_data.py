"""Stage 1's frames held on the training device as uint8, batches drawn there (``data_on_device``).

``auto``: on CUDA when the frames fit in half the free device memory and in ``AUTO_MAX_BYTES``
(decoding happens once, at start, in this process), else the DataLoader (pinned
memory on CUDA). ``true``: always (a one-line error when they do not fit). ``false``: the DataLoader.
Stage 2's clips always use the DataLoader. The data order depends only on (seed, rank, step,
micro-batch), as the DataLoader's, so a resumed run sees what the uninterrupted run would have.
"""
from __future__ import annotations

from typing import Iterator

import torch

from train.errors import TrainError

__all__ = ["AUTO_MAX_BYTES", "wants_device_data", "device_batches"]

AUTO_MAX_BYTES = 4 << 30  # auto: at most this much (sky128's 2000 x 32 frames: 3.1 GB), decoded once at start


def _nbytes(dataset) -> int:
    return len(dataset) * 3 * dataset.resolution * dataset.resolution


def wants_device_data(cfg: dict, dataset, device, video: bool) -> bool:
    """Whether to hold ``dataset`` on ``device``; checks the size before anything is allocated."""
    mode = str(cfg.get("data_on_device", "auto")).lower()
    if mode in ("false", "no") or video:
        return False
    dev = torch.device(device)
    need = _nbytes(dataset)
    free = torch.cuda.mem_get_info(dev)[0] if dev.type == "cuda" else None
    fits = free is None or need <= free // 2
    if mode in ("true", "yes"):
        if not fits:
            raise TrainError(f"data_on_device=true: the frames need {need / 2**30:.1f} GiB, more than half the "
                             f"{free / 2**30:.1f} GiB free on {dev}; use data_on_device=auto")
        return True
    return dev.type == "cuda" and fits and need <= AUTO_MAX_BYTES


def _load(dataset, device) -> torch.Tensor:
    """Every frame, uint8 [N, 3, R, R], on ``device`` (allocated once, filled a frame at a time)."""
    frames = torch.empty(len(dataset), 3, dataset.resolution, dataset.resolution, dtype=torch.uint8, device=device)
    i = 0
    for v in dataset.videos:
        for f in range(v.length):
            img = dataset._read_frame(v, f)  # uint8 [R, R, 3]
            frames[i] = torch.from_numpy(img).permute(2, 0, 1).to(device)
            i += 1
    return frames


def device_batches(dataset, cfg: dict, batch: int, rank: int, start_step: int, device) -> Iterator[torch.Tensor]:
    """Infinite [batch, 3, R, R] float batches in [-1, 1]: indices and flips drawn on the device."""
    frames = _load(dataset, device)
    seed, accum, hflip = int(cfg["seed"]), int(cfg["grad_accum"]), bool(cfg["hflip"])
    gen = torch.Generator(device=device)
    step = start_step
    while True:
        for micro in range(accum):
            gen.manual_seed(hash((seed, rank, step, micro)) % 2**63)  # ints hash the same in every process
            idx = torch.randint(0, frames.shape[0], (batch,), device=device, generator=gen)
            flip = torch.rand(batch, device=device, generator=gen) < 0.5
            x = frames[idx].float().div_(127.5).sub_(1.0)
            if hflip:
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            yield x
        step += 1

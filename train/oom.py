"""Out of GPU memory: one line that names the batch, the peak and what to change, with the last checkpoint kept."""
from __future__ import annotations

import torch

from train.errors import TrainError

__all__ = ["OUT_OF_MEMORY", "OutOfMemory", "out_of_memory"]

# torch >= 2.5 has torch.OutOfMemoryError; older versions only the CUDA one (same class there)
OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


class OutOfMemory(TrainError):
    exit_code = 5


def _peak(device) -> str:
    if device is None or getattr(device, "type", "cpu") != "cuda":
        return "peak unknown (not a CUDA device)"
    peak = torch.cuda.max_memory_reserved(device) / 2**30
    total = torch.cuda.get_device_properties(device).total_memory / 2**30
    return f"peak {peak:.1f} GiB reserved of {total:.1f} GiB"


def out_of_memory(run, err: BaseException) -> OutOfMemory:
    """The one-line error for an OOM raised anywhere in a run (``run`` may be None: it failed while starting)."""
    if run is None:
        return OutOfMemory(f"out of memory while starting the run ({str(err).splitlines()[0] if str(err) else 'OOM'}); "
                           "lower batch_size or use mixed_precision=bf16")
    cfg, device = run.cfg, getattr(run, "device", None)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    last = run.ckpt.latest() if getattr(run, "ckpt", None) is not None else None
    keep = f"the last checkpoint {last} is kept (resume=latest)" if last else "no checkpoint was written yet"
    return OutOfMemory(
        f"out of GPU memory at step {run.state.get('step', 0)} with batch_size {cfg['batch_size']} "
        f"(grad_accum {cfg['grad_accum']}, mixed_precision {cfg['mixed_precision']}; {_peak(device)}): "
        f"lower batch_size, set mixed_precision=bf16, or raise grad_accum (same batch, less memory per pass); {keep}"
    )

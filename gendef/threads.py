"""Thread counts for one block of work, set on entry and restored on exit (also on an error).

The library never changes a thread setting beyond the call that asked for it: ``None`` leaves
the caller's setting alone, so an application that runs several jobs at once (the studio) sets
its budget once and passes ``None``. Both counts are read and restored in the calling thread
(torch's OpenMP backend keeps the count per thread; a thread started later takes the last value
set anywhere, so the restore matters).
"""
from __future__ import annotations

import contextlib
import operator
from typing import Iterator, Optional

__all__ = ["torch_threads", "opencv_threads"]


def _check(n) -> int:
    try:
        count = operator.index(n)
    except TypeError:
        count = 0
    if isinstance(n, bool) or count < 1:
        raise ValueError(f"threads must be a whole number >= 1 or None, got {n!r}")
    return count


@contextlib.contextmanager
def _scoped(n: Optional[int], get, set_) -> Iterator[None]:
    """``set_(n)`` inside the block and the old value back after (also on an error); ``None``: untouched."""
    if n is None:
        yield
        return
    n, old = _check(n), get()
    set_(n)
    try:
        yield
    finally:
        set_(old)


def torch_threads(n: Optional[int]):
    """torch's intra-op threads = ``n`` inside the block; ``None``: untouched."""
    import torch

    return _scoped(n, torch.get_num_threads, torch.set_num_threads)


def opencv_threads(n: Optional[int]):
    """OpenCV's threads = ``n`` inside the block; ``None``: untouched."""
    import cv2

    return _scoped(n, cv2.getNumThreads, cv2.setNumThreads)

"""A whole clip in chunks of frames: float work on one chunk at a time, the result kept or streamed as uint8.

A CanonicalVideo or a SegmentedVideo renders frame by frame (``iter_frames``); these helpers group
those frames into chunks of ``CHUNK_FRAMES``, hand each chunk (float32, with the clip frame it
starts at) to an optional per-chunk step (a tint, trails, original | result side by side), and
convert the step's output to uint8. Memory: one chunk of float frames plus the uint8 result
(:func:`render_uint8`), or plus nothing (:func:`iter_uint8`, for an encoder). A step sees frames
[first, first + n) and must treat them frame by frame (or read what it needs of earlier frames
from elsewhere, as :func:`gendef.viz.draw_tracks` reads trails from the positions): the chunk's
pictures are then exactly those of the same step on the whole clip.
"""
from __future__ import annotations

from typing import Callable, Iterator, Optional

import numpy as np

from ..errors import CanonicalVideoError
from ..imageutil import to_uint8

__all__ = ["CHUNK_FRAMES", "frame_chunks", "iter_uint8", "map_uint8", "render_uint8", "render_uint8_each"]

CHUNK_FRAMES = 32  # 32 frames of 1080p float32 are 760 MiB; of a 256 px working size, 14 MiB
ChunkStep = Callable[[int, np.ndarray], np.ndarray]  # (first clip frame, float frames [n, H, W, C]) -> frames


def frame_chunks(video, edits=None, chunk: int = CHUNK_FRAMES, **on) -> Iterator[tuple]:
    """(first clip frame, float32 frames [n, H, W, 3] or masks [n, H, W]) of ``video.render(edits, **on)``.

    ``on``: a SegmentedVideo's ``segment=`` (the segment an edit lives on); nothing for a CanonicalVideo.
    """
    chunk = int(chunk)
    if chunk < 1:
        raise CanonicalVideoError(f"chunk must be at least 1 frame, got {chunk}")
    held, first = [], 0
    for t, frame in enumerate(video.iter_frames(edits, **on)):
        held.append(frame)
        if len(held) == chunk:
            yield first, np.stack(held)
            held, first = [], t + 1
    if held:
        yield first, np.stack(held)


def iter_uint8(video, edits=None, step: Optional[ChunkStep] = None, chunk: int = CHUNK_FRAMES, **on) -> Iterator[np.ndarray]:
    """uint8 frames [H', W', C] of ``step(first, chunk)`` (default: the chunk itself), one by one.

    A mask (2-D frames) is repeated on three channels, as video files need.
    """
    for first, frames in frame_chunks(video, edits, chunk, **on):
        out = frames if step is None else step(first, frames)
        yield from to_uint8(np.repeat(out[..., None], 3, axis=-1) if out.ndim == 3 else out)


def render_uint8(video, edits=None, step: Optional[ChunkStep] = None, chunk: int = CHUNK_FRAMES, **on) -> np.ndarray:
    """:func:`iter_uint8` stacked: uint8 [T, H', W', C], filled chunk by chunk (no float copy of the clip)."""
    return render_uint8_each(video, (step,), edits, chunk, **on)[0]


def render_uint8_each(video, steps, edits=None, chunk: int = CHUNK_FRAMES, **on) -> list:
    """One uint8 clip [T, H', W', C] per step in ``steps`` (None: the frames themselves), every step
    fed the same float chunk, so the clip is rendered once whatever the number of steps."""
    outs = [None] * len(steps)
    for first, frames in frame_chunks(video, edits, chunk, **on):
        for k, step in enumerate(steps):
            got = frames if step is None else step(first, frames)
            got = to_uint8(np.repeat(got[..., None], 3, axis=-1) if got.ndim == 3 else got)
            if outs[k] is None:
                outs[k] = np.empty((video.num_frames,) + got.shape[1:], np.uint8)
            outs[k][first : first + len(got)] = got
    return outs


def map_uint8(fn: Callable, *clips, chunk: int = CHUNK_FRAMES) -> Iterator[np.ndarray]:
    """uint8 frames of ``fn(*chunks)`` over clips of one length ([T, ...] arrays), a chunk at a time:
    e.g. two clips side by side (:func:`gendef.viz.side_by_side`) without a float copy of either."""
    chunk = int(chunk)
    if chunk < 1:
        raise CanonicalVideoError(f"chunk must be at least 1 frame, got {chunk}")
    for a in range(0, len(clips[0]), chunk):
        yield from to_uint8(fn(*(c[a : a + chunk] for c in clips)))

"""Regenerate the studio's example inputs (kept tiny: < 1 MB together).

``python assets/examples/make_examples.py`` writes
- astronaut_pan.npz: a CanonicalVideo whose motion is known exactly (a slow pan
  with a gentle zoom over a photo larger than the frame), so tracks and masks are
  checkable by eye;
- astronaut_pan.mp4: the same video as a clip, to try the decomposer on.
"""
from pathlib import Path

import numpy as np
from skimage import data, transform

from gendef.video.canonical_video import CanonicalVideo

HERE = Path(__file__).resolve().parent
FRAME = 64
CANVAS = 96
FRAMES = 24


def pan_grid(num_frames: int, frame: int, canvas: int) -> np.ndarray:
    """Frame pixel (x, y) samples canvas (cx + s (x - c), cy + s (y - c)) moving along an arc."""
    t = np.linspace(0.0, 1.0, num_frames, dtype=np.float32)[:, None, None]
    ys, xs = np.meshgrid(np.arange(frame, dtype=np.float32), np.arange(frame, dtype=np.float32), indexing="ij")
    c = (frame - 1) / 2.0
    scale = 1.0 - 0.12 * np.sin(np.pi * t)
    cx = (canvas - 1) / 2.0 - 14.0 + 28.0 * t
    cy = (canvas - 1) / 2.0 + 8.0 * np.sin(2 * np.pi * t)
    gx = cx + scale * (xs[None] - c)
    gy = cy + scale * (ys[None] - c)
    return np.stack([gx, gy], axis=-1).astype(np.float32)


def main():
    photo = transform.resize(data.astronaut()[:400, 50:450], (CANVAS, CANVAS), anti_aliasing=True).astype(np.float32)
    video = CanonicalVideo(
        canonical=np.clip(photo, 0, 1),
        grid=pan_grid(FRAMES, FRAME, CANVAS),
        fps=12.0,
        metadata={"source": "skimage.data.astronaut, synthetic pan + zoom (ground-truth motion)"},
    )
    video.save(HERE / "astronaut_pan.npz")
    video.to_video(HERE / "astronaut_pan.mp4")
    for p in sorted(HERE.glob("astronaut_pan.*")):
        print(f"{p.name}: {p.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()

"""Preview samples written during training: fixed-seed EMA images (stage 1) or videos (stage 2)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import List

import numpy as np

from gendef.imageutil import to_uint8

__all__ = ["tile", "write_samples", "log_samples"]


def tile(videos: np.ndarray) -> np.ndarray:
    """[N, T, H, W, 3] -> [T, rows*H, cols*W, 3] grid."""
    n, t, h, w, c = videos.shape
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    pad = np.zeros((rows * cols - n, t, h, w, c), videos.dtype)
    v = np.concatenate([videos, pad]).reshape(rows, cols, t, h, w, c)
    return v.transpose(2, 0, 3, 1, 4, 5).reshape(t, rows * h, cols * w, c)


def write_samples(G_ema, cfg: dict, step: int, output_dir, video: bool) -> List[Path]:
    """Fixed-seed EMA samples: a png of canonical images (stage 1) or an mp4 + png (stage 2)."""
    from gendef.video.io import write_video
    from PIL import Image

    folder = Path(output_dir) / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    seeds = list(range(int(cfg["sample_count"])))
    frames = int(cfg["sample_frames"]) if video else 1
    vids = G_ema.sample_batch(seeds, num_frames=frames)
    canon = np.stack([v.canonical for v in vids])[:, None]
    paths = []
    png = folder / f"{'canonical' if video else 'images'}-{step:08d}.png"
    Image.fromarray(to_uint8(tile(canon)[0])).save(png)
    paths.append(png)
    if video:
        grid = tile(np.stack([v.frames() for v in vids]))
        paths.append(write_video(grid, folder / f"video-{step:08d}.mp4", fps=vids[0].fps))
    return paths


def log_samples(accelerator, paths: List[Path], step: int) -> None:
    """The png grid also goes to TensorBoard's image tab (videos stay as mp4 files)."""
    from PIL import Image

    writer = accelerator.get_tracker("tensorboard", unwrap=True)
    if writer is None or not hasattr(writer, "add_image"):
        return
    with Image.open(paths[0]) as im:
        writer.add_image("samples/" + paths[0].name.split("-")[0], np.asarray(im.convert("RGB")), step, dataformats="HWC")

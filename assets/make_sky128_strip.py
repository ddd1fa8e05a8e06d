"""README strip of the procedural sky data at 128 px: one row per clip, frames 0, 10, 20, 31.

``python assets/make_sky128_strip.py [--out assets/synthetic_sky128_strip.png]``
Saved with an adaptive 256-colour palette to stay in the tens of KB.
"""
import argparse

import numpy as np
from PIL import Image

from gendef.data.synthetic import clip_seed, render_clip


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="assets/synthetic_sky128_strip.png")
    ap.add_argument("--clips", default="0,8,1")
    ap.add_argument("--frames", default="0,10,20,31")
    a = ap.parse_args()
    times = [int(t) for t in a.frames.split(",")]
    gap = 4
    rows = []
    for i in a.clips.split(","):
        clip = render_clip(clip_seed(0, int(i)), max(times) + 1, 128)
        tiles = [np.pad(clip[t], ((0, 0), (0, gap), (0, 0)), constant_values=255) for t in times]
        rows.append(np.pad(np.concatenate(tiles, 1)[:, :-gap], ((0, gap), (0, 0), (0, 0)), constant_values=255))
    img = Image.fromarray(np.concatenate(rows)[:-gap]).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(a.out, optimize=True)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

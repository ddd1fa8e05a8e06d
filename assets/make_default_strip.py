"""Sample strip of the shipped default model for its model card.

``python assets/make_default_strip.py [--checkpoint checkpoints/default] [--out assets/default_samples.png]``
One row per seed: canonical image, 4 frames of a 64-frame video, and below them the
displacement of each frame (colour wheel: hue = direction, saturation = magnitude; full colour =
max(largest displacement in the row, 1 px), gendef.viz.FIELD_SCALE_FLOOR_PX: a still field draws white).
"""
import argparse
import os

import numpy as np
from PIL import Image

from gendef import GenDeF
from gendef.viz import deformation_strip


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="checkpoints/default")
    ap.add_argument("--out", default="assets/default_samples.png")
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--frames", type=int, default=64)
    a = ap.parse_args()
    model = GenDeF.from_pretrained(a.checkpoint)
    strips = [deformation_strip(model.sample(seed=int(s), num_frames=a.frames), num=4, tile=96) for s in a.seeds.split(",")]
    width = max(s.shape[1] for s in strips)
    gap = np.full((6, width, 3), 255, np.uint8)
    rows = []
    for s in strips:
        rows += [np.pad(s, ((0, 0), (0, width - s.shape[1]), (0, 0)), constant_values=255), gap]
    tmp = a.out + ".tmp"  # atomic: a reader never sees half a PNG
    Image.fromarray(np.concatenate(rows[:-1])).save(tmp, format="PNG", optimize=True)
    os.replace(tmp, a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

"""Loss curves of a GPU sitting (the model card's plot), from its ``log.csv`` (train/sitting.py;
one panel per ``stage`` column value) or an older sitting's ``losses_stage{1,2}.csv`` files.

    python benchmarks/plot_losses.py OUT_DIR [--out assets/sky128_losses.png]

One panel per stage: D's and G's loss (and L_reg in stage 2) against kimg, smoothed with a running
mean over 5 log points. Drawn with OpenCV (no plotting library needed); a small PNG.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
import numpy as np

SERIES = {"loss/D": (40, 40, 200), "loss/G": (200, 90, 30), "loss/reg": (40, 150, 40)}  # BGR
W, H, PAD = 420, 220, 36


def read(path: Path, stage=None) -> dict:
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if stage is None or r.get("stage") == stage]
    cols = {}
    for key in ["kimg", *SERIES]:
        vals = [float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows]
        cols[key] = np.array(vals, np.float64)
    return cols


def _smooth(y: np.ndarray, k: int = 5) -> np.ndarray:
    out = np.full_like(y, np.nan)
    for i in range(len(y)):
        win = y[max(0, i - k + 1): i + 1]
        win = win[np.isfinite(win)]
        out[i] = win.mean() if len(win) else np.nan
    return out


def panel(title: str, cols: dict) -> np.ndarray:
    img = np.full((H, W, 3), 255, np.uint8)
    x = cols["kimg"]
    ys = {k: _smooth(cols[k]) for k in SERIES if np.isfinite(cols[k]).any()}
    lo = min(np.nanmin(y) for y in ys.values()) if ys else 0.0
    hi = max(np.nanmax(y) for y in ys.values()) if ys else 1.0
    hi = hi if hi > lo else lo + 1.0
    x0, x1 = (float(x.min()), float(x.max())) if len(x) else (0.0, 1.0)
    x1 = x1 if x1 > x0 else x0 + 1.0
    to_px = lambda xv, yv: np.stack([PAD + (xv - x0) / (x1 - x0) * (W - 2 * PAD),  # noqa: E731
                                     H - PAD - (yv - lo) / (hi - lo) * (H - 2 * PAD)], -1)
    cv2.rectangle(img, (PAD, PAD), (W - PAD, H - PAD), (160, 160, 160), 1)
    for i, (k, y) in enumerate(ys.items()):
        ok = np.isfinite(y)
        pts = to_px(x[ok], y[ok]).round().astype(np.int32)
        cv2.polylines(img, [pts], False, SERIES[k], 1, cv2.LINE_AA)
        cv2.putText(img, k, (PAD + 6 + 90 * i, PAD + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, SERIES[k], 1, cv2.LINE_AA)
    font = (cv2.FONT_HERSHEY_SIMPLEX, 0.38, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.putText(img, title, (PAD, PAD - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, f"{x0:.0f}", (PAD - 4, H - PAD + 14), *font)
    cv2.putText(img, f"{x1:.0f} kimg", (W - PAD - 40, H - PAD + 14), *font)
    cv2.putText(img, f"{hi:.2f}", (2, PAD + 4), *font)
    cv2.putText(img, f"{lo:.2f}", (2, H - PAD), *font)
    return img


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", help="a sitting's output folder (log.csv, or losses_stage1.csv, losses_stage2.csv)")
    ap.add_argument("--out", default="assets/sky128_losses.png")
    a = ap.parse_args(argv)
    log = Path(a.folder) / "log.csv"
    if log.is_file():
        with open(log, newline="") as f:
            stages = list(dict.fromkeys(r["stage"] for r in csv.DictReader(f)))
        panels = [panel(f"stage {i}", read(log, s)) for i, s in enumerate(stages, 1)]
    else:
        panels = [panel(f"stage {s}", read(p)) for s in (1, 2) if (p := Path(a.folder) / f"losses_stage{s}.csv").is_file()]
    if not panels:
        print(f"error: no log.csv / losses_stage1.csv / losses_stage2.csv in {a.folder}")
        return 2
    cv2.imwrite(a.out, np.concatenate(panels, 1))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

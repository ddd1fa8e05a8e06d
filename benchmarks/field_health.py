"""Field health of any GenDeF export: the statistics the trainer's monitor logs, for one or more seeds.

    python benchmarks/field_health.py CHECKPOINT [--seeds 1] [--frames 64] [--json out.json]
        [--data DIR | --data-speed PCT] [--speed-band 0.3]

CHECKPOINT: a save_pretrained folder (config.json + model.safetensors) or a Hub id. For each seed it
samples ``--frames`` frames and prints mean |m|, max |m|, the high-frequency part and the speed of
the field (px and % of the side), the speed of its frames measured like the data's (Farneback,
``frame speed``), the canonical coverage, and one warning line per statistic outside the healthy
band (gendef.metrics.field_health). The speed band is always checked: the data's speed is
``--data-speed`` (% of the side per frame), else measured with the same estimator on 16 clips x 16
frames of ``--data`` (a dataset folder/zip), else on the procedural sky generator's clips at the
model's resolution (the sky configs' data); the line ``data speed:`` says which. A frame speed
outside +-``--speed-band`` of it is a warning ("nearly static" when slower). Exit code 0 either way;
2 for a checkpoint or data that cannot be loaded.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from gendef.errors import GenDeFError, one_line
from gendef.imageutil import to_uint8
from gendef.metrics.field_health import (BANDS, SPEED_CLIPS, data_speed_pct, dataset_clips, field_stats,
                                         health_warnings, synthetic_clips)

COLUMNS = ("mean", "max", "hf", "speed", "flow_speed")


def measure(model, seeds, frames: int) -> list:
    rows = []
    for seed in seeds:
        vid = model.sample(seed=int(seed), num_frames=frames)
        rows.append(dict(seed=int(seed), **field_stats(vid.grid, vid.canvas_size, frames=to_uint8(vid.frames()))))
    return rows


def data_speed(args, resolution: int) -> tuple:
    """(% of the side per frame, where it comes from)."""
    if args.data_speed is not None:
        return float(args.data_speed), "--data-speed"
    n, t = SPEED_CLIPS
    if args.data:
        from gendef.data import ClipDataset

        ds = ClipDataset(args.data, resolution, num_frames=2, max_dist=2)
        return data_speed_pct(dataset_clips(ds, n, t)), f"measured on {n} clips x {t} frames of {args.data}"
    return data_speed_pct(synthetic_clips(resolution, n, t)), f"measured on {n} procedural sky clips x {t} frames"


def report(rows: list, side: int, data_pct: float, source: str, band: float) -> str:
    heads = [f"{c} px (% of {side})" for c in COLUMNS[:-1]] + ["frame speed px (%)"]
    lines = [f"data speed: {data_pct:.4f}% of the side per frame ({source}; Farneback at 128 px, the frames' "
             f"estimator); healthy within +-{band:.0%}",
             f"| seed | {' | '.join(heads)} | coverage |", "|---|" + "---|" * (len(COLUMNS) + 1)]
    for r in rows:
        cells = " | ".join(f"{r[c]:.4g} ({r[c + '_pct']:.3g}%)" for c in COLUMNS)
        lines.append(f"| {r['seed']} | {cells} | {r['coverage']:.0%} |")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "seed"}
    lines += [f"warning: {w}" for w in health_warnings(mean, data_pct, band)] or ["healthy: every statistic inside its band"]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--seeds", default="1", help="comma-separated seeds (default 1)")
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--data", help="dataset folder/zip whose speed the band is centred on")
    ap.add_argument("--data-speed", type=float, help="the data's speed, %% of the side per frame (skips measuring)")
    ap.add_argument("--speed-band", type=float, default=BANDS["speed_rel"], help="healthy within +- this fraction")
    a = ap.parse_args(argv)
    from gendef import GenDeF

    try:
        model = GenDeF.from_pretrained(a.checkpoint)
        seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
        data_pct, source = data_speed(a, model.resolution)
    except (GenDeFError, ValueError, OSError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    rows = measure(model, seeds, a.frames)
    print(f"{a.checkpoint}: {model.resolution} px, {a.frames} frames")
    print(report(rows, model.resolution, data_pct, source, a.speed_band))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Field health of any GenDeF export: the statistics the trainer's monitor logs, for one or more seeds.

    python benchmarks/field_health.py CHECKPOINT [--seeds 1] [--frames 64] [--json out.json]

CHECKPOINT: a save_pretrained folder (config.json + model.safetensors) or a Hub id. For each seed it
samples ``--frames`` frames and prints mean |m|, max |m|, the high-frequency part and the speed of
the field (px and % of the side), the canonical coverage, and one warning line per statistic outside
the healthy band (gendef.metrics.field_health). Exit code 0 either way; 2 for a checkpoint that
cannot be loaded.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from gendef.errors import GenDeFError, one_line
from gendef.metrics.field_health import field_stats, health_warnings

COLUMNS = ("mean", "max", "hf", "speed")


def measure(model, seeds, frames: int) -> list:
    rows = []
    for seed in seeds:
        vid = model.sample(seed=int(seed), num_frames=frames)
        rows.append(dict(seed=int(seed), **field_stats(vid.grid, vid.canvas_size)))
    return rows


def report(rows: list, side: int) -> str:
    lines = [f"| seed | {' | '.join(f'{c} px (% of {side})' for c in COLUMNS)} | coverage |",
             "|---|" + "---|" * (len(COLUMNS) + 1)]
    for r in rows:
        cells = " | ".join(f"{r[c]:.4g} ({r[c + '_pct']:.3g}%)" for c in COLUMNS)
        lines.append(f"| {r['seed']} | {cells} | {r['coverage']:.0%} |")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "seed"}
    lines += [f"warning: {w}" for w in health_warnings(mean)] or ["healthy: every statistic inside its band"]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--seeds", default="1", help="comma-separated seeds (default 1)")
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--json", help="also write the rows here")
    a = ap.parse_args(argv)
    from gendef import GenDeF

    try:
        model = GenDeF.from_pretrained(a.checkpoint)
        seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    except (GenDeFError, ValueError, OSError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    rows = measure(model, seeds, a.frames)
    print(f"{a.checkpoint}: {model.resolution} px, {a.frames} frames")
    print(report(rows, model.resolution))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

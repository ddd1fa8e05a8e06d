"""Stage 2's field monitor: is G_d moving content, or faking texture with a static scramble?

At every log step the Run asks :meth:`FieldMonitor.scalars` for the field statistics of a few
fixed-seed G_ema samples (``gendef.metrics.field_health``: mean/max |m|, the high-frequency part,
speed, in px and % of the side, and canonical coverage); they go to TensorBoard with the losses.
The speed band is always checked: the frames' speed (Farneback, as the data's) against
``health_data_speed`` when the config sets it, else against the training data's own speed, measured
once at the first check on 16 clips x 16 frames with the same estimator and printed.
When a statistic leaves its healthy band the monitor prints one line naming it and the likely
cause, and records it in ``<output_dir>/health.json`` (written atomically; the sitting tool copies
it into its summary). Every ``health_strip_every`` steps it writes a PNG strip (canonical | frames |
field in colour) under ``samples/`` without ffmpeg.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from gendef.imageutil import to_uint8
from gendef.metrics.field_health import BANDS, SPEED_CLIPS, data_speed_pct, dataset_clips, field_stats, health_warnings

__all__ = ["FieldMonitor"]

_KEYS = ("mean", "max", "hf", "speed")


class FieldMonitor:
    def __init__(self, cfg: dict, output_dir, enabled: bool = True, data=None):
        self.seeds = list(range(int(cfg["health_seeds"])))
        self.frames = int(cfg["health_frames"])
        self.strip_every = int(cfg["health_strip_every"])
        self.data_speed_pct = cfg.get("health_data_speed")
        self.data_speed_from = "config (health_data_speed)" if self.data_speed_pct is not None else None
        self.data = data  # the training ClipDataset: its speed when the config gives none
        self.enabled = enabled and bool(self.seeds)
        self.out = Path(output_dir)
        self.active: set = set()  # statistics outside their band at the last check
        self.events: list = []

    def scalars(self, G_ema, step: int) -> Dict[str, float]:
        """Field statistics of the fixed-seed samples (averaged over seeds) as ``field/*`` scalars."""
        if not self.enabled:
            return {}
        self._measure_data_speed()
        vids = G_ema.sample_batch(self.seeds, num_frames=self.frames)
        stats = [field_stats(v.grid, v.canvas_size, frames=to_uint8(v.frames())) for v in vids]
        mean = {k: float(np.mean([s[k] for s in stats])) for k in stats[0]}
        self._warn(mean, step)
        if self.strip_every and step % self.strip_every == 0:
            self.write_strip(vids[0], step)
        logs = {f"field/{k}_px": mean[k] for k in _KEYS}
        logs.update({f"field/{k}_pct": mean[f"{k}_pct"] for k in _KEYS})
        logs["field/coverage"] = mean["coverage"]
        if "flow_speed_pct" in mean:
            logs["field/frame_speed_pct"] = mean["flow_speed_pct"]
        return logs

    def _measure_data_speed(self) -> None:
        """Once: the training data's speed with the frames' estimator, when the config gives none."""
        if self.data_speed_pct is not None or self.data is None:
            return
        n, t = SPEED_CLIPS
        try:
            self.data_speed_pct = data_speed_pct(dataset_clips(self.data, n, t))
        except ValueError:  # no video of 2 or more frames: only a large static field is flagged
            self.data = None
            return
        self.data_speed_from = f"measured on {n} clips x {t} frames of the training data"
        print(f"field monitor: the data moves {self.data_speed_pct:.4f}% of the side per frame ({self.data_speed_from}, "
              f"Farneback at 128 px as the samples' frames); healthy within {BANDS['speed_rel']:.0%} of it", flush=True)

    def _warn(self, stats: dict, step: int) -> None:
        now = {}
        for line in health_warnings(stats, self.data_speed_pct):
            now[line.split(" ", 1)[0]] = line
        for name in sorted(set(now) - self.active):  # a statistic that just left its band
            print(f"warning: step {step}: {now[name]}", flush=True)
            self.events.append({"step": int(step), "statistic": name, "message": now[name]})
        self.active = set(now)
        self._write_json(stats, step)

    def _write_json(self, stats: dict, step: int) -> None:
        body = {"step": int(step), "last": {k: round(v, 6) for k, v in stats.items()},
                "data_speed_pct": self.data_speed_pct, "data_speed_from": self.data_speed_from,
                "unhealthy_now": sorted(self.active), "warnings": self.events}
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / ".health.json.tmp"
        tmp.write_text(json.dumps(body, indent=1))
        os.replace(tmp, self.out / "health.json")

    def write_strip(self, video, step: int) -> Optional[Path]:
        """Canonical | frames | field in colour, as a PNG (PIL, no ffmpeg)."""
        from PIL import Image

        from gendef.viz import deformation_strip

        folder = self.out / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"field-{step:08d}.png"
        tmp = folder / f".field-{step:08d}.png.tmp"
        Image.fromarray(to_uint8(deformation_strip(video, num=4, tile=96))).save(tmp, format="PNG")
        os.replace(tmp, path)
        return path

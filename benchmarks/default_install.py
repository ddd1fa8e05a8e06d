"""Swap a measured model into ``checkpoints/default``: weights, sample strip, fingerprint and model card.

Called by ``python -m benchmarks.default_card MODEL --install --sittings SUMMARY.json`` after it has
measured MODEL; it refuses when a figure is missed (unless ``--allow-missed``) or the folder would
exceed ``MAX_BYTES``. In order:

1. copies MODEL's ``config.json`` and ``model.safetensors`` (nothing else) into ``checkpoints/default``;
2. redraws ``assets/default_samples.png`` with ``assets/make_default_strip.py`` (canonical | frames, then
   the field on ``gendef.viz``'s scale);
3. rewrites ``tests/default_fingerprint.json`` (``benchmarks/default_fingerprint.py``);
4. writes ``checkpoints/default/README.md`` from ``TEMPLATE`` (hand-written prose), filling its
   ``{{placeholders}}`` from the measurements and the sittings; a ``TODO(lead)`` left in it is refused.

Sittings: JSON files, each either a ``train/sitting.py`` ``sitting.json`` (its stages' ``kimg_total`` and
``seconds``) or a summary ``{"stages": {"stage1": {"kimg": 150.0, "wall_hours": 3.1, "cpu_hours": 6.0,
"sittings": 4}, "stage2": {...}}}``. Over several files: kimg is the largest (it is cumulative), hours
and sittings add up.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.default_fingerprint import FILES, FINGERPRINT, write_fingerprint
from gendef.errors import UsageError
from gendef.generator.shipped import REPO_ROOT, default_checkpoint_path

__all__ = ["MAX_BYTES", "TEMPLATE", "STRIP", "install", "sittings_summary", "render_card"]

MAX_BYTES = 25 * 2**20
TEMPLATE = REPO_ROOT / "assets" / "default_card_template.md"
STRIP = REPO_ROOT / "assets" / "default_samples.png"
STAGES = {"stage1": "1 (G_c + image D)", "stage2": "2 (G_c + G_d + video D, L_reg)"}


def _stage_row(s: dict) -> dict:
    kimg = s.get("kimg", s.get("kimg_total"))
    hours = s.get("wall_hours", s["seconds"] / 3600.0 if "seconds" in s else None)
    if kimg is None or hours is None:
        raise UsageError(f"a sittings stage needs kimg (or kimg_total) and wall_hours (or seconds), got {sorted(s)}")
    return {"kimg": float(kimg), "wall_hours": float(hours), "cpu_hours": s.get("cpu_hours"), "sittings": int(s.get("sittings", 1))}


def sittings_summary(paths) -> dict:
    """{stage: {kimg, wall_hours, cpu_hours or None, sittings}} over sitting.json / summary files."""
    out: dict = {}
    for p in paths:
        try:
            stages = json.loads(Path(p).read_text())["stages"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UsageError(f"sittings file {p}: cannot read its 'stages' ({e})") from None
        for name, s in stages.items():
            row, acc = _stage_row(s), out.get(name)
            if acc is None:
                out[name] = row
                continue
            acc["kimg"] = max(acc["kimg"], row["kimg"])
            acc["wall_hours"] += row["wall_hours"]
            acc["sittings"] += row["sittings"]
            both = acc["cpu_hours"] is not None and row["cpu_hours"] is not None
            acc["cpu_hours"] = acc["cpu_hours"] + row["cpu_hours"] if both else None
    return out


def sittings_table(summary: dict) -> str:
    lines = ["| stage | sittings | kimg | wall hours | CPU hours |", "|---|---|---|---|---|"]
    for name, s in sorted(summary.items()):
        cpu = "–" if s["cpu_hours"] is None else f"{s['cpu_hours']:.2f}"
        lines.append(f"| {STAGES.get(name, name)} | {s['sittings']} | {s['kimg']:.1f} | {s['wall_hours']:.2f} | {cpu} |")
    return "\n".join(lines)


def render_card(template: str, card: dict, figures_md: str, summary: dict, size_bytes: int) -> str:
    """The template with every ``{{name}}`` filled; a name it does not know is an error."""
    ds = card["field_health"]["data_speed"]
    values = {"resolution": str(card["resolution"]), "parameters_m": f"{card['parameters'] / 1e6:.2f}",
              "size_mb": f"{size_bytes / 1e6:.1f}", "model_sha256": card["model_sha256"], "date": card["date"],
              "data_speed_px": f"{ds['px']:.3f}", "data_speed_pct": f"{ds['pct']:.2f}",
              "figures": figures_md.rstrip("\n"), "sittings": sittings_table(summary)}
    if "TODO(lead)" in template:
        raise UsageError("the card template still has TODO(lead) parts: write them before installing")
    unknown = sorted(set(re.findall(r"\{\{(\w+)\}\}", template)) - set(values))
    if unknown:
        raise UsageError(f"the card template has placeholders nothing fills: {', '.join(unknown)}")
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, dst)


def write_text_atomic(path: Path, text: str) -> None:
    """``text`` into ``path`` through a temp file and a rename (the benchmarks' one text writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def install(card: dict, figures_md: str, sittings, allow_missed: bool = False, dest: Path = None,
            strip: Path = STRIP, fingerprint: Path = FINGERPRINT, template: Path = TEMPLATE) -> str:
    """Checks first (figures, size, sittings, template), then changes files; returns what it wrote."""
    dest = Path(dest or default_checkpoint_path())
    src = Path(card["model"])
    missed = [f["figure"] for f in card["figures"] if f["met"] is not True]
    if missed and not allow_missed:
        raise UsageError(f"not installed: missed or not measured: {'; '.join(missed)} (--allow-missed installs anyway)")
    if not sittings:
        raise UsageError("--install needs --sittings (sitting.json files or a summary) for the card")
    size = sum((src / n).stat().st_size for n in FILES)
    if size > MAX_BYTES:
        raise UsageError(f"{src}: {size / 2**20:.1f} MiB, over the {MAX_BYTES // 2**20} MiB a shipped default may weigh")
    text = render_card(Path(template).read_text(), card, figures_md, sittings_summary(sittings), size)
    dest.mkdir(parents=True, exist_ok=True)
    if src.resolve() != dest.resolve():
        for n in FILES:
            _atomic_copy(src / n, dest / n)
    subprocess.run([sys.executable, str(REPO_ROOT / "assets" / "make_default_strip.py"), "--checkpoint", str(dest),
                    "--out", str(strip)], check=True, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
    write_fingerprint(dest, fingerprint)
    write_text_atomic(dest / "README.md", text)
    return f"installed {src} into {dest}; wrote {strip}, {fingerprint} and {dest / 'README.md'}"

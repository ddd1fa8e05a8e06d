"""The per-run loss log: ``<output_dir>/log.csv``, one row per log step (``Run._log``).

The header is the union of every key seen so far, in first-seen order. A row with a key the
header lacks (a monitor that starts logging at stage 2, an ``aug/rt`` that appears at the first
ADA adjustment) makes the file be rewritten once with the wider header (older rows get empty
cells), through a temporary file and ``os.replace``; rows that fit are appended and flushed, so
a kill loses at most the row being written. Resuming into the same folder appends to it.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

__all__ = ["append_row", "read_rows"]


def read_rows(path) -> tuple:
    """(header, rows as dicts) of a log.csv; ([], []) when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return [], []
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        rows = list(r)
        return list(r.fieldnames or []), rows


def append_row(path, row: dict) -> None:
    path = Path(path)
    header = _header(path)
    if header is not None and all(k in header for k in row):
        with open(path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=header, restval="").writerow(row)
        return
    old_header, rows = read_rows(path)
    header = list(dict.fromkeys([*old_header, *row]))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, restval="")
        w.writeheader()
        w.writerows(rows + [row])
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _header(path: Path):
    try:
        with open(path, newline="") as f:
            return next(csv.reader(f))
    except (OSError, StopIteration):
        return None

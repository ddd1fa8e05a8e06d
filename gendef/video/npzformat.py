"""The two .npz formats of the data model, read and written as plain arrays.

* A CanonicalVideo file holds ``canonical``, ``grid``, ``fps``, ``size``, ``padding`` (a string, one
  of :data:`~gendef.video.padding.PADDINGS`), ``interpolation`` (a string, one of
  :data:`~gendef.video.padding.INTERPOLATIONS`) and a JSON ``metadata`` string.
* A SegmentedVideo file (a whole clip as a chain of segments) holds ``seg{i}_canonical`` and
  ``seg{i}_grid`` for every segment, ``starts`` (first clip frame of each segment), ``cuts`` (clip
  frames where a hard cut starts a segment), ``fps``, ``size``, ``padding`` and ``interpolation``
  (one string per segment each), a JSON ``metadata`` string and a JSON ``segment_metadata`` string
  (a list, one dict per segment).

``padding`` is written only when some video is not "black", ``interpolation`` only when some video
is not "bilinear"; a file without them (every file written before they existed) is all "black" and
"bilinear". A name outside its list is refused (one line).

Every member's shape, dtype and declared size is checked against the MAX_* limits from the
archive's .npy headers (:mod:`gendef.video.npzfile`) before anything is decompressed, so a small
file cannot make ``load`` allocate gigabytes. Files are written atomically (temp + rename) and
read with ``allow_pickle=False``. The objects themselves are built by their classes.
"""
from __future__ import annotations

import io
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import CanonicalVideoError, NpzHeaderError
from .npzfile import read_npz_headers
from .padding import INTERPOLATIONS, PADDINGS

__all__ = [
    "FORMAT_VERSION", "MAX_FILE_FRAMES", "MAX_CANVAS_PIXELS", "MAX_GRID_VALUES", "MAX_METADATA_BYTES",
    "MAX_SEGMENTS", "MAX_CLIP_GRID_VALUES", "check_npz", "check_segmented_npz", "is_segmented_npz",
    "write_npz", "read_canonical_arrays", "read_segmented_arrays",
]

PathLike = Union[str, os.PathLike, io.IOBase]

FORMAT_VERSION = 1
# Limits a CanonicalVideo .npz must respect (checked against the headers, see :func:`check_npz`);
# ``render`` needs 1.5x the grid's bytes, so the grid limit bounds it too.
MAX_FILE_FRAMES = 4096
MAX_CANVAS_PIXELS = 4096 * 4096  # Hc * Wc of the canonical image (192 MiB as float32 RGB)
MAX_GRID_VALUES = 1 << 27  # T * H * W * 2: 512 MiB as float32, e.g. 256 frames of 512x512
MAX_METADATA_BYTES = 1 << 20
_MAX_NAME_CHARS = 16  # a padding or interpolation name is a short string (PADDINGS, INTERPOLATIONS), one per video
_NAMED = {"padding": (PADDINGS, "black"), "interpolation": (INTERPOLATIONS, "bilinear")}  # member: (choices, missing)
_HEADER_SLACK = 1 << 16  # a zip entry may declare this much more than its array (the .npy header)
# A SegmentedVideo file: each segment within the limits above, and the whole clip within these
MAX_SEGMENTS = 256
MAX_CLIP_GRID_VALUES = 1 << 28  # 1 GiB of float32 grids, e.g. 1800 frames of 256x256
_SEGMENTED_KEYS = ("starts", "fps")


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------
def write_npz(path: Union[str, os.PathLike], arrays: dict) -> Path:
    """Write ``arrays`` as a compressed ``.npz`` (no pickles), atomically: a crash leaves the old file.

    A path without the ``.npz`` suffix gets it appended.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
    if path.is_dir():
        raise CanonicalVideoError(f"{path}: is a folder; give a file name such as video.npz")
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except OSError as e:
        raise CanonicalVideoError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


# --------------------------------------------------------------------------------------
# header checks (before decompressing)
# --------------------------------------------------------------------------------------
def _headers(path: PathLike, max_members: int = 64) -> dict:
    """``{name: NpzMember}`` of a file that must be a readable .npz (one-line CanonicalVideoError otherwise)."""
    name = getattr(path, "name", path)
    if isinstance(path, (str, os.PathLike)):
        if not Path(path).is_file():
            raise CanonicalVideoError(f"{name}: file not found")
        with open(path, "rb") as fh:
            if fh.read(4) != b"PK\x03\x04":
                raise CanonicalVideoError(f"{name}: not a CanonicalVideo .npz file (wrong file type or corrupt)")
    try:
        return read_npz_headers(path, max_members=max_members)
    except NpzHeaderError as e:
        raise CanonicalVideoError(f"{name}: corrupt or truncated CanonicalVideo file ({e})") from None


def is_segmented_npz(path: PathLike) -> bool:
    """Whether ``path`` is a SegmentedVideo .npz (reads only the archive's headers)."""
    return "starts" in _headers(path, max_members=2 * MAX_SEGMENTS + 8)


def check_npz(path: PathLike) -> dict:
    """Check a CanonicalVideo .npz against the MAX_* limits without decompressing its arrays.

    Returns ``{name: NpzMember}``; raises a one-line CanonicalVideoError for a file that is not
    an .npz, lacks a member, or declares shapes, dtypes or sizes outside the limits.
    """
    name = getattr(path, "name", path)
    members = _headers(path)
    missing = [k for k in ("canonical", "grid", "fps") if k not in members]
    if missing:
        raise CanonicalVideoError(f"{name}: not a CanonicalVideo file (missing {', '.join(missing)})")
    problem = _npz_limit_problem(members)
    if problem:
        raise CanonicalVideoError(f"{name}: {problem}")
    return members


def _npz_limit_problem(members: dict) -> Optional[str]:
    c, g, f = members["canonical"], members["grid"], members["fps"]
    m, named = members.get("metadata"), tuple(members.get(k) for k in _NAMED)
    problem = (_pair_problem(c, g, "canonical", "grid") or _fps_problem(f) or _metadata_problem(m)
               or _names_problem(members, ()))
    if problem:
        return problem
    return _declared_problem((c, g, f) + tuple(x for x in (m,) + named if x is not None))


def _pair_problem(c, g, cname: str, gname: str) -> Optional[str]:
    """One canonical image + grid within the per-video limits."""
    if len(c.shape) != 3 or c.shape[2] != 3 or c.dtype.kind not in "fu":
        return f"{cname} must be [Hc, Wc, 3] float or uint8, the file declares {c.shape} {c.dtype}"
    if len(g.shape) != 4 or g.shape[3] != 2 or g.dtype.kind != "f":
        return f"{gname} must be [T, H, W, 2] float, the file declares {g.shape} {g.dtype}"
    if c.shape[0] * c.shape[1] > MAX_CANVAS_PIXELS:
        return f"canonical image {c.shape[1]}x{c.shape[0]} is over the limit of {MAX_CANVAS_PIXELS} pixels"
    if g.shape[0] > MAX_FILE_FRAMES:
        return f"{g.shape[0]} frames is over the limit of {MAX_FILE_FRAMES}"
    values = int(np.prod(g.shape, dtype=np.float64))
    if values > MAX_GRID_VALUES:
        return f"grid {g.shape} has {values} values, over the limit of {MAX_GRID_VALUES} ({MAX_GRID_VALUES * 4 >> 20} MiB)"
    return None


def _fps_problem(f) -> Optional[str]:
    if f.shape not in ((), (1,)) or f.dtype.kind not in "fiu":
        return f"fps must be one number, the file declares {f.shape} {f.dtype}"
    return None


def _metadata_problem(m, what: str = "metadata") -> Optional[str]:
    if m is not None and (m.nbytes > MAX_METADATA_BYTES or m.dtype.kind != "U"):
        return f"{what} must be a JSON string under {MAX_METADATA_BYTES} bytes, the file declares {m.shape} {m.dtype}"
    return None


def _names_problem(members: dict, shape: tuple) -> Optional[str]:
    """The ``padding`` and ``interpolation`` members (if any): short strings, ``shape`` () for a video, (n,) for n segments."""
    for key, (choices, _) in _NAMED.items():
        p = members.get(key)
        if p is None or (p.shape == shape and p.dtype.kind == "U" and p.dtype.itemsize <= 4 * _MAX_NAME_CHARS):
            continue
        what = f"{shape[0]} strings" if shape else "one string"
        return f"{key} must be {what} (one of {', '.join(choices)}), the file declares {p.shape} {p.dtype}"
    return None


def _declared_problem(members) -> Optional[str]:
    for mem in members:
        if mem.declared_bytes > mem.nbytes + _HEADER_SLACK:
            return f"member {mem.name} declares {mem.declared_bytes} bytes but its header describes {mem.nbytes} (corrupt)"
    return None


def check_segmented_npz(path: PathLike) -> dict:
    """Check a SegmentedVideo .npz against the limits without decompressing its arrays.

    Per segment the CanonicalVideo limits apply; the whole clip holds at most MAX_SEGMENTS segments,
    MAX_FILE_FRAMES frames counted with their overlaps and MAX_CLIP_GRID_VALUES grid values.
    Returns ``{name: NpzMember}``.
    """
    name = getattr(path, "name", path)
    members = _headers(path, max_members=2 * MAX_SEGMENTS + 8)
    problem = _segmented_problem(members)
    if problem:
        raise CanonicalVideoError(f"{name}: {problem}")
    return members


def _segmented_problem(members: dict) -> Optional[str]:
    missing = [k for k in _SEGMENTED_KEYS if k not in members]
    if missing:
        return f"not a segmented video file (missing {', '.join(missing)})"
    s = members["starts"]
    if len(s.shape) != 1 or s.dtype.kind not in "iu" or not 1 <= s.shape[0] <= MAX_SEGMENTS:
        return f"starts must list 1 to {MAX_SEGMENTS} integers, the file declares {s.shape} {s.dtype}"
    n = s.shape[0]
    keys = [f"seg{i}_{part}" for i in range(n) for part in ("canonical", "grid")]
    missing = [k for k in keys if k not in members]
    if missing:
        return f"not a segmented video file (missing {', '.join(missing[:4])})"
    cuts = members.get("cuts")
    if cuts is not None and (len(cuts.shape) != 1 or cuts.dtype.kind not in "iu" or cuts.shape[0] >= n):
        return f"cuts must list fewer integers than there are segments, the file declares {cuts.shape} {cuts.dtype}"
    frames = values = 0
    for i in range(n):
        c, g = members[f"seg{i}_canonical"], members[f"seg{i}_grid"]
        problem = _pair_problem(c, g, f"seg{i}_canonical", f"seg{i}_grid")
        if problem:
            return f"segment {i}: {problem}"
        frames += g.shape[0]
        values += int(np.prod(g.shape, dtype=np.float64))
    if frames > MAX_FILE_FRAMES:
        return f"{frames} frames in all segments is over the limit of {MAX_FILE_FRAMES}"
    if values > MAX_CLIP_GRID_VALUES:
        return f"the segments' grids hold {values} values, over the limit of {MAX_CLIP_GRID_VALUES} ({MAX_CLIP_GRID_VALUES * 4 >> 20} MiB)"
    problem = (_fps_problem(members["fps"]) or _metadata_problem(members.get("metadata"))
               or _metadata_problem(members.get("segment_metadata"), "segment_metadata")
               or _names_problem(members, (n,)))
    return problem or _declared_problem(members.values())


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------
@contextmanager
def _reading(name):
    """Turn every failure of reading a checked archive into one CanonicalVideoError line."""
    try:
        yield
    except CanonicalVideoError:
        raise
    except FileNotFoundError:
        raise CanonicalVideoError(f"{name}: file not found") from None
    except Exception as e:  # OSError, ValueError, BadZipFile, zlib.error and friends from a damaged archive
        raise CanonicalVideoError(f"{name}: corrupt or truncated CanonicalVideo file ({e.__class__.__name__}: {e})") from None


def _json(data, key: str, default):
    if key not in data.files:
        return default
    try:
        value = json.loads(str(data[key]))
    except json.JSONDecodeError:
        return default
    return value if isinstance(value, type(default)) else default


def read_canonical_arrays(path: PathLike) -> dict:
    """``{canonical, grid, fps, size, padding, interpolation, metadata}`` of a CanonicalVideo .npz (headers checked first)."""
    name = getattr(path, "name", path)
    check_npz(path)
    with _reading(name), np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("canonical", "grid", "fps") if k not in data.files]
        if missing:
            raise CanonicalVideoError(f"{name}: not a CanonicalVideo file (missing {', '.join(missing)})")
        return dict(canonical=data["canonical"], grid=data["grid"], fps=float(data["fps"]),
                    size=_read_size(data, name), padding=_read_names(data, name, "padding", 1)[0],
                    interpolation=_read_names(data, name, "interpolation", 1)[0], metadata=_json(data, "metadata", {}))


def read_segmented_arrays(path: PathLike) -> dict:
    """``{segments: [(start, canonical, grid, metadata, padding, interpolation)], cuts, fps, size, metadata}`` of a
    SegmentedVideo .npz."""
    name = getattr(path, "name", path)
    check_segmented_npz(path)
    with _reading(name), np.load(path, allow_pickle=False) as data:
        starts = [int(s) for s in data["starts"]]
        seg_meta = _json(data, "segment_metadata", [])
        paddings = _read_names(data, name, "padding", len(starts))
        interpolations = _read_names(data, name, "interpolation", len(starts))
        segments = [
            (starts[i], data[f"seg{i}_canonical"], data[f"seg{i}_grid"],
             seg_meta[i] if i < len(seg_meta) and isinstance(seg_meta[i], dict) else {}, paddings[i], interpolations[i])
            for i in range(len(starts))
        ]
        cuts = [int(c) for c in data["cuts"]] if "cuts" in data.files else []
        return dict(segments=segments, cuts=cuts, fps=float(data["fps"]), size=_read_size(data, name),
                    metadata=_json(data, "metadata", {}))


def _read_names(data, name, key: str, n: int) -> list:
    """The ``n`` paddings or interpolations (``key``) of a saved file (shape checked with the headers);
    the default ("black", "bilinear") for files written without the member."""
    choices, missing = _NAMED[key]
    if key not in data.files:
        return [missing] * n
    values = [str(v) for v in np.asarray(data[key]).reshape(-1)]
    bad = [v for v in values if v not in choices]
    if bad:
        raise CanonicalVideoError(f"{name}: unknown {key} {bad[0]!r} (a video's {key} is one of {', '.join(choices)})")
    return values


def _read_size(data, name) -> Optional[tuple]:
    """``size`` of a saved file (files written before it existed have none: the grid's size)."""
    if "size" not in data.files:
        return None
    raw = data["size"]
    if raw.shape != (2,) or not np.issubdtype(raw.dtype, np.integer):
        raise CanonicalVideoError(f"{name}: corrupt CanonicalVideo file (size must be two integers)")
    return int(raw[0]), int(raw[1])

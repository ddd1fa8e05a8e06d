"""What the studio takes in an upload: the size cap, and the memory an opened .npz's arrays may take.

The cap is set once where the studio starts (``python app.py --max-upload-mb N``, else
``$GENDEF_MAX_UPLOAD_MB``, else 50 MB: a Space, which runs ``python app.py``, keeps 50) and held
by the studio's one ``app.services.Services``; Gradio's ``max_file_size`` (which counts "mb" as
2**20 bytes) and the studio's own check read the same number. Whatever the cap, an ``.npz`` is
opened only when its members, as the archive's headers declare them uncompressed, fit
``npz_budget``: checked from the headers before any array is allocated.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional

from .errors import require, whole_number

DEFAULT_MAX_UPLOAD_MB = 50
# A cap above 4 GiB is refused at launch: the longest clip the studio decomposes (10 min) or
# opens fits well under it, and Gradio keeps each upload whole on disk.
MAX_UPLOAD_MB_CEILING = 4096
UPLOAD_ENV = "GENDEF_MAX_UPLOAD_MB"
# The arrays of an opened .npz, all members together, uncompressed: a whole clip's chain of
# segments keeps its grids within 1.2 GiB (app.sources.MAX_CHAIN_GRID_BYTES); the rest is
# room for its canonical images. A 60 s chain at working size 256 (0.3 MB of grid a frame at
# 256x144, overlaps included) comes to about 0.6 GiB.
MAX_OPEN_NPZ_BYTES = 3 << 29  # 1.5 GiB


@dataclass(frozen=True)
class Uploads:
    """The studio's upload limits: ``max_mb`` MB (2**20 bytes) a file, ``npz_budget`` bytes of arrays an .npz may declare."""

    max_mb: int = DEFAULT_MAX_UPLOAD_MB
    npz_budget: int = MAX_OPEN_NPZ_BYTES

    def __post_init__(self):
        if isinstance(self.max_mb, bool) or not isinstance(self.max_mb, int) or not 1 <= self.max_mb <= MAX_UPLOAD_MB_CEILING:
            raise ValueError(f"max_mb must be an int from 1 to {MAX_UPLOAD_MB_CEILING}, got {self.max_mb!r}")
        if isinstance(self.npz_budget, bool) or not isinstance(self.npz_budget, int) or self.npz_budget < 1:
            raise ValueError(f"npz_budget must be a positive int, got {self.npz_budget!r}")

    @classmethod
    def at_launch(cls, flag: Optional[str], environ: Mapping[str, str]) -> "Uploads":
        """The cap ``python app.py`` was started with: ``--max-upload-mb`` (``flag``), else
        ``$GENDEF_MAX_UPLOAD_MB``, else the default; a value that is not a whole number of MB from
        1 to MAX_UPLOAD_MB_CEILING is a one-line StudioInputError naming where it came from."""
        if flag is not None:
            return cls(whole_number(flag, "--max-upload-mb", 1, MAX_UPLOAD_MB_CEILING))
        if environ.get(UPLOAD_ENV, "").strip():
            return cls(whole_number(environ[UPLOAD_ENV], f"${UPLOAD_ENV}", 1, MAX_UPLOAD_MB_CEILING))
        return cls()

    @property
    def gradio_max_file_size(self) -> str:
        """The same cap as Gradio's ``launch(max_file_size=...)`` takes it."""
        return f"{self.max_mb}mb"

    def file(self, file) -> Path:
        """The uploaded file's path, refused in one line when it is missing or over the cap."""
        require(file is not None, "Choose a file first.")
        path = Path(getattr(file, "name", file))
        require(path.is_file(), f"{path.name}: upload not found, please upload it again.")
        size_mb = path.stat().st_size / 2**20
        require(size_mb <= self.max_mb, f"{path.name} is {size_mb:.1f} MB; the limit is {self.max_mb} MB "
                f"(a studio you run yourself takes more: python app.py --max-upload-mb N).")
        return path

    def check_npz_memory(self, name: str, members: Iterable) -> int:
        """The bytes an .npz's arrays take once loaded, from its headers (``gendef.video.npzfile.NpzMember``:
        each member counted at the larger of its zip entry's declared size and its .npy header's),
        refused in one line over ``npz_budget``; nothing is decompressed or allocated here."""
        total = sum(max(int(m.declared_bytes), m.nbytes) for m in members)
        require(total <= self.npz_budget, f"{name} declares {_mb(total)} MB of arrays; the studio opens at most {_mb(self.npz_budget)} MB.")
        return total


def _mb(nbytes: int) -> str:
    """Bytes as MB (2**20) for a message: one decimal under 10 MB, whole MB above."""
    return f"{nbytes / 2**20:.1f}" if nbytes < 10 * 2**20 else f"{nbytes / 2**20:.0f}"

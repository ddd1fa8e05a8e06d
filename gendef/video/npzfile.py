"""Look inside an ``.npz`` without decompressing it: member shapes, dtypes and declared sizes.

``np.load`` trusts the array headers it reads and allocates whatever they declare, so a 1 MB
archive can ask for gigabytes. :func:`read_npz_headers` reads only each member's zip entry and
its ``.npy`` header (a few hundred bytes), so callers can check the sizes against their limits
before anything is allocated.
"""
from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from typing import Dict, Union

import numpy as np

from ..errors import NpzHeaderError

__all__ = ["NpzMember", "read_npz_headers"]

_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}



@dataclass(frozen=True)
class NpzMember:
    """One array of an .npz as its header declares it."""

    name: str
    shape: tuple
    dtype: np.dtype
    stored_bytes: int  # compressed size in the archive
    declared_bytes: int  # uncompressed size the zip entry declares

    @property
    def nbytes(self) -> int:
        """Bytes the array needs once loaded (from the header's shape and dtype)."""
        return int(np.prod(self.shape, dtype=np.float64)) * int(self.dtype.itemsize)


def read_npz_headers(source: Union[str, os.PathLike, io.IOBase], max_members: int = 64) -> Dict[str, NpzMember]:
    """``{array name: NpzMember}`` for every ``.npy`` member, decompressing only the headers.

    Raises :class:`NpzHeaderError` for a file that is not a zip, has too many members, or has a
    header numpy cannot parse. A file object is left at position 0.
    """
    try:
        with zipfile.ZipFile(source) as zf:
            infos = [i for i in zf.infolist() if i.filename.endswith(".npy")]
            if len(zf.infolist()) > max_members:
                raise NpzHeaderError(f"archive has {len(zf.infolist())} members (at most {max_members} allowed)")
            return {i.filename[:-4]: _member(zf, i) for i in infos}
    except NpzHeaderError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise NpzHeaderError(f"not a readable .npz archive ({e.__class__.__name__}: {e})") from None
    except Exception as e:  # zlib.error and friends from a damaged entry
        raise NpzHeaderError(f"not a readable .npz archive ({e.__class__.__name__}: {e})") from None
    finally:
        if hasattr(source, "seek"):
            source.seek(0)


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> NpzMember:
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        reader = _HEADER_READERS.get(version)
        if reader is None:
            raise NpzHeaderError(f"{info.filename}: unsupported .npy format version {version}")
        shape, _fortran, dtype = reader(fh)
    if any(int(d) < 0 for d in shape):
        raise NpzHeaderError(f"{info.filename}: negative dimension in shape {shape}")
    return NpzMember(info.filename[:-4], tuple(int(d) for d in shape), np.dtype(dtype), info.compress_size, info.file_size)

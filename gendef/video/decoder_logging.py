"""The decoders' own logging, set while a clip is opened or read and put back after.

Three process-wide settings decide what the decoders print:

* OpenCV's log level (its own ``[ WARN ] ... grabFrame`` lines), read at every message;
* ``OPENCV_FFMPEG_LOGLEVEL``, the level OpenCV gives libav: OpenCV reads it once, when its
  FFmpeg backend opens the first clip of the process, so whatever is set then stays in force;
* the ``imageio_ffmpeg`` logger (a warning on every rotated clip).

Importing the library changes none of them. :func:`decoder_logging` sets them for the duration
of a block and restores the caller's values after, also on an error. Blocks that overlap (two
studio jobs reading at once, or a probe inside a read) share one hold: the first in saves and
sets, the last out restores, so no interleaving leaves a setting changed. Quiet: OpenCV silent,
libav AV_LOG_QUIET (a value the user put in the environment is kept), imageio-ffmpeg errors
only; verbose: warnings from all three.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Iterator

__all__ = ["decoder_logging"]

_AV_LEVEL = "OPENCV_FFMPEG_LOGLEVEL"
_AV_QUIET, _AV_WARNING = "-8", "24"
_IMAGEIO = "imageio_ffmpeg"


def _current() -> tuple:
    import cv2

    return os.environ.get(_AV_LEVEL), cv2.utils.logging.getLogLevel(), logging.getLogger(_IMAGEIO).level


def _apply(verbose: bool, saved_av) -> None:
    import cv2

    if verbose:
        os.environ[_AV_LEVEL] = _AV_WARNING
    elif saved_av is None:
        os.environ[_AV_LEVEL] = _AV_QUIET
    levels = cv2.utils.logging
    levels.setLogLevel(levels.LOG_LEVEL_WARNING if verbose else levels.LOG_LEVEL_SILENT)
    if not verbose:
        logging.getLogger(_IMAGEIO).setLevel(logging.ERROR)


def _restore(saved: tuple) -> None:
    import cv2

    av, cv_level, imageio_level = saved
    if av is None:
        os.environ.pop(_AV_LEVEL, None)
    else:
        os.environ[_AV_LEVEL] = av
    cv2.utils.logging.setLogLevel(cv_level)
    logging.getLogger(_IMAGEIO).setLevel(imageio_level)


class _Hold:
    """The settings held while at least one block runs (one per process: what it guards is process-wide)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: tuple = ()

    @contextlib.contextmanager
    def scope(self, verbose: bool) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._saved = _current()
                _apply(verbose, self._saved[0])
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    _restore(self._saved)


_HOLD = _Hold()


def decoder_logging(verbose: bool = False):
    """Context: the decoders quiet (or, ``verbose``, printing warnings) inside the block only."""
    return _HOLD.scope(bool(verbose))

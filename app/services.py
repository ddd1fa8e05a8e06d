"""What the studio loads once and every session shares: models, the stylizer, the segmenter, the thread budget, the upload limits.

One ``Services`` object is made where the studio starts (``app.py`` / ``app.ui.build_demo``) and
handed to every callback that needs it (through ``app.studio.Studio``). A callback called without
a studio (a script, a test) runs on a fresh Services of its own: nothing is kept at module level,
so a caller that wants a model loaded once makes one Services and passes it. Sampling and the
editors are read-only on the networks, so sessions share one instance of each; the lock only
serialises the (slow) first load of a model.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Optional

from gendef.editing.slot import Slot

from . import checkpoints
from .uploads import Uploads


class Services:
    """The loaded models, the thread budget and the upload limits of one studio process.

    ``threads``: torch threads for the whole process, set once by :meth:`start` (None leaves
    torch's default); jobs never change it. ``served``: the studio is reachable beyond loopback
    (``--host``/``--share``), so the Checkpoint box takes only safe names (a Space always is).
    ``uploads``: the upload cap and the .npz memory budget (``app.uploads.Uploads``; None: the
    defaults, 50 MB), which Gradio's ``max_file_size`` and the studio's own checks share.
    """

    def __init__(self, threads: Optional[int] = None, served: bool = False, uploads: Optional[Uploads] = None):
        if threads is not None and int(threads) < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")
        self.threads = None if threads is None else int(threads)
        self.served = bool(served)
        self.uploads = Uploads() if uploads is None else uploads
        self._lock = threading.Lock()
        self._models: dict = {}  # checkpoint as typed -> LoadedModel
        self._preloaded: dict = {}  # ("stylizer", control, fast) / ("segmenter",) -> instance built by a test or a Space
        self._stylizer = Slot()  # the loaded ControlNet pipeline (one at a time: GBs each)
        self._segmenter = Slot()  # the loaded SAM

    def start(self) -> None:
        """Apply the thread budget (once, at start-up, before any job runs)."""
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)

    @property
    def public(self) -> bool:
        return self.served or bool(os.environ.get("SPACE_ID"))

    # ----------------------------------------------------------------------------- models
    def model(self, checkpoint: Optional[str] = None, progress: Optional[Callable] = None) -> checkpoints.LoadedModel:
        """Load (once) and return the model for ``checkpoint`` (see ``app.checkpoints.load_model``)."""
        checkpoint = (checkpoint or "").strip() or checkpoints.default_checkpoint()
        with self._lock:
            if checkpoint not in self._models:
                self._models[checkpoint] = checkpoints.load_model(checkpoint, self.public, progress)
            return self._models[checkpoint]

    def set_model(self, loaded: checkpoints.LoadedModel) -> None:
        """Install an already-built model under ``loaded.checkpoint`` (benchmarks, a Space that preloads one)."""
        with self._lock:
            self._models[loaded.checkpoint] = loaded

    # ----------------------------------------------------------------------------- editors
    def set_stylizer(self, stylizer, control: str = "canny", fast: bool = True) -> None:
        """Install an already-built Stylizer (tests, or a Space that preloads one)."""
        self._preloaded[("stylizer", control, bool(fast))] = stylizer

    def has_stylizer(self, control: str, fast: bool) -> bool:
        return ("stylizer", control, bool(fast)) in self._preloaded

    def stylizer(self, control: str, fast: bool, progress: Optional[Callable] = None):
        """The preloaded Stylizer for (control, fast), else the loaded one (downloads on first use unless offline)."""
        if self.has_stylizer(control, fast):
            return self._preloaded[("stylizer", control, bool(fast))]
        from gendef.editing import stylize

        return stylize.get_stylizer(control=control, fast=fast, progress=progress, cache=self._stylizer)

    def set_segmenter(self, segmenter) -> None:
        """Install an already-built Segmenter (tests, or a preloaded Space)."""
        self._preloaded[("segmenter",)] = segmenter

    def has_segmenter(self) -> bool:
        return ("segmenter",) in self._preloaded

    def segmenter(self):
        """The preloaded Segmenter, else SAM loaded once (SegmentUnavailable when it cannot be)."""
        if self.has_segmenter():
            return self._preloaded[("segmenter",)]
        from gendef.editing import segment

        return segment.get_segmenter(cache=self._segmenter)

    def clear(self, what: str = "all") -> None:
        """Forget loaded and preloaded models: "models", "stylizers", "segmenters" or "all"."""
        kinds = ("models", "stylizers", "segmenters") if what == "all" else (what,)
        with self._lock:
            if "models" in kinds:
                self._models.clear()
            if "stylizers" in kinds:
                self._stylizer.clear()
                self._preloaded = {k: v for k, v in self._preloaded.items() if k[0] != "stylizer"}
            if "segmenters" in kinds:
                self._segmenter.clear()
                self._preloaded.pop(("segmenter",), None)


"""Per-session studio state, kept in a ``gr.State`` so one user never sees another's work."""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from gendef.video.canonical_video import CanonicalVideo

# Per-session scratch folders live under one root so a crashed server leaves them in one place.
SCRATCH_ROOT = Path(tempfile.gettempdir()) / "gendef-studio"


@dataclass
class Result:
    """The last edit: what the result views show and what the export buttons write."""

    kind: str
    frames: np.ndarray
    canonical: Optional[np.ndarray] = None
    extra: dict = field(default_factory=dict)


PREVIEW_SIDE = 512  # long side of the frames the studio shows; exports are at the video's output size


def preview_of(video: CanonicalVideo) -> CanonicalVideo:
    """The same video rendered at most PREVIEW_SIDE pixels long (shares canonical and grid)."""
    h, w = video.frame_size
    if max(h, w) <= PREVIEW_SIDE:
        return video
    s = PREVIEW_SIDE / max(h, w)
    return video.with_size((max(2, int(round(h * s))), max(2, int(round(w * s)))))


@dataclass
class StudioState:
    video: Optional[CanonicalVideo] = None  # at output size: edits and exports
    preview: Optional[CanonicalVideo] = None  # the same, display-sized: what the views show
    source: str = ""
    checkpoint: str = ""
    seed: int = 0
    motion_seed: Optional[int] = None
    scale: float = 1  # display pixels per canonical pixel (views.display_scale: int upscale or float downscale)
    result: Optional[Result] = None
    seg_positive: list = field(default_factory=list)
    seg_negative: list = field(default_factory=list)
    seg_box: list = field(default_factory=list)
    seg_box_frame: list = field(default_factory=list)  # box corners clicked on a frame: (frame, x, y)
    mask: Optional[np.ndarray] = None
    track_points: list = field(default_factory=list)
    tracks: Optional[tuple] = None
    counter: int = 0
    workdir: str = ""

    def new_path(self, name: str) -> Path:
        """A fresh file name in this session's folder (fresh so browsers never show a stale cached file)."""
        if not self.workdir or not Path(self.workdir).is_dir():
            SCRATCH_ROOT.mkdir(parents=True, exist_ok=True)
            self.workdir = tempfile.mkdtemp(prefix="session-", dir=SCRATCH_ROOT)
            _CREATED.add(self.workdir)
        self.counter += 1
        stem, dot, ext = name.rpartition(".")
        return Path(self.workdir) / f"{stem}-{self.counter:04d}{dot}{ext}"

    def set_video(self, video: CanonicalVideo, source: str) -> None:
        """A new video invalidates every edit, mask and track made on the previous one."""
        self.video = video
        self.preview = preview_of(video)
        self.source = source
        self.clear_edits()

    def clear_segmentation(self) -> None:
        self.seg_positive, self.seg_negative, self.seg_box, self.seg_box_frame = [], [], [], []
        self.mask = None

    def clear_edits(self) -> None:
        self.result = None
        self.clear_segmentation()
        self.track_points = []
        self.tracks = None


def cleanup(state: Optional[StudioState]) -> None:
    """gr.State delete callback: drop the session's files when the session expires."""
    if isinstance(state, StudioState) and state.workdir:
        shutil.rmtree(state.workdir, ignore_errors=True)
        _CREATED.discard(state.workdir)


# session folders made by this server process: removed when it ends (normal exit, Ctrl-C, SIGTERM)
_CREATED: set = set()


def remove_session_folders() -> None:
    for d in list(_CREATED):
        shutil.rmtree(d, ignore_errors=True)
        _CREATED.discard(d)


def install_exit_cleanup() -> None:
    """Session folders outlive no server: atexit, and SIGTERM turned into a normal exit."""
    import atexit
    import signal
    import sys

    atexit.register(remove_session_folders)
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

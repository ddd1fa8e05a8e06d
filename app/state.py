"""Per-session studio state, kept in a ``gr.State`` so one user never sees another's work."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional, Union

import numpy as np

from gendef.video.canonical_video import CanonicalVideo
from gendef.video.segments import SegmentedVideo

Video = Union[CanonicalVideo, SegmentedVideo]

# Per-session scratch folders live under one root so a crashed server leaves them in one place.
SCRATCH_ROOT = Path(tempfile.gettempdir()) / "gendef-studio"


@dataclass
class Result:
    """The last edit: what the result views show and what the export buttons write."""

    kind: str
    frames: np.ndarray
    canonical: Optional[np.ndarray] = None
    extra: dict = field(default_factory=dict)
    edits: Optional[list] = None  # a chain of segments: the edit carried to every segment (None where unseen)


SHORT_CLIP_FRAMES = 128  # the most frames the studio handled before whole clips: one canonical image, float views
PREVIEW_SIDE = 512  # long side of the frames the studio shows; exports are at the video's output size


def preview_of(video: Video) -> Video:
    """The same video rendered at most PREVIEW_SIDE pixels long (shares canonical and grid)."""
    h, w = video.frame_size
    if max(h, w) <= PREVIEW_SIDE:
        return video
    s = PREVIEW_SIDE / max(h, w)
    return video.with_size((max(2, int(round(h * s))), max(2, int(round(w * s)))))


class TabPart:
    """A tab's share of the session (its clicks, mask, tracks...): a dataclass in the tab's module.

    A new video starts every part afresh, so a part's defaults are its reset. Its fields read
    through the state too (``state.mask``); field names are unique across parts. The part classes
    are found through Python's own record of subclasses, so no list of them is kept here.
    """

    @classmethod
    def kinds(cls) -> list:
        """Every part class defined so far (subclasses of subclasses included), in definition order."""
        found = []
        for sub in cls.__subclasses__():
            found += [sub] + sub.kinds()
        return found


@dataclass
class StudioState:
    video: Optional[Video] = None  # at output size: edits and exports (a SegmentedVideo only with 2+ segments)
    preview: Optional[Video] = None  # the same, display-sized: what the views show
    segment: int = 0  # a chain of segments: the segment whose canonical image the tabs edit
    source: str = ""
    scale: float = 1  # display pixels per canonical pixel (views.display_scale: int upscale or float downscale)
    result: Optional[Result] = None
    parts: dict = field(default_factory=dict)  # TabPart class -> that tab's part
    counter: int = 0
    workdir: str = ""

    def part(self, kind):
        """This session's part of one tab (``kind``: its TabPart class), made fresh on first use."""
        if kind not in self.parts:
            self.parts[kind] = kind()
        return self.parts[kind]

    def __getattr__(self, name):
        """A tab's field read through the state (state.mask, state.track_points)."""
        if name.startswith("_") or "parts" not in self.__dict__:
            raise AttributeError(name)
        for kind in TabPart.kinds():
            if name in {f.name for f in fields(kind)}:
                return getattr(self.part(kind), name)
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")

    def new_path(self, name: str) -> Path:
        """A fresh file name in this session's folder (fresh so browsers never show a stale cached file)."""
        if not self.workdir or not Path(self.workdir).is_dir():
            SCRATCH_ROOT.mkdir(parents=True, exist_ok=True)
            self.workdir = tempfile.mkdtemp(prefix=_session_prefix(), dir=SCRATCH_ROOT)
        self.counter += 1
        stem, dot, ext = name.rpartition(".")
        return Path(self.workdir) / f"{stem}-{self.counter:04d}{dot}{ext}"

    @property
    def chain(self) -> bool:
        """Whether the loaded video is a chain of segments (each with its own canonical image)."""
        return isinstance(self.video, SegmentedVideo)

    @property
    def canvas(self) -> CanonicalVideo:
        """The CanonicalVideo whose canonical image the tabs edit: the video, or a chain's picked segment."""
        return self.video.segments[self.segment] if self.chain else self.video

    @property
    def preview_canvas(self) -> CanonicalVideo:
        """:attr:`canvas` at display size."""
        return self.preview.segments[self.segment] if self.chain else self.preview

    def on_canvas(self) -> dict:
        """Keywords telling a chain's render/track/propagate_mask which segment an edit lives on ({} for one canonical)."""
        return {"segment": self.segment} if self.chain else {}

    def set_video(self, video: Video, source: str) -> None:
        """A new video invalidates every edit, mask and track made on the previous one.

        A chain of one segment is kept as its CanonicalVideo, exactly as a CanonicalVideo file.
        """
        if isinstance(video, SegmentedVideo) and video.num_segments == 1:
            video = video.as_canonical()
        self.video = video
        self.preview = preview_of(video)
        self.source = source
        self.segment = 0
        self.result = None
        self.parts = {}

    def pick_segment(self, k: int) -> None:
        """Edit segment ``k``'s canonical image: clicks, masks, tracks and the result of another segment go."""
        self.segment = int(k)
        self.result = None
        self.parts = {}


def _session_prefix() -> str:
    """Session folders carry the server's process id, so the server removes exactly its own at exit."""
    return f"session-{os.getpid()}-"


def cleanup(state: Optional[StudioState]) -> None:
    """gr.State delete callback: drop the session's files when the session expires."""
    if isinstance(state, StudioState) and state.workdir:
        shutil.rmtree(state.workdir, ignore_errors=True)


def remove_session_folders() -> None:
    """Remove the session folders this server process made (normal exit, Ctrl-C, SIGTERM)."""
    for d in SCRATCH_ROOT.glob(_session_prefix() + "*"):
        shutil.rmtree(d, ignore_errors=True)


def install_exit_cleanup() -> None:
    """Session folders outlive no server: atexit, and SIGTERM turned into a normal exit."""
    import atexit
    import signal
    import sys

    atexit.register(remove_session_folders)
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

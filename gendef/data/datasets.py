"""Video datasets for the two training stages.

Accepted layouts (the same ones StyleGAN-V uses, plus raw video files):

* a folder with one sub-folder of frames per video (``root/video_a/000000.png``);
* a ``.zip`` with the same layout (what ``python -m gendef.data.prepare`` writes);
* a folder of video files (mp4, avi, webm, mov, mkv, gif).

Stage 1 (:class:`FrameDataset`) yields single frames; stage 2 (:class:`ClipDataset`)
yields a few frames per video sampled sparsely with their times, as in StyleGAN-V.
Media that cannot be decoded is skipped with a warning and counted instead of
killing a multi-day run; a dataset that is empty (or has no video long enough)
is an error at start-up, where it is cheap to fix.
"""
from __future__ import annotations

import io
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch

from .times import TIME_SAMPLINGS, sample_times
from ..video.io import IMAGE_EXTS, VIDEO_EXTS, read_image
from ..video.reader import probe, read_clip, read_video
from ..errors import VideoIOError
from ..errors import DatasetError

__all__ = [
    "VideoSource",
    "FrameDataset",
    "ClipDataset",
    "scan_videos",
    "resize_center_crop",
    "resize_squash",
    "fit_frame",
    "chunk_videos",
    "RESIZE_MODES",
    "FRAME_DRAWS",
    "sample_sparse_times",
]

log = logging.getLogger("gendef.data")
_SKIP_SLOTS = 65  # main process + up to 64 loader workers (more wrap around and share slots)


def resize_center_crop(img: np.ndarray, resolution: int) -> np.ndarray:
    """Scale the short side to ``resolution`` then crop the centre square (uint8 in, uint8 out)."""
    import cv2

    h, w = img.shape[:2]
    if (h, w) != (resolution, resolution):
        s = resolution / min(h, w)
        nh, nw = max(resolution, round(h * s)), max(resolution, round(w * s))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, (nw, nh), interpolation=interp)
        y0, x0 = (nh - resolution) // 2, (nw - resolution) // 2
        img = img[y0 : y0 + resolution, x0 : x0 + resolution]
    return np.ascontiguousarray(img[..., :3])


def resize_squash(img: np.ndarray, resolution: int) -> np.ndarray:
    """Resize to ``resolution`` x ``resolution`` ignoring the aspect ratio (bicubic), as the
    official GenDeF/StyleGAN-V loader does for non-square frames (uint8 in, uint8 out)."""
    import cv2

    if img.shape[:2] != (resolution, resolution):
        img = cv2.resize(img, (resolution, resolution), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(img[..., :3])


RESIZE_MODES = {"crop": resize_center_crop, "squash": resize_squash}
FRAME_DRAWS = ("all", "per_video")


def fit_frame(img: np.ndarray, resolution: int, mode: str = "crop") -> np.ndarray:
    """A frame at ``resolution``: ``crop`` = short side + centre crop, ``squash`` = whole frame squashed."""
    return RESIZE_MODES[mode](img[..., :3], resolution)


def sample_sparse_times(
    num_frames: int, video_len: int, max_dist: int, rng: np.random.Generator
) -> np.ndarray:
    """StyleGAN-V's sparse sampling: first frame at 0, last at a random distance d < max_dist,
    the others at distinct random positions in between; returns sorted offsets (ints)."""
    span = min(max_dist, video_len)
    if span < num_frames:
        raise DatasetError(f"need {num_frames} frames but the video has {video_len}")
    d = int(rng.integers(num_frames - 1, span))
    inner = rng.choice(np.arange(1, d), size=num_frames - 2, replace=False) if num_frames > 2 else []
    return np.sort(np.concatenate([[0], np.asarray(inner, dtype=np.int64), [d]])).astype(np.int64)


@dataclass
class VideoSource:
    """One video: a list of frame names (folder/zip) or a video file with its frame count."""

    name: str
    kind: str  # "dir", "zip" or "file"
    path: str
    frames: Optional[List[str]]
    length: int


def _frame_names(names: Sequence[str]) -> List[str]:
    return sorted(n for n in names if Path(n).suffix.lower() in IMAGE_EXTS and not Path(n).name.startswith("."))


def _video_file_length(path: Path) -> int:
    """Frame count of a video file (the one reader's true count), verified by decoding its first frame."""
    info = probe(path)
    read_video(path, num_frames=1)
    return info.frames


def scan_videos(root: Union[str, os.PathLike], min_frames: int = 1):
    """Find the videos under ``root``; returns (sources, skipped) where skipped lists
    'name: reason' for media that could not be opened or is too short."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"dataset {root}: no such file or folder")
    sources: List[VideoSource] = []
    skipped: List[str] = []
    if root.is_file():
        if root.suffix.lower() != ".zip":
            raise DatasetError(f"dataset {root}: expected a folder or a .zip, got a {root.suffix or 'plain'} file")
        try:
            with zipfile.ZipFile(root) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise DatasetError(f"dataset {root}: not a readable zip ({e})") from None
        groups = {}
        for n in _frame_names(names):
            groups.setdefault(str(Path(n).parent), []).append(n)
        for vid, frames in sorted(groups.items()):
            sources.append(VideoSource(vid, "zip", str(root), frames, len(frames)))
    else:
        for child in sorted(root.iterdir()):
            if child.name.startswith("."):
                continue
            if child.is_dir():
                frames = _frame_names(os.listdir(child))
                if frames:
                    sources.append(VideoSource(child.name, "dir", str(child), frames, len(frames)))
                else:
                    skipped.append(f"{child.name}: folder has no frames")
            elif child.suffix.lower() in VIDEO_EXTS:
                try:
                    n = _video_file_length(child)
                except VideoIOError as e:
                    skipped.append(f"{child.name}: {e}")
                    continue
                sources.append(VideoSource(child.name, "file", str(child), None, n))
    kept = []
    for s in sources:
        if s.length < min_frames:
            skipped.append(f"{s.name}: {s.length} frame(s), need at least {min_frames}")
        else:
            kept.append(s)
    return kept, skipped


def chunk_videos(videos: Sequence["VideoSource"], size: int, min_len: int = 128) -> List["VideoSource"]:
    """Split every video into consecutive ``size``-frame chunks and drop chunks shorter than
    ``min_len`` (official GenDeF ``dataset.chunk`` for TaiChi-HD and YouTube Driving); each chunk
    is then a video of its own. ``size`` 0 returns the videos unchanged."""
    if size <= 0:
        return list(videos)
    out = []
    for v in videos:
        if v.frames is None:
            raise DatasetError(f"{v.name}: chunking needs frame folders or a .zip (python -m gendef.data.prepare), not video files")
        for i, s in enumerate(range(0, v.length, size)):
            part = v.frames[s : s + size]
            if len(part) >= min_len:
                out.append(VideoSource(f"{v.name}#{i}", v.kind, v.path, part, len(part)))
    return out


class _VideoDatasetBase(torch.utils.data.Dataset):
    """Shared scanning, decoding, skip accounting and zip handles for both stages."""

    min_frames = 1

    def __init__(self, path, resolution: int, hflip: bool = False, seed: int = 0, max_retries: int = 20,
                 chunk: int = 0, chunk_min: int = 128, resize: str = "crop"):
        if int(resolution) < 1:
            raise DatasetError("resolution must be a positive integer")
        if resize not in RESIZE_MODES:
            raise DatasetError(f"resize must be one of {sorted(RESIZE_MODES)}, got {resize!r}")
        self.resize = resize
        self.path = str(path)
        self.resolution = int(resolution)
        self.hflip = bool(hflip)
        self.seed = int(seed)
        self.max_retries = int(max_retries)
        self.videos, self.skipped = scan_videos(path, self.min_frames)
        self.videos = chunk_videos(self.videos, int(chunk), max(int(chunk_min), self.min_frames))
        for s in self.skipped:
            log.warning("skipping %s", s)
        if not self.videos:
            what = "no readable videos" if not self.skipped else f"no usable videos ({len(self.skipped)} skipped)"
            need = f" with at least {self.min_frames} frames" if self.min_frames > 1 else ""
            raise DatasetError(
                f"dataset {path}: {what}{need}; expected sub-folders of frames, a .zip of them, or video files"
            )
        # one slot per DataLoader worker (slot 0: the main process) in shared memory, so skips in
        # worker processes reach the trainer's counter; no two processes write the same slot
        self._runtime_skips = torch.zeros(_SKIP_SLOTS, dtype=torch.int64).share_memory_()
        self._zip = None
        self._zip_pid = None
        self._rng = None
        self._rng_pid = None
        self._check_some_media_decodes()

    @property
    def num_skipped_at_runtime(self) -> int:
        """Media skipped while reading items, summed over the main process and all loader workers."""
        return int(self._runtime_skips.sum())

    @property
    def num_skipped(self) -> int:
        return len(self.skipped) + self.num_skipped_at_runtime

    def _count_skip(self) -> None:
        info = torch.utils.data.get_worker_info()
        slot = 0 if info is None else 1 + info.id % (_SKIP_SLOTS - 1)
        self._runtime_skips[slot] += 1

    def _check_some_media_decodes(self, probes: int = 8) -> None:
        """Decode one frame of up to ``probes`` videos (spread over the list): a dataset in which
        none decodes stops here, at start, with one line -- not mid-run."""
        picks = np.unique(np.linspace(0, len(self.videos) - 1, min(probes, len(self.videos))).astype(int))
        errors = []
        for i in picks:
            try:
                self._read_frame(self.videos[i], 0)
                return
            except VideoIOError as e:
                errors.append(str(e))
        raise DatasetError(
            f"dataset {self.path}: none of {len(picks)} sampled videos could be decoded (first: {errors[0]}); is the data corrupt?"
        )

    def _rng_for_process(self) -> np.random.Generator:
        # Re-seeded per process/worker so DataLoader workers do not repeat each other.
        pid = os.getpid()
        if self._rng is None or self._rng_pid != pid:
            info = torch.utils.data.get_worker_info()
            wid = info.id if info is not None else 0
            self._rng = np.random.default_rng([self.seed, wid, int(torch.initial_seed() % (2**31))])
            self._rng_pid = pid
        return self._rng

    def _zipfile(self) -> zipfile.ZipFile:
        pid = os.getpid()
        if self._zip is None or self._zip_pid != pid:
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = pid
        return self._zip

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_zip"] = None
        state["_rng"] = None
        return state

    def _read_frame(self, v: VideoSource, idx: int) -> np.ndarray:
        if v.kind == "dir":
            img = read_image(os.path.join(v.path, v.frames[idx]))
        elif v.kind == "zip":
            from PIL import Image

            try:
                data = self._zipfile().read(v.frames[idx])
                with Image.open(io.BytesIO(data)) as im:
                    img = np.array(im.convert("RGB"))  # writable (asarray: a read-only view)
            except Exception as e:
                raise VideoIOError(f"{v.frames[idx]}: not a readable image ({e})") from None
        else:
            img = read_clip(v.path, idx, 1)[0]
        return fit_frame(img, self.resolution, self.resize)

    def _read_frames(self, v: VideoSource, offsets: np.ndarray, start: int) -> np.ndarray:
        if v.kind == "file":
            clip = read_clip(v.path, start, int(offsets[-1]) + 1)
            if len(clip) <= offsets[-1]:
                raise VideoIOError(f"{v.path}: ended after {start + len(clip)} frames")
            return np.stack([fit_frame(clip[o], self.resolution, self.resize) for o in offsets])
        return np.stack([self._read_frame(v, start + int(o)) for o in offsets])

    def _to_tensor(self, frames: np.ndarray, flip: bool) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(127.5).sub_(1.0)
        t = t.movedim(-1, -3)
        return t.flip(-1) if flip else t

    def _split_key(self, key):
        """Items are indexed by ``i`` or ``(i, sample_seed)``; the seed makes every random choice of
        the item reproducible (the trainer derives it from the step, so resumed runs repeat exactly)."""
        if isinstance(key, (tuple, list)):
            return int(key[0]) % len(self), np.random.default_rng(int(key[1]))
        return int(key) % len(self), self._rng_for_process()

    def _with_retries(self, index: int, rng: np.random.Generator, load):
        """Call load(video) on ``index`` then on random other videos until one decodes."""
        vi = index
        for _ in range(self.max_retries):
            v = self.videos[vi]
            try:
                return load(v, rng)
            except VideoIOError as e:
                self._count_skip()
                log.warning("skipping unreadable media (%d so far): %s", self.num_skipped, e)
                n = len(self.videos)
                vi = (vi + 1 + int(rng.integers(n - 1))) % n if n > 1 else vi
        raise DatasetError(f"dataset {self.path}: {self.max_retries} reads in a row failed; is the data corrupt?")


class FrameDataset(_VideoDatasetBase):
    """Stage 1: yields frames [3, R, R] in [-1, 1]. ``frame_draw="all"``: every frame of every
    video is an item (long videos weigh more); ``"per_video"``: one item per video, a random frame
    of it each time (the official stage 1, ``num_frames_per_video=1``)."""

    def __init__(self, path, resolution: int, frame_draw: str = "all", **kwargs):
        if frame_draw not in FRAME_DRAWS:
            raise DatasetError(f"frame_draw must be one of {FRAME_DRAWS}, got {frame_draw!r}")
        self.frame_draw = frame_draw
        super().__init__(path, resolution, **kwargs)
        self._starts = np.cumsum([0] + [v.length for v in self.videos])

    def __len__(self) -> int:
        return len(self.videos) if self.frame_draw == "per_video" else int(self._starts[-1])

    def __getitem__(self, key) -> torch.Tensor:
        index, rng = self._split_key(key)
        if self.frame_draw == "per_video":
            vi, first = index, []
        else:
            vi = int(np.searchsorted(self._starts, index, side="right") - 1)
            first = [index - int(self._starts[vi])]

        def load(v, rng):
            fi = first.pop() if first else int(rng.integers(v.length))
            img = self._read_frame(v, fi)
            return self._to_tensor(img, self.hflip and rng.random() < 0.5)

        return self._with_retries(vi, rng, load)


class ClipDataset(_VideoDatasetBase):
    """Stage 2: yields ``(frames [K, 3, R, R] in [-1, 1], times [K] float)`` per video,
    K frames sampled sparsely within ``max_dist`` consecutive frames; times start at 0."""

    def __init__(self, path, resolution: int, num_frames: int = 3, max_dist: int = 32,
                 time_sampling: str = "uniform", **kwargs):
        if time_sampling not in TIME_SAMPLINGS:
            raise DatasetError(f"time_sampling must be one of {TIME_SAMPLINGS}, got {time_sampling!r}")
        self.time_sampling = time_sampling
        if num_frames < 2:
            raise DatasetError("num_frames per clip must be >= 2")
        if max_dist < num_frames:
            raise DatasetError(f"max_dist ({max_dist}) must be >= num_frames ({num_frames})")
        self.min_frames = int(num_frames)
        self.num_frames = int(num_frames)
        self.max_dist = int(max_dist)
        super().__init__(path, resolution, **kwargs)

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, key):
        index, rng = self._split_key(key)

        def load(v, rng):
            if self.time_sampling == "stylegan_v":  # power-of-two gaps (gendef.data.times)
                times = sample_times(self.num_frames, v.length, self.max_dist, rng).astype(np.int64)
                start, offs = int(times[0]), times - times[0]
            else:
                offs = sample_sparse_times(self.num_frames, v.length, self.max_dist, rng)
                start = int(rng.integers(0, v.length - offs[-1]))
            frames = self._read_frames(v, offs, start)
            return self._to_tensor(frames, self.hflip and rng.random() < 0.5), torch.from_numpy(offs).float()

        return self._with_retries(index, rng, load)

    def read_clip(self, index: int, start: int, num_frames: int) -> np.ndarray:
        """Consecutive frames (uint8 [T, R, R, 3]) for metrics; shorter videos are returned whole."""
        v = self.videos[index]
        n = min(num_frames, v.length - start)
        return self._read_frames(v, np.arange(n), start)

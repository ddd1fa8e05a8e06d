"""The one video reader: probe headers, read every frame, check sizes before decoding.

Everything that reads a user's clip (the CLI, the studio, the decomposer, the datasets) goes
through here, so a clip reads the same way everywhere:

* :func:`probe` reads the header only (OpenCV, and ffmpeg's stream header when imageio-ffmpeg
  is installed): display size (rotation applied), frame count and fps. When OpenCV cannot
  open the file, or its frame count disagrees with the container's duration x fps, the
  packets are counted with ffmpeg (no decoding), so the count is the true one.
* :func:`read_video` decodes with OpenCV and switches to ffmpeg when OpenCV cannot open the
  file or stops before the frames the header promises (some codecs and muxings make
  OpenCV's reader quit early and call that the end of the clip). The decoded size is
  checked against ``max_bytes`` from the header, before anything is decoded; ``resize_to``
  scales each frame as it is decoded, so a huge source never sits in memory whole.
* Decoders are quiet: OpenCV, its FFmpeg backend and imageio-ffmpeg log nothing while a clip
  is opened or read (:mod:`gendef.video.decoder_logging` sets their levels for the read only and
  restores them after; importing changes nothing), ffmpeg's own stderr is captured.
  :func:`set_verbose` (the CLI's ``--verbose``: this module's logger at DEBUG) lets them talk;
  it must be called before the first clip is opened (OpenCV reads libav's level once).
* Without imageio-ffmpeg (OpenCV alone, as on a bare GPU machine) everything imports and
  reads as far as OpenCV can; a read OpenCV cuts well short of the header's frame count is
  refused in one line naming ``pip install imageio-ffmpeg``, never returned shortened.
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from ..errors import VideoIOError
from ..imageutil import to_float01
from .decoder_logging import decoder_logging
from .io import IMAGE_EXTS, VIDEO_EXTS, read_image

__all__ = ["VideoInfo", "probe", "read_video", "iter_frames", "read_clip", "set_verbose", "count_frames",
           "MAX_DECODE_BYTES"]

MAX_DECODE_BYTES = 4 << 30  # default bound on the decoded clip (uint8 RGB, or float32 with dtype="float32")
MAX_FRAME_SIDE = 16384
log = logging.getLogger(__name__)
_INSTALL_FFMPEG = "pip install imageio-ffmpeg"


def _check_opencv_complete(info: "VideoInfo", got: int, expected: int) -> None:
    """Without ffmpeg (OpenCV alone), refuse a read that stopped well before the header's frame count:
    a silently shortened clip is worse than one line naming the install that reads the rest. A frame
    or two (or 5%) short is let through: OpenCV's own count is an estimate for some containers."""
    if expected - got > max(2, expected // 20):
        raise VideoIOError(
            f"{info.path}: OpenCV stopped after {got} of the {expected} frames the header promises and ffmpeg "
            f"is not installed to read the rest: {_INSTALL_FFMPEG}"
        )


def set_verbose(on: bool = True) -> None:
    """Let OpenCV (and its FFmpeg backend: call before the first clip is opened) log, and log ffmpeg's header:
    sets this module's logger to DEBUG (off: back to NOTSET); an application calls it once, at start."""
    log.setLevel(logging.DEBUG if on else logging.NOTSET)


def _quiet():
    """The decoders' logging for one open or read: quiet unless this module's own logger is at DEBUG."""
    return decoder_logging(verbose=0 < log.level <= logging.DEBUG)


@dataclass(frozen=True)
class VideoInfo:
    """What the header says: display size (H, W) after rotation, frame count, fps."""

    path: Path
    kind: str  # "folder" | "gif" | "video"
    height: int
    width: int
    frames: int
    fps: float
    opencv_ok: bool = True  # False: only ffmpeg can read it

    def decoded_bytes(self, start: int = 0, count: Optional[int] = None, itemsize: int = 1) -> int:
        n = max(self.frames - int(start), 0) if count is None else min(int(count), max(self.frames - int(start), 0))
        return n * self.height * self.width * 3 * itemsize


def _cv2():
    import cv2

    return cv2


def _ffmpeg_exe() -> Optional[str]:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed (the GPU machine), or no binary for this platform
        return None


def _clean_fps(fps) -> float:
    fps = float(fps or 0.0)
    return fps if np.isfinite(fps) and 0.0 < fps <= 1000.0 else 16.0


def _ffmpeg_header(path: Path) -> Optional[dict]:
    """ffmpeg's view of the first video stream: size (rotation applied), fps, duration; None if unavailable."""
    if _ffmpeg_exe() is None:
        return None
    import imageio_ffmpeg

    with _quiet():
        gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        try:
            meta = next(gen)
        except (RuntimeError, OSError, StopIteration, IOError) as e:
            log.debug("ffmpeg could not read %s: %s", path, e)
            return None
        finally:
            gen.close()
    log.debug("ffmpeg header of %s: %s", path, meta)
    return meta


def count_frames(path: Union[str, os.PathLike]) -> Optional[int]:
    """The video stream's packet count, from ffmpeg without decoding (None if ffmpeg is unavailable or fails)."""
    exe = _ffmpeg_exe()
    if exe is None:
        return None
    cmd = [exe, "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=600).stderr.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.findall(r"frame=\s*(\d+)", out)
    return int(found[-1]) if found else None


def _probe_opencv(path: Path) -> Optional[tuple]:
    cv2 = _cv2()
    with _quiet():
        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                return None
            h, w = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            return h, w, max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0), _clean_fps(cap.get(cv2.CAP_PROP_FPS))
        finally:
            cap.release()


def _probe_file(p: Path) -> VideoInfo:
    cv = _probe_opencv(p)
    meta = _ffmpeg_header(p)
    if cv is None and meta is None:
        hint = "" if _ffmpeg_exe() is not None else f"; OpenCV alone cannot open it, ffmpeg might: {_INSTALL_FFMPEG}"
        raise VideoIOError(f"{p}: cannot open video (corrupt, truncated or unsupported codec){hint}")
    if meta is not None:
        w, h = (int(v) for v in meta.get("size") or (0, 0))
        fps = _clean_fps(meta.get("fps"))
        est = int(round(float(meta.get("duration") or 0.0) * fps))
    else:
        h, w, _, fps = cv
        est = 0
    if cv is not None and cv[2] > 0 and (est == 0 or abs(cv[2] - est) <= 1):
        frames = cv[2]  # OpenCV's count agrees with the container's duration x fps
    else:
        frames = count_frames(p) or est or (cv[2] if cv else 0)
    if h <= 0 or w <= 0:
        raise VideoIOError(f"{p}: the video header has no frame size (corrupt or unsupported)")
    return VideoInfo(p, "video", h, w, int(frames), fps, opencv_ok=cv is not None)


def probe(path: Union[str, os.PathLike]) -> VideoInfo:
    """Header facts of a video file, gif or folder of frames, without decoding the clip."""
    p = Path(path)
    if not p.exists():
        raise VideoIOError(f"{path}: no such file or folder")
    if p.is_dir():
        files = _frame_files(p)
        if not files:
            raise VideoIOError(f"{path}: folder has no png/jpg frames")
        w, h = _image_size(files[0])
        return VideoInfo(p, "folder", h, w, len(files), 16.0)
    ext = p.suffix.lower()
    if ext not in VIDEO_EXTS:
        raise VideoIOError(f"{path}: unsupported file type {ext or '(none)'}; use one of {', '.join(VIDEO_EXTS)} or a folder of frames")
    if ext == ".gif":
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(p) as im:
                w, h = im.size
                return VideoInfo(p, "gif", h, w, int(getattr(im, "n_frames", 1)), 1000.0 / float(im.info.get("duration", 62) or 62))
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise VideoIOError(f"{p}: not a readable gif ({e})") from None
    return _probe_file(p)


def _frame_files(p: Path) -> list:
    return sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS)


def _image_size(path: Path) -> tuple:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise VideoIOError(f"{path}: not a readable image ({e})") from None


# Frames above this many pixels are scaled as uint8 before the float conversion (a float copy
# of an 8000x8000 frame alone is 768 MB), and OpenCV decodes them on one thread (fewer buffers).
_LARGE_FRAME = 16 << 20


class _Sink:
    """Turns each decoded frame into what the caller keeps (resized, float) at once."""

    def __init__(self, resize_to: Optional[Sequence[int]], dtype: str):
        if dtype not in ("uint8", "float32"):
            raise VideoIOError(f"dtype must be uint8 or float32, got {dtype!r}")
        self.size = None if resize_to is None else (int(resize_to[0]), int(resize_to[1]))
        self.dtype = dtype
        self.frames: list = []

    def add(self, frame: np.ndarray, bgr: bool = False) -> None:
        """One uint8 frame (RGB, or BGR from OpenCV): float32 in [0, 1] first, then INTER_AREA to ``size``
        (the decomposer's own order, so its numbers do not change); large frames are scaled first."""
        cv2 = _cv2()
        resize = self.size is not None and frame.shape[:2] != self.size
        if resize and frame.shape[0] * frame.shape[1] > _LARGE_FRAME:
            frame, resize = cv2.resize(frame, (self.size[1], self.size[0]), interpolation=cv2.INTER_AREA), False
        if bgr:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        f = to_float01(frame) if self.dtype == "float32" else frame
        if resize:
            f = cv2.resize(f, (self.size[1], self.size[0]), interpolation=cv2.INTER_AREA)
        self.frames.append(f)

    def __len__(self) -> int:
        return len(self.frames)


def _capture(p: Path, info: Optional[VideoInfo] = None):
    cv2 = _cv2()
    if info is not None and info.height * info.width > _LARGE_FRAME:
        return cv2.VideoCapture(str(p), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    return cv2.VideoCapture(str(p))


def _check_request(path, start: int, num_frames: Optional[int], max_frames: int) -> int:
    if start < 0:
        raise VideoIOError("start must be >= 0")
    if num_frames is not None and num_frames < 1:
        raise VideoIOError("frames must be >= 1")
    want = num_frames if num_frames is not None else max_frames
    if want > max_frames:
        raise VideoIOError(f"{want} frames requested; at most {max_frames} are allowed")
    return want


def _check_budget(info: VideoInfo, start: int, want: int, sink: _Sink, max_bytes: int) -> None:
    """Refuse, from the header, a clip whose decoded frames would not fit the budget."""
    if start >= info.frames > 0:
        raise VideoIOError(f"{info.path}: start {start} is past the last frame ({info.frames} frames)")
    if max(info.height, info.width) > MAX_FRAME_SIDE:
        raise VideoIOError(f"{info.path}: frames of {info.width}x{info.height} are larger than {MAX_FRAME_SIDE} pixels a side")
    h, w = sink.size or (info.height, info.width)
    n = min(want, info.frames - start) if info.frames > 0 else want
    need = n * h * w * 3 * (4 if sink.dtype == "float32" else 1)
    if need > max_bytes:
        raise VideoIOError(
            f"{info.path}: {n} frames of {w}x{h} would take {need / 2**30:.1f} GiB decoded (at most "
            f"{max_bytes / 2**30:.1f} GiB); pick fewer frames or a smaller size"
        )


def read_video(
    path: Union[str, os.PathLike],
    start: int = 0,
    num_frames: Optional[int] = None,
    max_frames: int = 4096,
    resize_to: Optional[Sequence[int]] = None,
    dtype: str = "uint8",
    max_bytes: int = MAX_DECODE_BYTES,
    info: Optional[VideoInfo] = None,
) -> tuple:
    """Video file, gif or folder of frames -> (frames [T, H, W, 3], fps).

    Only the requested clip is decoded, and only after its decoded size (from the header)
    is checked against ``max_bytes``. ``resize_to=(H, W)`` scales each frame with INTER_AREA
    as it is decoded; ``dtype="float32"`` converts each frame to [0, 1] first (then resizes).
    ``info``: the header of ``path`` when the caller has probed it already.
    """
    want = _check_request(path, start, num_frames, max_frames)
    info = probe(path) if info is None else info
    sink = _Sink(resize_to, dtype)
    _check_budget(info, start, want, sink, max_bytes)
    if info.kind == "folder":
        for f in _frame_files(info.path)[start : start + want]:
            sink.add(_read_frame_file(f))
        fps = 16.0
    elif info.kind == "gif":
        fps = _read_gif(info.path, start, want, sink)
    else:
        fps = _read_file(info, start, want, sink)
    if not len(sink):
        raise VideoIOError(f"{path}: no frames at or after start {start}")
    shapes = {f.shape for f in sink.frames}
    if len(shapes) != 1:
        raise VideoIOError(f"{path}: frames have different sizes {sorted(shapes)}")
    return np.stack(sink.frames), float(fps)


def _read_frame_file(path: Path) -> np.ndarray:
    return read_image(path)[..., :3]


def _read_gif(p: Path, start: int, want: int, sink: _Sink) -> float:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            dur = im.info.get("duration", 62) or 62
            for i, fr in enumerate(ImageSequence.Iterator(im)):
                if len(sink) >= want:
                    break
                if i >= start:
                    sink.add(np.asarray(fr.convert("RGB")))
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise VideoIOError(f"{p}: not a readable gif ({e})") from None
    return 1000.0 / float(dur)


def _read_file(info: VideoInfo, start: int, want: int, sink: _Sink) -> float:
    """OpenCV first; ffmpeg when OpenCV cannot open the file or stops before the header's last frame."""
    expected = min(want, info.frames - start) if info.frames > 0 else want
    seen = _read_opencv(info, start, want, sink) if info.opencv_ok else 0
    if len(sink) < expected and _ffmpeg_exe() is not None:
        log.debug("%s: OpenCV stopped after %d frames of %d; reading with ffmpeg", info.path, seen, info.frames)
        sink.frames.clear()
        seen = _read_ffmpeg(info, start, want, sink)
    elif _ffmpeg_exe() is None:
        _check_opencv_complete(info, len(sink), expected)
    if not len(sink):
        if seen == 0:
            raise VideoIOError(f"{info.path}: no decodable frames (corrupt or unsupported codec)")
        raise VideoIOError(f"{info.path}: start {start} is past the last frame ({seen} frames)")
    return info.fps


def _read_opencv(info: VideoInfo, start: int, want: int, sink: _Sink) -> int:
    with _quiet():
        return _grab_opencv(info, start, want, sink)


def _grab_opencv(info: VideoInfo, start: int, want: int, sink: _Sink) -> int:
    cap = _capture(info.path, info)
    i = 0
    try:
        while cap.isOpened() and len(sink) < want:
            ok, fr = cap.grab(), None
            if ok and i >= start:
                ok, fr = cap.retrieve()
            if not ok:
                break
            if fr is not None:
                sink.add(fr, bgr=True)
            i += 1
    finally:
        cap.release()
    return i


def _ffmpeg_frames(p: Path, size: Optional[Sequence[int]] = None) -> Iterator[np.ndarray]:
    """Every frame of the first video stream through ffmpeg (rotation applied), uint8 RGB;
    ``size=(H, W)``: scaled by ffmpeg while decoding (area filter), so full frames never reach Python."""
    import imageio_ffmpeg

    scale = None if size is None else ["-vf", f"scale={int(size[1])}:{int(size[0])}:flags=area"]
    with _quiet():
        gen = imageio_ffmpeg.read_frames(str(p), pix_fmt="rgb24", output_params=scale)
        try:
            meta = next(gen)
            w, h = (int(v) for v in meta["size"])
            for buf in gen:
                yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
        except (RuntimeError, OSError) as e:
            raise VideoIOError(f"{p}: ffmpeg cannot decode it ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        finally:
            gen.close()


def _read_ffmpeg(info: VideoInfo, start: int, want: int, sink: _Sink) -> int:
    """Large frames (the size the sink wants being smaller) are scaled by ffmpeg as they are decoded:
    an 8000x8000 clip then peaks at ~0.5 GB in ffmpeg and next to nothing here (1.3 GB together unscaled)."""
    large = sink.size is not None and info.height * info.width > _LARGE_FRAME
    i = 0
    for frame in _ffmpeg_frames(info.path, sink.size if large else None):
        if len(sink) >= want:
            break
        if i >= start:
            sink.add(frame)
        i += 1
    return i


def iter_frames(path: Union[str, os.PathLike]) -> Iterator[np.ndarray]:
    """Every frame of a video file, uint8 RGB, one at a time (OpenCV, then ffmpeg for what OpenCV missed)."""
    info = probe(path)
    if info.kind != "video":
        for start in range(0, info.frames, 64):
            yield from read_video(path, start=start, num_frames=64, max_frames=64)[0]
        return
    cv2, done = _cv2(), 0
    with _quiet():
        cap = cv2.VideoCapture(str(info.path))
        try:
            while cap.isOpened():
                ok, fr = cap.read()
                if not ok:
                    break
                done += 1
                yield cv2.cvtColor(fr, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()
    if done < info.frames and _ffmpeg_exe() is not None:
        for i, frame in enumerate(_ffmpeg_frames(info.path)):
            if i >= done:
                yield frame
    elif done < info.frames:
        _check_opencv_complete(info, done, info.frames)


def read_clip(path: Union[str, os.PathLike], start: int, count: int) -> np.ndarray:
    """``count`` frames from ``start`` for training: OpenCV seeks when it can do so exactly, else a full read."""
    p = Path(path)
    if start > 0 and p.suffix.lower() != ".gif" and p.is_file():
        with _quiet():
            frames = _seek_opencv(p, start, count)
        if frames is not None:
            return frames
    return read_video(p, start=start, num_frames=count, max_frames=1 << 20)[0]


def _seek_opencv(p: Path, start: int, count: int) -> Optional[np.ndarray]:
    """``count`` frames from ``start`` when OpenCV seeks there exactly and reads them all, else None."""
    cv2 = _cv2()
    cap = cv2.VideoCapture(str(p))
    try:
        if cap.isOpened() and cap.set(cv2.CAP_PROP_POS_FRAMES, start) and int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == start:
            frames = []
            while len(frames) < count:
                ok, fr = cap.read()
                if not ok:
                    break
                frames.append(cv2.cvtColor(fr, cv2.COLOR_BGR2RGB))
            if len(frames) == count:
                return np.stack(frames)
    finally:
        cap.release()
    return None

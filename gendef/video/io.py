"""Writing video files (atomically, with optional sound) and reading single images.

Reading clips is :mod:`gendef.video.reader`'s job (one reader for the CLI, the studio,
the decomposer and the datasets).
"""
from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Union

import numpy as np

from ..errors import VideoIOError
from ..imageutil import to_uint8

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".m4v", ".gif")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

__all__ = ["write_video", "write_video_frames", "write_video_and_gif", "atomic_output", "check_fps", "check_output_path", "read_image", "VIDEO_EXTS", "IMAGE_EXTS"]


MAX_FPS = 1000.0
# container name for ffmpeg's -f (the temp file's extension says nothing) and codec per extension
_CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".webm": "webm"}
_CODECS = {".webm": ["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "30"]}
# veryfast: 128 frames at 1080p encode in 4.7 CPU s instead of 10.5 (medium), file 7 vs 8 MB at the same crf
_H264 = ["-c:v", "libx264", "-crf", "10", "-preset", "veryfast"]


def check_fps(fps) -> float:
    """fps as a float in (0, MAX_FPS], or a one-line VideoIOError."""
    try:
        f = float(fps)
    except (TypeError, ValueError):
        raise VideoIOError(f"fps must be a number, got {fps!r}") from None
    if not (np.isfinite(f) and 0.0 < f <= MAX_FPS):
        raise VideoIOError(f"fps must be a number in (0, {MAX_FPS:g}], got {fps!r}")
    return f


def check_output_path(path: Union[str, os.PathLike], exts=VIDEO_EXTS) -> Path:
    """A writable file path with a supported extension (not a folder), or a one-line VideoIOError."""
    p = Path(path)
    if p.is_dir() or str(path).endswith(("/", os.sep)):
        raise VideoIOError(f"{path}: is a folder; give a file name such as out.mp4")
    ext = p.suffix.lower()
    if ext not in exts:
        raise VideoIOError(f"{path}: unsupported video extension {ext or '(none)'}: use .mp4 or .gif")
    if p.parent.exists() and not p.parent.is_dir():
        raise VideoIOError(f"{path}: {p.parent} is not a folder")
    return p


@contextmanager
def atomic_output(path: Union[str, os.PathLike]):
    """Yield a temp path in the same folder as ``path``; rename it onto ``path`` only when the
    block finishes without an exception, remove it on every failure path.

    A crash (even kill -9) leaves any previous ``path`` untouched; only a hidden temp file
    ``.<name>.<random>.tmp`` may stay behind after a hard kill.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # umask applies, as for open()
    except OSError as e:
        raise VideoIOError(f"{path}: cannot write here ({e.strerror or e})") from None
    try:
        yield tmp
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise VideoIOError(f"{path}: the encoder wrote nothing")
        try:
            os.replace(tmp, path)
        except OSError as e:
            raise VideoIOError(f"{path}: cannot write here ({e.strerror or e})") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_video(frames: np.ndarray, path: Union[str, os.PathLike], fps: float = 16.0, audio=None) -> Path:
    """Write [T, H, W, 3] frames (float in [0, 1] or uint8) to .mp4 (H.264) or .gif.

    ``audio``: an optional ``gendef.video.audio.AudioSpan`` muxed next to the video (not for .gif).

    fps and path are checked before anything is encoded; the file is encoded to a temp file
    in the same folder and renamed over ``path`` only after the encoder reported success.
    """
    path = check_output_path(path)
    fps = check_fps(fps)
    arr = to_uint8(frames)
    if arr.ndim == 3:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 4 or arr.shape[-1] not in (3, 4) or arr.shape[0] < 1:
        raise VideoIOError(f"frames must be [T, H, W, 3] with T >= 1, got {arr.shape}")
    return _write(iter(arr[..., :3]), arr.shape[1:3], path, fps, audio)


def write_video_frames(frames: Iterable[np.ndarray], path: Union[str, os.PathLike], fps: float = 16.0,
                       audio=None) -> Path:
    """:func:`write_video` for a stream of uint8 [H, W, 3] frames (all of one size): an .mp4 is
    encoded frame by frame, so a long clip is never held whole (a .gif collects its frames)."""
    path = check_output_path(path)
    fps = check_fps(fps)
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise VideoIOError("no frames to write")
    first = np.asarray(first)
    if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
        raise VideoIOError(f"frames must be uint8 [H, W, 3], got {first.shape} {first.dtype}")

    def stream():
        yield first
        for f in it:
            if f.shape != first.shape:
                raise VideoIOError(f"frames must all be {first.shape}, got {f.shape}")
            yield f

    return _write(stream(), first.shape[:2], path, fps, audio)


def write_video_and_gif(frames: Iterable[np.ndarray], path: Union[str, os.PathLike], gif_path=None, fps: float = 16.0,
                        audio=None) -> tuple:
    """One stream of uint8 [H, W, 3] frames -> a video file encoded frame by frame (:func:`write_video_frames`)
    and, when ``gif_path`` is given, a .gif of the same frames, without rendering them twice.

    The gif keeps every frame until the video is written (a gif encoder needs them all): the caller
    bounds its size. Returns (video path, gif path or None).
    """
    if gif_path is not None:
        check_output_path(gif_path, (".gif",))
    kept = [] if gif_path is not None else None

    def tee():
        for f in frames:
            if kept is not None:
                kept.append(f)
            yield f

    out = write_video_frames(tee(), path, fps=fps, audio=audio)
    gif = None if kept is None else write_video_frames(iter(kept), gif_path, fps=fps)
    return out, gif


def _write(frames, hw, path: Path, fps: float, audio) -> Path:
    ext = path.suffix.lower()
    with atomic_output(path) as tmp:
        if ext == ".gif":
            _encode_gif(frames, tmp, fps)
        elif audio is not None:
            _encode_with_audio(frames, hw, tmp, fps, ext, audio)
        else:
            _encode_ffmpeg(frames, hw, tmp, fps, ext)
    return path


def _encode_with_audio(frames, hw, tmp: Path, fps: float, ext: str, audio) -> None:
    """Encode silently, then mux the audio span in (gendef.video.audio); the result replaces ``tmp``."""
    from .audio import mux_audio

    with tempfile.TemporaryDirectory(prefix="gendef-mux-", dir=tmp.parent) as d:
        silent, muxed = Path(d) / f"silent{ext}", Path(d) / f"muxed{ext}"
        _encode_ffmpeg(frames, hw, silent, fps, ext)
        mux_audio(silent, audio, muxed)
        os.replace(muxed, tmp)


def _encode_gif(frames, tmp: Path, fps: float) -> None:
    """uint8 [H, W, 3] frames -> an animated gif; each frame becomes a PIL image only when the encoder
    takes it (the encoder keeps its palette frames, one byte a pixel)."""
    from PIL import Image

    imgs = (Image.fromarray(np.ascontiguousarray(f)) for f in frames)
    duration = max(1, int(round(1000.0 / fps)))
    try:
        next(imgs).save(tmp, format="GIF", save_all=True, append_images=imgs, duration=duration, loop=0, optimize=False)
    except (OSError, ValueError) as e:
        raise VideoIOError(f"gif encoding failed ({e})") from None


def _encode_ffmpeg(frames, hw, tmp: Path, fps: float, ext: str) -> None:
    """Pipe raw uint8 RGB frames (an iterable of [H, W, 3], ``hw`` = (H, W)) to ffmpeg and check its
    exit status (stderr's last line on failure)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise VideoIOError(f"writing {ext} needs ffmpeg, which is not installed: pip install imageio-ffmpeg "
                           "(or write a .gif)") from None

    # H.264 + yuv420p needs even sizes; pad by edge replication rather than crop.
    h, w = hw
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    h, w = h + h % 2, w + w % 2
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps:.6g}", "-i", "-",
        "-an", *_CODECS.get(ext, _H264), "-pix_fmt", "yuv420p", "-f", _CONTAINERS[ext], str(tmp),
    ]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        try:
            for f in frames:
                f = np.pad(f, pad, mode="edge") if pad[0][1] or pad[1][1] else f
                proc.stdin.write(np.ascontiguousarray(f).tobytes())
        except BrokenPipeError:
            pass  # ffmpeg quit early: its exit status and stderr say why
        except BaseException:
            proc.kill()
            raise
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass
            proc.wait()
        err.seek(0)
        tail = [ln for ln in err.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    if proc.returncode != 0:
        why = tail[-1].strip() if tail else f"exit status {proc.returncode}"
        raise VideoIOError(f"video encoding failed ({why})")


def read_image(path: Union[str, os.PathLike]) -> np.ndarray:
    """Image file -> uint8 [H, W, 3] (or [H, W, 4] when it has alpha), a writable array of its own.

    ``np.array`` copies: ``np.asarray`` of a PIL image is a read-only view, which torch.from_numpy
    warns about ("The given NumPy array is not writable") in every training run."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            mode = "RGBA" if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info else "RGB"
            return np.array(im.convert(mode))
    except FileNotFoundError:
        raise VideoIOError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise VideoIOError(f"{path}: not a readable image ({e})") from None

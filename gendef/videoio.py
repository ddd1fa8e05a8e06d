"""Reading and writing video files and frame folders.

One module so the CLI, the decomposer, the datasets and the app all accept the
same inputs and fail with the same clear messages.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import numpy as np

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".m4v", ".gif")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

__all__ = ["VideoIOError", "write_video", "read_video", "read_image", "to_uint8", "VIDEO_EXTS", "IMAGE_EXTS"]


class VideoIOError(ValueError):
    """Unreadable, unsupported or oversized media (message is user-facing)."""


def to_uint8(frames: np.ndarray) -> np.ndarray:
    a = np.asarray(frames)
    if a.dtype == np.uint8:
        return a
    return (np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_video(frames: np.ndarray, path: Union[str, os.PathLike], fps: float = 16.0) -> Path:
    """Write [T, H, W, 3] frames (float in [0, 1] or uint8) to .mp4 (H.264) or .gif."""
    import imageio.v2 as imageio

    path = Path(path)
    arr = to_uint8(frames)
    if arr.ndim == 3:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 4 or arr.shape[-1] not in (3, 4):
        raise VideoIOError(f"frames must be [T, H, W, 3], got {arr.shape}")
    arr = arr[..., :3]
    ext = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if ext == ".gif":
        from PIL import Image

        imgs = [Image.fromarray(f) for f in arr]
        duration = int(round(1000.0 / max(fps, 1e-3)))
        imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=duration, loop=0, optimize=False)
        return path
    if ext not in (".mp4", ".webm", ".avi", ".mov", ".mkv"):
        raise VideoIOError(f"unsupported video extension {ext!r}: use .mp4 or .gif")
    # H.264 + yuv420p needs even sizes; pad by edge replication rather than crop.
    t, h, w, _ = arr.shape
    ph, pw = h % 2, w % 2
    if ph or pw:
        arr = np.pad(arr, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    kwargs = dict(fps=float(fps), macro_block_size=1)
    if ext == ".mp4":
        kwargs.update(codec="libx264", pixelformat="yuv420p", quality=8)
    with imageio.get_writer(str(path), **kwargs) as wr:
        for f in arr:
            wr.append_data(f)
    return path


def read_image(path: Union[str, os.PathLike]) -> np.ndarray:
    """Image file -> uint8 [H, W, 3] (or [H, W, 4] when it has alpha)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            mode = "RGBA" if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info else "RGB"
            return np.asarray(im.convert(mode))
    except FileNotFoundError:
        raise VideoIOError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise VideoIOError(f"{path}: not a readable image ({e})") from None


def read_video(
    path: Union[str, os.PathLike],
    start: int = 0,
    num_frames: Optional[int] = None,
    max_frames: int = 4096,
) -> tuple:
    """Video file or folder of frames -> (uint8 [T, H, W, 3], fps).

    Only the requested clip is decoded into memory; ``max_frames`` bounds it.
    """
    p = Path(path)
    if not p.exists():
        raise VideoIOError(f"{path}: no such file or folder")
    if start < 0:
        raise VideoIOError("start must be >= 0")
    if num_frames is not None and num_frames < 1:
        raise VideoIOError("frames must be >= 1")
    want = num_frames if num_frames is not None else max_frames
    if want > max_frames:
        raise VideoIOError(f"{want} frames requested; at most {max_frames} are allowed")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise VideoIOError(f"{path}: folder has no png/jpg frames")
        files = files[start : start + want]
        if not files:
            raise VideoIOError(f"{path}: start {start} is past the last frame")
        frames = [read_image(f)[..., :3] for f in files]
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise VideoIOError(f"{path}: frames have different sizes {sorted(shapes)}")
        return np.stack(frames), 16.0
    ext = p.suffix.lower()
    if ext not in VIDEO_EXTS:
        raise VideoIOError(f"{path}: unsupported file type {ext or '(none)'}; use one of {', '.join(VIDEO_EXTS)} or a folder of frames")
    if ext == ".gif":
        return _read_gif(p, start, want)
    return _read_cv2(p, start, want)


def _read_gif(p: Path, start: int, want: int):
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            dur = im.info.get("duration", 62) or 62
            frames = []
            for i, fr in enumerate(ImageSequence.Iterator(im)):
                if i < start:
                    continue
                if len(frames) >= want:
                    break
                frames.append(np.asarray(fr.convert("RGB")))
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise VideoIOError(f"{p}: not a readable gif ({e})") from None
    if not frames:
        raise VideoIOError(f"{p}: no frames at or after start {start}")
    return np.stack(frames), 1000.0 / float(dur)


def _read_cv2(p: Path, start: int, want: int):
    import cv2

    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise VideoIOError(f"{p}: cannot open video (corrupt or unsupported codec)")
        fps = cap.get(cv2.CAP_PROP_FPS) or 16.0
        if not np.isfinite(fps) or fps <= 0 or fps > 1000:
            fps = 16.0
        frames = []
        i = 0
        while len(frames) < want:
            ok, fr = cap.read()
            if not ok:
                break
            if i >= start:
                frames.append(cv2.cvtColor(fr, cv2.COLOR_BGR2RGB))
            i += 1
    finally:
        cap.release()
    if not frames:
        if i == 0:
            raise VideoIOError(f"{p}: no decodable frames (corrupt or unsupported codec)")
        raise VideoIOError(f"{p}: start {start} is past the last frame ({i} frames)")
    return np.stack(frames), float(fps)

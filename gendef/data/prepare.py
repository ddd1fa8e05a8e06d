"""Turn a folder of videos into StyleGAN-V's frame layout.

``python -m gendef.data.prepare SRC DST --resolution 256`` writes
``DST/<video>/000000.png ...`` (or the same inside ``DST.zip``), resized and
centre-cropped, so training never decodes full-resolution video again.
Videos are streamed frame by frame, so long videos never sit in memory.
"""
from __future__ import annotations

import argparse
import io
import logging
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..errors import DatasetError, VideoIOError
from ..video.io import IMAGE_EXTS, VIDEO_EXTS
from ..video.reader import iter_frames
from .datasets import RESIZE_MODES, fit_frame

__all__ = ["prepare_dataset", "iter_video_frames", "main"]

log = logging.getLogger("gendef.data")


def iter_video_frames(path: Path) -> Iterator[np.ndarray]:
    """Yield uint8 RGB frames of a video file, a gif or a folder of frames, one at a time (the one reader)."""
    yield from iter_frames(path)


def _encode_png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def prepare_dataset(
    src,
    dst,
    resolution: int = 256,
    max_frames: Optional[int] = None,
    every: int = 1,
    min_frames: int = 1,
    progress: bool = True,
    resize: str = "crop",
) -> dict:
    """Convert every video under ``src`` into frames under ``dst`` (a folder, or a zip when it ends
    in .zip). Returns counts {'videos', 'frames', 'skipped'}; unreadable videos are skipped.
    When nothing could be converted, nothing is left behind (no empty zip or folder).
    ``resize``: ``crop`` (short side + centre crop) or ``squash`` (whole frame to a square, bicubic,
    as the official GenDeF loader; train/configs/ytb256.yaml)."""
    src, dst = Path(src), Path(dst)
    if resize not in RESIZE_MODES:
        raise DatasetError(f"resize must be one of {sorted(RESIZE_MODES)}, got {resize!r}")
    if resolution < 8:
        raise DatasetError("--resolution must be at least 8")
    if every < 1:
        raise DatasetError("--every must be >= 1")
    if not src.is_dir():
        raise DatasetError(f"{src}: not a folder of videos")
    items = sorted(
        p
        for p in src.iterdir()
        if not p.name.startswith(".") and (p.suffix.lower() in VIDEO_EXTS or (p.is_dir() and any(
            f.suffix.lower() in IMAGE_EXTS for f in p.iterdir())))
    )
    if not items:
        raise DatasetError(f"{src}: no videos found (extensions {', '.join(VIDEO_EXTS)} or folders of frames)")
    as_zip = dst.suffix.lower() == ".zip"
    if dst.exists() and (as_zip or any(dst.iterdir())):
        raise DatasetError(f"{dst}: already exists and is not empty; choose a new destination")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".partial")
    zf = zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) if as_zip else None
    made_dir = not as_zip and not dst.exists()
    if not as_zip:
        dst.mkdir(parents=True, exist_ok=True)
    counts = {"videos": 0, "frames": 0, "skipped": 0}
    ok = False
    try:
        _convert_all(items, dst, zf, resolution, max_frames, every, min_frames, counts, progress, resize)
        if counts["videos"] == 0:
            raise DatasetError(f"{src}: none of the {len(items)} videos could be read; nothing written")
        ok = True
    finally:
        if zf is not None:
            zf.close()
        if as_zip and ok:
            tmp.replace(dst)
        elif as_zip:
            tmp.unlink(missing_ok=True)
        elif not ok and made_dir and not any(dst.rglob("*.png")):
            shutil.rmtree(dst, ignore_errors=True)  # only a folder this call created, holding no frames
    return counts


def _convert_all(items, dst, zf, resolution, max_frames, every, min_frames, counts, progress, resize="crop"):
    """Write each readable video's frames (to the open zip or under dst), counting into counts."""
    from tqdm import tqdm

    bar = tqdm(items, desc="videos", unit="video", disable=not progress)
    for item in bar:
        name = item.stem if item.is_file() else item.name
        frames = []
        try:
            for i, fr in enumerate(iter_video_frames(item)):
                if i % every:
                    continue
                frames.append(_encode_png(fit_frame(fr, resolution, resize)))
                if max_frames and len(frames) >= max_frames:
                    break
        except VideoIOError as e:
            log.warning("skipping %s", e)
            counts["skipped"] += 1
            continue
        if len(frames) < min_frames:
            log.warning("skipping %s: %d frame(s), need %d", item.name, len(frames), min_frames)
            counts["skipped"] += 1
            continue
        for j, data in enumerate(frames):
            rel = f"{name}/{j:06d}.png"
            if zf is not None:
                zf.writestr(rel, data)
            else:
                out = dst / rel
                out.parent.mkdir(exist_ok=True)
                out.write_bytes(data)
        counts["videos"] += 1
        counts["frames"] += len(frames)
        bar.set_postfix(frames=counts["frames"], skipped=counts["skipped"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m gendef.data.prepare",
        description="Convert a folder of videos into the frame layout used for training (folder or .zip).",
    )
    p.add_argument("src", help="folder of video files (mp4/avi/webm/gif/...) or of frame folders")
    p.add_argument("dst", help="output folder, or a path ending in .zip")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--max-frames", type=int, default=None, help="keep at most this many frames per video")
    p.add_argument("--every", type=int, default=1, help="keep every n-th frame")
    p.add_argument("--min-frames", type=int, default=3, help="skip videos shorter than this (stage 2 needs 3)")
    p.add_argument("--resize", default="crop", choices=sorted(RESIZE_MODES),
                   help="crop: short side + centre crop (default); squash: whole frame to a square (official; YouTube Driving)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        c = prepare_dataset(args.src, args.dst, args.resolution, args.max_frames, args.every, args.min_frames,
                            resize=args.resize)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {c['videos']} videos, {c['frames']} frames to {args.dst}; skipped {c['skipped']} unreadable/short")
    return 0


if __name__ == "__main__":
    sys.exit(main())

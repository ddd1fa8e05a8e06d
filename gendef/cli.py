"""``python -m gendef``: sample, render, propagate, track, decompose.

Every command turns bad input into one line on stderr and a non-zero exit
status; tracebacks are for bugs only (set GENDEF_DEBUG=1 to see them always).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

from .errors import GenDeFError, UsageError, one_line

from .generator.shipped import default_checkpoint_path


def resolve_checkpoint(name: Optional[str]) -> str:
    """The shipped default when no checkpoint is named."""
    if name:
        return name
    path = default_checkpoint_path()
    if (path / "model.safetensors").is_file():
        return str(path)
    raise UsageError(f"no checkpoint given and no default model at {path}; pass --checkpoint PATH_OR_HUB_ID")


def parse_points(text: str) -> np.ndarray:
    """'x,y;x,y' -> [N, 2]."""
    pts = []
    for chunk in text.replace(" ", "").split(";"):
        if not chunk:
            continue
        parts = chunk.split(",")
        if len(parts) != 2:
            raise UsageError(f"bad point {chunk!r}: use 'x,y;x,y'")
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise UsageError(f"bad point {chunk!r}: coordinates must be numbers") from None
        if not (np.isfinite(x) and np.isfinite(y)):
            raise UsageError(f"bad point {chunk!r}: coordinates must be finite")
        pts.append((x, y))
    if not pts:
        raise UsageError("no points given: use --points 'x,y;x,y'")
    return np.array(pts, dtype=np.float64)


def _load_doc(path: str):
    """A CanonicalVideo, or a SegmentedVideo for a .npz holding a chain of segments."""
    from .video.segments import load_video_npz

    if not Path(path).is_file():
        raise UsageError(f"{path}: no such file")
    return load_video_npz(path)


def _segment(vid, k: Optional[int]):
    """(segment index or None, the CanonicalVideo whose canonical image --segment names)."""
    from .video.segments import SegmentedVideo

    if not isinstance(vid, SegmentedVideo):
        if k not in (None, 0):
            raise UsageError(f"--segment {k}: the video is one CanonicalVideo (segment 0 only)")
        return None, vid
    k = 0 if k is None else k
    if not 0 <= k < vid.num_segments:
        raise UsageError(f"--segment {k}: the video has segments 0..{vid.num_segments - 1}")
    return k, vid.segments[k]


def _check_out(path: str, exts) -> Path:
    p = Path(path)
    if p.suffix.lower() not in exts:
        raise UsageError(f"--out {path}: expected one of {', '.join(exts)}")
    if p.is_dir():
        raise UsageError(f"--out {path}: is a folder; give a file name")
    return p


def _check_fps(fps):
    """--fps checked before any work (None keeps the video's own rate)."""
    from .video.io import check_fps

    return None if fps is None else check_fps(fps)


# ------------------------------------------------------------------------- commands
def cmd_sample(args) -> int:
    from .generator.model import GenDeF

    if not 1 <= args.frames <= 4096:
        raise UsageError("--frames must be between 1 and 4096")
    out = _check_out(args.out, (".npz",))
    video_out = _check_out(args.video, (".mp4", ".gif")) if args.video else None
    _check_fps(args.fps)
    model = GenDeF.from_pretrained(resolve_checkpoint(args.checkpoint))
    if args.output_size:  # a bad size fails before sampling
        from .video.fullsize import resolve_output_size

        res = model.resolution
        resolve_output_size(args.output_size, (res, res), (res, res))
    vid = model.sample(
        seed=args.seed,
        num_frames=args.frames,
        truncation_psi=args.truncation,
        motion_seed=args.motion_seed,
        fps=args.fps,
    )
    note = ""
    if args.output_size:
        from .video.fullsize import resolve_output_size, upscale

        vid = upscale(vid, resolve_output_size(args.output_size, vid.frame_size, vid.grid_size))
        note = f", upscaled (bicubic) from the generated {vid.grid_size[1]}x{vid.grid_size[0]}"
    vid.save(out)
    print(f"wrote {out} ({vid.num_frames} frames, {vid.frame_size[1]}x{vid.frame_size[0]}{note})")
    if video_out:
        vid.to_video(video_out)
        print(f"wrote {video_out}")
    return 0


def cmd_render(args) -> int:
    out = _check_out(args.out, (".mp4", ".gif"))
    _check_fps(args.fps)
    vid = _load_doc(args.doc)
    vid.to_video(out, fps=args.fps, audio=args.audio)
    print(f"wrote {out}")
    return 0


def _fit(img: np.ndarray, size, what: str, resize: bool, image_path: str) -> np.ndarray:
    import cv2

    h, w = size
    if img.shape[:2] == (h, w):
        return img
    if not resize:
        raise UsageError(f"{image_path} is {img.shape[1]}x{img.shape[0]} but {what} is {w}x{h}; pass --resize to scale it")
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def cmd_propagate(args) -> int:
    from .imageutil import to_float01
    from .video.io import read_image

    out = _check_out(args.out, (".mp4", ".gif", ".npz"))
    _check_fps(args.fps)
    vid = _load_doc(args.doc)
    k, canvas_of = _segment(vid, args.segment)
    img = read_image(args.image)
    if args.frame is not None:
        if not 0 <= args.frame < vid.num_frames:
            raise UsageError(f"--frame {args.frame}: the video has frames 0..{vid.num_frames - 1}")
        img = _fit(img, vid.frame_size, f"frame {args.frame}", args.resize, args.image)
        img = vid.frame_edit_to_canonical(img, args.frame)  # RGBA in canonical space (one per segment for a chain)
    else:
        what = "the canonical image" if k is None else f"segment {k}'s canonical image"
        img = _fit(img, canvas_of.canvas_size, what, args.resize, args.image)
    if k is not None:  # a chain: the edit is carried along it
        if out.suffix.lower() == ".npz":
            vid.with_edit(img, segment=k).save(out)
        else:
            vid.to_video(out, img, fps=args.fps, audio=args.audio, segment=k)
    elif out.suffix.lower() == ".npz":
        edited = vid.with_edit(img) if img.shape[2] == 4 else vid.with_canonical(to_float01(img))
        edited.save(out)
    else:
        vid.to_video(out, image=img, fps=args.fps, audio=args.audio)
    print(f"wrote {out}")
    return 0


def _coord(v) -> Optional[float]:
    """A track coordinate for JSON: None where a chain never reached the point (NaN)."""
    return None if not np.isfinite(v) else round(float(v), 4)


def cmd_track(args) -> int:
    vid = _load_doc(args.doc)
    k, _ = _segment(vid, args.segment)
    pts = parse_points(args.points)
    if args.frame0:
        pts = vid.frame_to_canonical(pts, frame=0).astype(np.float64)
        k = None if k is None else vid.segment_of(0)
    pos, vis = vid.track(pts) if k is None else vid.track(pts, segment=k)
    result = {
        "fps": vid.fps,
        "canonical_points": pts.tolist(),
        "tracks": [
            {
                "point": i,
                "x": [_coord(v) for v in pos[:, i, 0]],
                "y": [_coord(v) for v in pos[:, i, 1]],
                "visible": [bool(v) for v in vis[:, i]],
            }
            for i in range(len(pts))
        ],
    }
    if k is not None:
        result["segment"] = k
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result))
        print(f"wrote {args.json} ({len(pts)} points x {vid.num_frames} frames)")
    else:
        for i in range(len(pts)):
            for t in range(vid.num_frames):
                if not np.isfinite(pos[t, i]).all():
                    print(f"point {i} frame {t}: not reached (its segment never shows it)")
                    continue
                state = "" if vis[t, i] else " (hidden)"
                print(f"point {i} frame {t}: {pos[t, i, 0]:.3f}, {pos[t, i, 1]:.3f}{state}")
    return 0


def _progress_bar(desc: str):
    """(progress(fraction, message), close()) drawing a tqdm bar created on first use,
    so bad input fails before any bar is drawn."""
    bars = []

    def progress(fraction: float, message: str) -> None:
        if not bars:
            from tqdm import tqdm

            bars.append(tqdm(total=100, desc=desc, bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"))
        bars[0].n = int(round(100 * min(max(fraction, 0.0), 1.0)))
        bars[0].set_postfix_str(message, refresh=False)
        bars[0].refresh()

    def close() -> None:
        for bar in bars:
            bar.close()

    return progress, close


def add_decompose_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``python -m gendef decompose``."""
    from .decomposition import DEFAULT_STEPS

    parser.add_argument("input", metavar="INPUT", help="video file (mp4, avi, mov, webm, gif) or folder of png/jpg frames")
    parser.add_argument("--out", required=True, help="output .npz (canonical image + grid)")
    parser.add_argument("--start", type=int, default=0, help="first frame of the clip (default 0)")
    parser.add_argument("--frames", type=int, default=None, help="number of frames (default: all from --start, up to 3600; a clip that one canvas cannot explain is split into segments)")
    parser.add_argument("--size", type=int, default=256, help="long side of the working resolution (default 256)")
    parser.add_argument("--steps", type=int, default=None, help=f"optimisation steps (default {DEFAULT_STEPS}; fewer is faster)")
    parser.add_argument("--canvas-scale", type=float, default=None, help="canonical pixels per frame pixel, 1 to 4 (default: from the motion, 1 for pans)")
    parser.add_argument("--layers", default="auto", help="auto (default: 1 to 3 chosen from the clip, never worse than one canvas) or most layers: 1 = one smooth canvas, 2-3 = independent movers get their own region of the canonical image")
    parser.add_argument(
        "--output-size", default="source",
        help="size of the output frames and canonical: source (default), 1080p, 720p, working, WxH or a long side; "
        "the motion is fitted at --size, the canonical is rebuilt from the full-size frames",
    )
    parser.add_argument(
        "--refine", type=float, default=0.25, metavar="SHARE",
        help="whole clips: split and refit the spans whose worst frame the fit explains poorly, refitting at most "
        "SHARE x the clip's frames (default 0.25; 0: off)",
    )
    parser.add_argument("--device", default="cpu", help="where the optimisation runs: cpu (default), cuda, cuda:N")
    parser.add_argument("--threads", type=int, default=1, help="torch threads during the fit (default 1: its many small ops gain little from more)")
    parser.add_argument("--video", default=None, help="also write the reconstruction as .mp4/.gif")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def cmd_decompose(args) -> int:
    """``decompose``: the whole clip by default, split into segments where one canvas stops
    explaining it; raises DecomposeError (one line) on bad input."""
    from .decomposition.clip import decompose_clip
    from .decomposition.refine import Refinement
    from .errors import DecomposeError

    out = Path(args.out)
    if out.suffix.lower() != ".npz":
        raise DecomposeError(f"--out must end in .npz, got {args.out}")
    if args.size is not None and args.size < 16:
        raise DecomposeError(f"--size must be at least 16, got {args.size}")
    if args.steps is not None and args.steps < 0:
        raise DecomposeError(f"--steps must be >= 0, got {args.steps}")
    if args.threads < 1:
        raise DecomposeError(f"--threads must be >= 1, got {args.threads}")
    if not 0 <= args.refine <= 1:
        raise DecomposeError(f"--refine must be a share of the clip's frames in [0, 1] (0: off), got {args.refine}")
    refinement = Refinement(budget=args.refine) if args.refine > 0 else None
    bar, close = (None, lambda: None) if args.quiet else _progress_bar("decompose")
    progress = None if bar is None else (lambda i, n, m: bar(i / n if n else 0.0, m))
    try:
        vid = decompose_clip(
            args.input, start=args.start, frames=args.frames, size=args.size, steps=args.steps,
            progress=progress, canvas_scale=args.canvas_scale, device=args.device, output_size=args.output_size,
            layers=args.layers, threads=args.threads, refinement=refinement,
        )
    finally:
        close()
    out.parent.mkdir(parents=True, exist_ok=True)
    path = vid.save(out)
    if hasattr(vid, "segments"):
        return _report_segments(vid, path, args.video)
    if args.video:
        vid.to_video(args.video)
    h, w = vid.frame_size
    full = f", {vid.metadata['psnr_full']:.2f} dB at {w}x{h}" if "psnr_full" in vid.metadata else ""
    print(
        f"wrote {path}: {vid.num_frames} frames {w}x{h} (motion fitted at {vid.grid_size[1]}x{vid.grid_size[0]}), "
        f"canonical {vid.canvas_size[1]}x{vid.canvas_size[0]}, PSNR {vid.metadata['psnr']:.2f} dB at the working size{full} "
        f"in {vid.metadata['seconds']:.1f} s; {vid.metadata.get('layers_reason', '')}"
    )
    return 0


def _report_segments(vid, path, video) -> int:
    if video:
        vid.to_video(video)  # streamed frame by frame, as for one segment
    h, w = vid.frame_size
    worst = min(v.metadata["psnr"] for v in vid.segments)
    note = f"; {vid.metadata['output_note']}" if "output_note" in vid.metadata else ""
    print(
        f"wrote {path}: {vid.num_frames} frames {w}x{h} in {len(vid.segments)} segments ({len(vid.cuts)} cuts), "
        f"PSNR per segment {worst:.2f} dB at worst, in {vid.metadata['seconds']:.1f} s{note}"
    )
    return 0


# ------------------------------------------------------------------------- parser
def _add_export_options(parser: argparse.ArgumentParser, audio: bool = True) -> None:
    """--fps (and --audio) for the commands that write a video."""
    parser.add_argument("--fps", type=float, default=None, help="frame rate of the written video (default: the video's own)")
    if audio:
        parser.add_argument("--audio", default="auto", metavar="FILE|none",
                            help="sound for .mp4: default the source clip's span recorded by decompose (if any), "
                            "'none' for silence, or a media file")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gendef", description="GenDeF: videos as a canonical image + deformation field.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("sample", help="sample a video from a GenDeF checkpoint into a CanonicalVideo .npz")
    s.add_argument("--checkpoint", help="folder with config.json + model.safetensors, or a Hub repo id (default: the shipped model)")
    s.add_argument("--seed", type=int, default=0, help="canonical (content) seed")
    s.add_argument("--motion-seed", type=int, default=None, help="motion seed (default: same as --seed); change it for new motion, same content")
    s.add_argument("--frames", type=int, default=16, help="number of frames (default 16)")
    s.add_argument("--truncation", type=float, default=1.0, help="truncation psi (default 1.0)")
    _add_export_options(s, audio=False)
    s.add_argument("--out", required=True, help="output .npz")
    s.add_argument("--video", help="also write an .mp4 or .gif")
    s.add_argument(
        "--output-size", default=None,
        help="export upscaled: 720p, 1080p, WxH or a long side (grid upsampled, canonical upscaled once, bicubic; "
        "labelled as upscaling in the metadata). Default: the generated size",
    )
    s.set_defaults(func=cmd_sample)

    r = sub.add_parser("render", help="render a CanonicalVideo (or segmented) .npz to .mp4/.gif")
    r.add_argument("doc", help="CanonicalVideo .npz, or a segmented clip's .npz")
    r.add_argument("--out", required=True, help="output .mp4 or .gif")
    _add_export_options(r)
    r.set_defaults(func=cmd_render)

    g = sub.add_parser("propagate", help="propagate an edited canonical image (RGB or RGBA overlay) through the video")
    g.add_argument("doc", help="CanonicalVideo .npz, or a segmented clip's .npz (the edit is carried along its segments)")
    g.add_argument("--image", required=True, help="edited canonical image, or frame N with --frame (.png; RGBA = overlay on the original)")
    g.add_argument("--out", required=True, help="output .mp4/.gif, or .npz for an edited CanonicalVideo")
    g.add_argument("--frame", type=int, default=None, metavar="N",
                   help="the image is an edit of frame N (frame size; RGBA = overlay): it is carried to the canonical image through the grid")
    g.add_argument("--resize", action="store_true", help="scale the image to the canonical (or frame) size if it differs")
    g.add_argument("--segment", type=int, default=None, metavar="K",
                   help="a segmented clip: the image edits segment K's canonical image (default 0)")
    _add_export_options(g)
    g.set_defaults(func=cmd_propagate)

    t = sub.add_parser("track", help="track points given on the canonical image (or frame 0) through the video")
    t.add_argument("doc", help="CanonicalVideo .npz, or a segmented clip's .npz (points are handed over at its boundaries)")
    t.add_argument("--points", required=True, help="'x,y;x,y' in canonical pixels (or frame-0 pixels with --frame0)")
    t.add_argument("--frame0", action="store_true", help="points are given on frame 0")
    t.add_argument("--segment", type=int, default=None, metavar="K",
                   help="a segmented clip: the points are on segment K's canonical image (default 0)")
    t.add_argument("--json", help="write trajectories as JSON here")
    t.set_defaults(func=cmd_track)

    d = sub.add_parser("decompose", help="decompose your own video into a CanonicalVideo .npz")
    add_decompose_arguments(d)
    d.set_defaults(func=cmd_decompose)
    for command in sub.choices.values():
        command.add_argument("--verbose", action="store_true", help="let the video decoders (OpenCV, ffmpeg) log")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .video.reader import set_verbose

    set_verbose(args.verbose)
    try:
        return int(args.func(args) or 0)
    except (GenDeFError, OSError) as e:
        if os.environ.get("GENDEF_DEBUG"):
            raise
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

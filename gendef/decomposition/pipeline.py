"""``decompose``: a clip -> CanonicalVideo (checks, working size, fit, metadata)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..video.canonical_video import CanonicalVideo
from .fit import FitSettings, ProgressFn
from .layer_choice import fit_working_size
from .quality import psnr
from . import inputs
from .inputs import as_float_frames, check_memory, working_frames, working_size
from ..errors import DecomposeError
from ..threads import torch_threads

DEFAULT_STEPS = 140


def _check_device(device) -> str:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DecomposeError(f"bad device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DecomposeError(f"device {device!r} asked for but CUDA is not available here; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise DecomposeError(f"device must be cpu or cuda, got {device!r}")
    return str(dev)


def _settings(video_hw: tuple, steps, canvas_scale, margin, stride, device, **weights) -> FitSettings:
    if steps is None:
        steps = DEFAULT_STEPS
    if steps < 0:
        raise DecomposeError(f"steps must be >= 0, got {steps}")
    if canvas_scale is not None and not 1 <= canvas_scale <= 4:
        raise DecomposeError(f"canvas_scale must be between 1 and 4 (or None: from the motion), got {canvas_scale}")
    if not 1 <= weights["layers"] <= 4:
        raise DecomposeError(f"layers must be 1 to 4 or 'auto', got {weights['layers']}")
    if stride < 1:
        raise DecomposeError(f"stride must be >= 1, got {stride}")
    if margin is None:
        margin = max(4, int(round(0.06 * max(video_hw))))
    return FitSettings(steps=int(steps), canvas_scale=None if canvas_scale is None else float(canvas_scale), margin=int(margin), stride=int(stride), device=_check_device(device), **weights)


AUTO_MOST_LAYERS = 3


def _layers(layers) -> tuple:
    """``layers`` ("auto", or 1 to 4) -> (auto, most layers)."""
    if isinstance(layers, str):
        if layers.strip().lower() == "auto":
            return True, AUTO_MOST_LAYERS
        try:
            layers = int(layers)
        except ValueError:
            raise DecomposeError(f"layers must be 1 to 4 or 'auto', got {layers!r}") from None
    if isinstance(layers, bool) or not isinstance(layers, (int, np.integer)):
        raise DecomposeError(f"layers must be 1 to 4 or 'auto', got {layers!r}")
    return False, int(layers)


def decompose(
    frames,
    *,
    size: Optional[int] = None,
    steps: Optional[int] = None,
    canvas_scale: Optional[float] = None,
    margin: Optional[int] = None,
    stride: int = 4,
    fps: float = 16.0,
    smooth_weight: float = 0.02,
    reg_weight: float = 1.0,
    canonical_weight: float = 0.2,
    robust: Optional[float] = None,
    layers="auto",
    progress: Optional[ProgressFn] = None,
    threads: Optional[int] = None,
    device: str = "cpu",
    output_size=None,
) -> CanonicalVideo:
    """Fit a CanonicalVideo to frames ([T, H, W, 3], uint8 or float in [0, 1]).

    size: long side of the working resolution (None keeps the input size);
    steps: optimisation steps in total over the two scales (default 140);
    canvas_scale: canonical pixels per frame pixel; None (default) takes the largest
    magnification of any frame relative to the reference (1 for pans, more for zooms):
    a finer canvas keeps sub-pixel detail of synthetic renders (2 gives +8 to 15 dB on
    them) but leaves a dotted texture in the canonical image of real footage;
    robust: colour error at which a pixel's weight in the fit halves, so occluders and
    movers do not drag the canonical image (default 0.1 with layers, else off: on
    real footage with one canvas it costs 3-4 dB); layers: "auto" (default) or most
    layers (1 = one smooth canvas; 2 and 3 let independent movers get their own region
    of the canonical image, found from what one canvas cannot explain; the grid jumps
    there). "auto" fits one canvas, tries up to 3 layers only where blobs move on their
    own, and keeps the layers only if they beat one canvas by 0.5 dB; metadata
    ``layers_chosen`` and ``layers_reason`` say what was chosen and why;
    margin: extra canvas border in frame pixels around everything the motion
    shows (default 6% of the long side); stride: spacing in frame pixels of the
    residual field's control points; canonical_weight: curvature prior on the
    canonical (higher = cleaner canonical, lower PSNR); progress(fraction, message)
    is called as work advances, with the current reconstruction PSNR in the message.
    threads: torch threads during the fit, restored after it (default None: the
    caller's setting, untouched). The CLI passes 1 (``--threads``): the work is many
    small memory-bound ops, and on a shared 2-core machine two OpenMP threads spin
    against each other.
    device: where the optimisation runs ("cpu", "cuda", "cuda:1"); flow stays on the CPU.
    output_size: None keeps the working size; "source", "1080p", "720p", "WxH" or a long
    side gives frames of that size and a canonical built from the full-size frames
    (``gendef.video.fullsize``; metadata ``psnr_full``).
    """
    start_time = time.perf_counter()
    video = np.asarray(frames)
    as_float_frames(video[:0])  # shape and dtype; the frames become float at the working size, one at a time
    t_count = video.shape[0]
    if t_count < 2:
        raise DecomposeError(f"need at least 2 frames to decompose, got {t_count}")
    h, w = working_size(video.shape[1], video.shape[2], size)
    if min(h, w) < 8:
        raise DecomposeError(f"frames are too small ({w}x{h}); need at least 8x8 pixels")
    auto, most = _layers(layers)
    settings = _settings(
        (h, w), steps, canvas_scale, margin, stride, device,
        smooth_weight=smooth_weight, reg_weight=reg_weight, canonical_weight=canonical_weight,
        robust=(0.1 if most > 1 and not auto else 0.0) if robust is None else float(robust), layers=most,
        auto_layers=auto, layered_robust=0.1 if robust is None else float(robust),
    )
    check_memory(t_count, h, w, canvas_scale or 2.0)
    if output_size is not None:  # a bad choice fails before the fit, not after it
        from ..video.fullsize import resolve_output_size

        resolve_output_size(output_size, video.shape[1:3], (h, w))
    video = working_frames(video, (h, w))
    report = progress or (lambda f, m: None)
    with torch_threads(threads):
        vid = fit_working_size(video, settings, fps=fps, progress=report)
    final = psnr(vid.frames(), video)
    vid.metadata["psnr"] = round(final, 3)
    if "layers_reason" not in vid.metadata:
        n = len(vid.metadata.get("layers", [[0]]))
        vid.metadata.update({"layers_chosen": n, "layers_reason": f"{n} layer{'s' if n > 1 else ''}: layers={most} asked for"})
    if output_size is not None:
        from ..video.fullsize import decompose_output

        vid = decompose_output(vid, frames, output_size, progress=lambda f, m: report(0.95 + 0.05 * f, m))
    vid.metadata["seconds"] = round(time.perf_counter() - start_time, 2)
    report(1.0, f"done: PSNR {final:.2f} dB")
    return vid


def decompose_file(
    path,
    start: int = 0,
    frames: Optional[int] = None,
    size: int = 256,
    steps: Optional[int] = None,
    progress: Optional[ProgressFn] = None,
    info=None,
    **kwargs,
) -> CanonicalVideo:
    """Read a clip (video file, gif or folder of frames) and decompose it.

    ``start``/``frames`` pick the clip, ``size`` is the long side of the working
    resolution; the source fps is kept. Sizes are checked from the header before anything
    is decoded; without a full-size output the frames are scaled to the working size as
    they are decoded, so a huge source never sits in memory whole. ``info``: the clip's
    header when the caller has probed it already (``gendef.video.reader.probe``); the
    output size is decided here once, from the header, and passed on as "WxH".
    """
    from ..errors import VideoIOError
    from ..video.audio import source_audio
    from ..video.reader import probe, read_video

    p = Path(path)
    if start < 0:
        raise DecomposeError(f"start must be >= 0, got {start}")
    if frames is not None and frames < 2:
        raise DecomposeError(f"need at least 2 frames to decompose, got --frames {frames}")
    try:
        info = probe(p) if info is None else info
        plan = _decode_plan(info, size, kwargs.get("output_size"))
        out_hw = plan.pop("output_hw")
        if out_hw is not None:
            kwargs["output_size"] = f"{out_hw[1]}x{out_hw[0]}"
        need = info.decoded_bytes(start, frames, itemsize=4 if plan["dtype"] == "float32" else 1)
        if plan["resize_to"] is not None:
            need = need * (plan["resize_to"][0] * plan["resize_to"][1]) // max(1, info.height * info.width)
        if need > 0.5 * inputs.available_memory():
            raise DecomposeError(f"{path}: clip too large for memory ({need / 2**30:.1f} GiB decoded); pick fewer frames with --frames")
        video, fps = read_video(p, start=start, num_frames=frames, info=info, **plan)
    except VideoIOError as e:
        raise DecomposeError(str(e)) from None
    vid = decompose(video, size=size, steps=steps, fps=fps, progress=progress, **kwargs)
    vid.metadata.update({"source_path": str(path), "start": int(start), "source_size": [info.height, info.width]})
    sound = source_audio(p, start / fps, len(video) / fps) if p.is_file() else None
    if sound:
        vid.metadata["audio"] = sound  # where the clip's sound is (paths only), for exports
    return vid


def _decode_plan(info, size: Optional[int], output_size) -> dict:
    """How to decode: at the working size (float, exactly what ``decompose`` would resize to),
    or, for a full-size output, at the output size (never larger than the source), refused
    from the header when that full-size canonical could not be built; ``output_hw``: that
    output size (None for the working size)."""
    from ..video.fullsize import check_canonical_budget, resolve_output_size

    work = working_size(info.height, info.width, size)
    if output_size is None or str(output_size).strip().lower() == "working":
        return {"resize_to": work, "dtype": "float32", "output_hw": None}
    hw = resolve_output_size(output_size, (info.height, info.width), work)
    check_canonical_budget(hw)
    smaller = hw[0] * hw[1] < info.height * info.width
    return {"resize_to": hw if smaller else None, "dtype": "uint8", "output_hw": hw}

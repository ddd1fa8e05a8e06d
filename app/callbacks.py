"""Studio callbacks: plain functions of (state, widget values) -> widget values.

They are what the Blocks wire up, and they are unit-tested without a browser.
All numbers are computed in ``gendef`` (CanonicalVideo, gendef.viz, gendef.editing);
here we only validate input, call those, and write files for the widgets.
User mistakes surface as one-line ``gr.Error`` toasts, never a dead page.
"""
import functools
import json
import logging
import time
from pathlib import Path
from typing import Optional

import gradio as gr
import numpy as np

from gendef.video import CanonicalVideo, CanonicalVideoError, identity_grid
from gendef.videoio import VideoIOError, to_uint8

from .models import ModelUnavailable, get_model
from .state import Result, StudioState

log = logging.getLogger("gendef.studio")

MIN_FRAMES, MAX_FRAMES = 16, 128
MAX_UPLOAD_MB = 50
MAX_CLIP_SECONDS = 600
MIN_DECOMPOSE_SIZE, MAX_DECOMPOSE_SIZE = 64, 256
MAX_FRAME_SIDE, MAX_CANVAS_SIDE = 512, 1024
MAX_DECOMPOSE_STEPS = 2000
DISPLAY_SIZE = 512
EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
EXAMPLE_CLIP = EXAMPLES / "astronaut_pan.mp4"
EXAMPLE_NPZ = EXAMPLES / "astronaut_pan.npz"
VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".gif")

_USER_ERRORS = (CanonicalVideoError, VideoIOError, ModelUnavailable, ValueError, FileNotFoundError)


def _one_line(msg) -> str:
    text = " ".join(str(msg).split())
    return text if len(text) <= 400 else text[:397] + "..."


def friendly(fn):
    """Turn every failure into a one-line UI error so the page never dies."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except _USER_ERRORS as e:
            raise gr.Error(_one_line(e), print_exception=False) from None
        except Exception as e:
            if e.__class__.__name__ in ("StylizeUnavailable", "SegmentUnavailable", "DecomposeError"):
                raise gr.Error(_one_line(e), print_exception=False) from None
            log.exception("studio callback %s failed", fn.__name__)
            raise gr.Error(_one_line(f"Something went wrong ({e.__class__.__name__}: {e})")) from None

    return wrapper


def _viz():
    from gendef import viz

    return viz


# ---------------------------------------------------------------------------------------
# helpers shared by the callbacks (glue only)
# ---------------------------------------------------------------------------------------
def _require_video(state: Optional[StudioState]) -> StudioState:
    if not isinstance(state, StudioState) or state.video is None:
        raise gr.Error("No video yet: sample one, upload a clip or open a .npz first.", print_exception=False)
    return state


def _check_frames(num_frames) -> int:
    try:
        n = int(num_frames)
    except (TypeError, ValueError):
        raise gr.Error(f"Frames must be a whole number between {MIN_FRAMES} and {MAX_FRAMES}.") from None
    if not MIN_FRAMES <= n <= MAX_FRAMES:
        raise gr.Error(f"Frames must be between {MIN_FRAMES} and {MAX_FRAMES}, got {n}.", print_exception=False)
    return n


def _check_fps(fps) -> float:
    try:
        f = float(fps)
    except (TypeError, ValueError):
        raise gr.Error("fps must be a number.") from None
    if not 1.0 <= f <= 60.0:
        raise gr.Error(f"fps must be between 1 and 60, got {f:g}.", print_exception=False)
    return f


def display_scale(size: int) -> int:
    """Integer upscale factor so tiny canonical images are big enough to click and paint on."""
    return max(1, DISPLAY_SIZE // max(int(size), 1))


def to_canonical_xy(state: StudioState, index) -> tuple:
    """Display-pixel click (integer, from gr.SelectData) -> canonical (x, y), pixel centres at integers."""
    ix, iy = float(index[0]), float(index[1])
    hc, wc = state.video.canvas_size
    k = state.scale
    x = min(max((ix + 0.5) / k - 0.5, 0.0), wc - 1.0)
    y = min(max((iy + 0.5) / k - 0.5, 0.0), hc - 1.0)
    return (round(x, 3), round(y, 3))


def to_display_xy(state: StudioState, points) -> list:
    k = state.scale
    return [((x + 0.5) * k - 0.5, (y + 0.5) * k - 0.5) for x, y in points]


def _upscaled(state: StudioState, image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    if state.scale == 1:
        return image
    return _viz().resize_image(image, (h * state.scale, w * state.scale))


def _display_canonical(state: StudioState) -> np.ndarray:
    return to_uint8(_upscaled(state, state.video.canonical))


def _write_mp4(state: StudioState, frames: np.ndarray, name: str) -> str:
    from gendef.videoio import write_video

    return str(write_video(frames, state.new_path(name), fps=state.video.fps))


def _status(state: StudioState, extra: str = "") -> str:
    v = state.video
    h, w = v.frame_size
    hc, wc = v.canvas_size
    line = f"**{state.source}** — {v.num_frames} frames, {w}x{h} px, canonical {wc}x{hc}, {v.fps:g} fps"
    return line + (f"  \n{extra}" if extra else "")


def _loaded_outputs(state: StudioState, progress, notice: Optional[str] = None):
    """Everything the views show for a freshly loaded video (same order as ui.LOAD_OUTPUTS)."""
    v = state.video
    state.scale = display_scale(max(v.canvas_size))
    progress(0.8, desc="rendering views")
    video_path = _write_mp4(state, v.frames(), "video.mp4")
    field_path = _write_mp4(state, _viz().deformation_video(v), "deformation.mp4")
    canon = _display_canonical(state)
    strip = _viz().deformation_strip(v, num=4)
    editor = {"background": canon, "layers": [], "composite": canon}
    progress(1.0, desc="done")
    return (
        state,
        video_path,
        field_path,
        canon,
        strip,
        editor,
        canon,
        canon,
        None,
        None,
        None,
        "",
        "[]",
        "",
        _status(state),
        gr.update() if notice is None else notice,
        None,
    )


# ---------------------------------------------------------------------------------------
# 1. sources
# ---------------------------------------------------------------------------------------
def _sample(state, checkpoint, seed, num_frames, psi, fps, motion_seed, progress):
    state = state if isinstance(state, StudioState) else StudioState()
    n = _check_frames(num_frames)
    fps = _check_fps(fps)
    try:
        seed = int(seed)
        psi = float(psi)
    except (TypeError, ValueError):
        raise gr.Error("Seed must be a whole number and truncation ψ a number.") from None
    if seed < 0 or seed >= 2**31:
        raise gr.Error("Seed must be between 0 and 2147483647.", print_exception=False)
    if not 0.0 <= psi <= 1.5:
        raise gr.Error(f"Truncation ψ must be between 0 and 1.5, got {psi:g}.", print_exception=False)
    progress(0.0, desc="loading model")
    loaded = get_model(checkpoint, progress=progress)
    if loaded.model.resolution > MAX_FRAME_SIDE:
        raise gr.Error(
            f"{loaded.checkpoint} generates {loaded.model.resolution}px frames; the studio handles at most {MAX_FRAME_SIDE}px.",
            print_exception=False,
        )
    progress(0.3, desc=f"sampling {n} frames")
    video = loaded.model.sample(
        seed=seed,
        num_frames=n,
        truncation_psi=psi,
        motion_seed=motion_seed,
        fps=fps,
        progress=lambda f, msg="": progress(0.3 + 0.45 * float(f), desc=msg or "sampling"),
    )
    state.checkpoint = loaded.checkpoint
    state.seed = seed
    state.motion_seed = motion_seed
    label = "untrained demo model" if loaded.untrained else loaded.checkpoint
    motion = "" if motion_seed is None else f", motion seed {motion_seed}"
    state.set_video(video, f"Sampled: {label}, seed {seed}{motion}, ψ={psi:g}")
    return _loaded_outputs(state, progress, loaded.notice)


@friendly
def sample(state, checkpoint, seed, num_frames, psi, fps, progress=gr.Progress()):
    """Sample a new video (new canonical image and new motion)."""
    return _sample(state, checkpoint, seed, num_frames, psi, fps, None, progress)


@friendly
def new_motion(state, checkpoint, seed, num_frames, psi, fps, progress=gr.Progress()):
    """Fig. 6: same canonical image (same seed), new motion seed."""
    if isinstance(state, StudioState) and state.video is not None and state.checkpoint:
        base = state.motion_seed if state.motion_seed is not None else int(state.seed)
        return _sample(state, state.checkpoint, state.seed, num_frames, psi, fps, (base + 1) % 2**31, progress)
    return _sample(state, checkpoint, seed, num_frames, psi, fps, int(seed or 0) + 1, progress)


def _limit_video(video: CanonicalVideo) -> CanonicalVideo:
    h, w = video.frame_size
    hc, wc = video.canvas_size
    if max(h, w) > MAX_FRAME_SIDE or max(hc, wc) > MAX_CANVAS_SIDE:
        raise gr.Error(
            f"Video too large for the studio: frames {w}x{h} (max {MAX_FRAME_SIDE}), canonical {wc}x{hc} "
            f"(max {MAX_CANVAS_SIDE}).",
            print_exception=False,
        )
    if video.num_frames > MAX_FRAMES:
        gr.Warning(f"The file has {video.num_frames} frames; the studio keeps the first {MAX_FRAMES}.")
        video = CanonicalVideo(video.canonical, video.grid[:MAX_FRAMES], video.fps, dict(video.metadata))
    return video


def _upload_path(file) -> Path:
    if file is None:
        raise gr.Error("Choose a file first.", print_exception=False)
    path = Path(getattr(file, "name", file))
    if not path.is_file():
        raise gr.Error(f"{path.name}: upload not found, please upload it again.", print_exception=False)
    size_mb = path.stat().st_size / 2**20
    if size_mb > MAX_UPLOAD_MB:
        raise gr.Error(f"{path.name} is {size_mb:.0f} MB; the limit is {MAX_UPLOAD_MB} MB.", print_exception=False)
    return path


def clip_length(path: Path) -> tuple:
    """(frames, fps) from the container header, without decoding; (0, 0.0) when unknown."""
    if path.suffix.lower() == ".gif":
        from PIL import Image

        with Image.open(path) as im:
            n = getattr(im, "n_frames", 1)
            ms = im.info.get("duration") or 100
        return int(n), 1000.0 / float(ms)
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0, 0.0
        return max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0), float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()


def _check_clip(path: Path, start: int, n: int) -> None:
    frames, fps = clip_length(path)
    if frames and fps > 0 and frames / fps > MAX_CLIP_SECONDS:
        raise gr.Error(
            f"{path.name} lasts {frames / fps / 60:.0f} min; the limit is {MAX_CLIP_SECONDS // 60} min. Trim it first.",
            print_exception=False,
        )
    if frames and start >= frames:
        raise gr.Error(f"Start frame {start} is past the end of {path.name} ({frames} frames).", print_exception=False)
    if frames and frames - start > n:
        gr.Info(f"Using frames {start}..{start + n - 1} of {frames}.")


@friendly
def open_npz(state, file, progress=gr.Progress()):
    """Re-open a CanonicalVideo saved by the studio, the CLI or the Python API."""
    state = state if isinstance(state, StudioState) else StudioState()
    path = _upload_path(file)
    if path.suffix.lower() != ".npz":
        raise gr.Error(f"{path.name}: expected a .npz CanonicalVideo file.", print_exception=False)
    progress(0.1, desc="reading")
    video = _limit_video(CanonicalVideo.load(path))
    state.checkpoint = ""
    state.set_video(video, f"Opened {path.name}")
    return _loaded_outputs(state, progress)


@friendly
def open_example(state, progress=gr.Progress()):
    """One click to a real (decomposed) video, even offline and without a trained model."""
    if not EXAMPLE_NPZ.is_file():
        raise gr.Error("The example file is missing from assets/examples.", print_exception=False)
    return open_npz.__wrapped__(state, str(EXAMPLE_NPZ), progress)


@friendly
def decompose_upload(state, file, num_frames, size, start=0, steps=200, progress=gr.Progress()):
    """Real clip -> CanonicalVideo with the decomposer (gendef.decompose)."""
    state = state if isinstance(state, StudioState) else StudioState()
    path = _upload_path(file)
    if path.suffix.lower() not in VIDEO_EXTS:
        raise gr.Error(f"{path.name}: unsupported type; upload one of {', '.join(VIDEO_EXTS)}.", print_exception=False)
    n = _check_frames(num_frames)
    try:
        size = int(size)
        start = int(start or 0)
        steps = int(steps)
    except (TypeError, ValueError):
        raise gr.Error("Size, start frame and steps must be whole numbers.") from None
    if not 0 <= steps <= MAX_DECOMPOSE_STEPS:
        raise gr.Error(f"Steps must be between 0 and {MAX_DECOMPOSE_STEPS}.", print_exception=False)
    if not MIN_DECOMPOSE_SIZE <= size <= MAX_DECOMPOSE_SIZE:
        raise gr.Error(f"Size must be between {MIN_DECOMPOSE_SIZE} and {MAX_DECOMPOSE_SIZE} px.", print_exception=False)
    if start < 0:
        raise gr.Error("Start frame must be 0 or more.", print_exception=False)
    _check_clip(path, start, n)
    try:
        from gendef.decompose import decompose_file
    except ImportError:
        raise gr.Error(
            "The decomposer (gendef.decompose) is not part of this build yet; open a .npz or sample instead.",
            print_exception=False,
        ) from None
    progress(0.0, desc="decomposing")

    def report(fraction, message=""):
        progress(min(max(float(fraction), 0.0), 1.0) * 0.75, desc=message or "decomposing")

    video = _limit_video(decompose_file(str(path), start=start, frames=n, size=size, steps=steps, progress=report))
    state.checkpoint = ""
    state.set_video(video, f"Decomposed {path.name} (frames {start}..{start + video.num_frames - 1})")
    return _loaded_outputs(state, progress)


# ---------------------------------------------------------------------------------------
# results shared by all editors
# ---------------------------------------------------------------------------------------
def _finish(state: StudioState, result: Result, progress, message: str):
    """Write the result videos + the numeric frames file; returns (state, result, comparison, files, status)."""
    state.result = result
    progress(0.85, desc="encoding video")
    original = state.video.frames()
    result_path = _write_mp4(state, result.frames, f"{result.kind}.mp4")
    comparison = _viz().side_by_side(original, result.frames)
    comparison_path = _write_mp4(state, comparison, f"{result.kind}-vs-original.mp4")
    frames_path = state.new_path(f"{result.kind}-frames.npz")
    # uint8 and uncompressed: compressing float frames cost 70% of "apply" at 256 px x 128 frames
    np.savez(frames_path, original=to_uint8(original), edited=to_uint8(result.frames))
    files = [result_path, str(frames_path)] + [str(p) for p in result.extra.get("files", [])]
    progress(1.0, desc="done")
    return state, result_path, comparison_path, files, _status(state, message)


def _composite(video: CanonicalVideo, rgba: np.ndarray) -> np.ndarray:
    """The scribble baked into the canonical image (identity warp = CanonicalVideo's own compositing)."""
    hc, wc = video.canvas_size
    still = CanonicalVideo(video.canonical, identity_grid(hc, wc, 1), video.fps)
    return still.render(rgba)[0]


# ---------------------------------------------------------------------------------------
# 3a. scribble
# ---------------------------------------------------------------------------------------
@friendly
def apply_scribble(state, editor_value, progress=gr.Progress()):
    """Fig. 5a: paint on the canonical image, the grid carries the paint through every frame."""
    state = _require_video(state)
    if not isinstance(editor_value, dict) or editor_value.get("background") is None:
        raise gr.Error("The editor is empty: sample or open a video first.", print_exception=False)
    layers = [layer for layer in (editor_value.get("layers") or []) if layer is not None]
    if not layers:
        raise gr.Error("Nothing drawn yet: paint on the canonical image with the brush first.", print_exception=False)
    progress(0.1, desc="flattening layers")
    viz = _viz()
    rgba = viz.rgba_from_editor_layers(np.asarray(editor_value["background"]), [np.asarray(x) for x in layers])
    rgba = viz.resize_image(rgba, state.video.canvas_size)
    painted = int((rgba[..., 3] > 0).sum())
    if painted == 0:
        raise gr.Error("Nothing drawn yet: paint on the canonical image with the brush first.", print_exception=False)
    progress(0.3, desc="propagating through the grid")
    t0 = time.perf_counter()
    frames = state.video.render(rgba)
    canonical = _composite(state.video, rgba)
    edit_path = state.new_path("scribble-rgba.png")
    from PIL import Image

    Image.fromarray(to_uint8(rgba)).save(edit_path)
    result = Result("scribble", frames, canonical, {"edit_rgba": rgba, "files": [edit_path]})
    msg = f"Scribble applied: {painted} canonical pixels painted, propagated to {len(frames)} frames in {time.perf_counter() - t0:.2f} s."
    return _finish(state, result, progress, msg)


# ---------------------------------------------------------------------------------------
# 3b. stylize (ControlNet) and offline looks
# ---------------------------------------------------------------------------------------
_OVERRIDES: dict = {}


def stylize_status(control: str = "canny", fast: bool = True) -> str:
    """Plain-language availability line for the Stylize tab (never downloads)."""
    try:
        from gendef.editing import stylize as st
    except ImportError as e:
        return f"**ControlNet stylization unavailable** in this build ({e}). The offline looks below still work."
    if ("stylizer", control, bool(fast)) in _OVERRIDES:
        return f"ControlNet ({control}) pipeline preloaded."
    ok, msg = st.weights_status(control or "canny", fast=bool(fast))
    if ok:
        return f"ControlNet ({control}) weights found locally. {msg}"
    return f"**ControlNet stylization is not ready.** {msg}"


def _get_stylizer(control: str, fast: bool, progress):
    """The process-wide pipeline from gendef.editing (downloads on first use unless offline)."""
    from gendef.editing import stylize as st

    if ("stylizer", control, bool(fast)) in _OVERRIDES:
        return _OVERRIDES[("stylizer", control, bool(fast))]

    def report(fraction, desc=""):
        progress(0.05 + 0.25 * float(fraction), desc=desc or "loading ControlNet")

    return st.get_stylizer(control=control, fast=fast, progress=report)


def set_stylizer(stylizer, control: str = "canny", fast: bool = True) -> None:
    """Install an already-built Stylizer (tests, or a Space that preloads one)."""
    _OVERRIDES[("stylizer", control, bool(fast))] = stylizer


@friendly
def apply_stylize(state, prompt, negative, control, strength, steps, seed, fast, progress=gr.Progress(track_tqdm=True)):
    """Fig. 5b/5c: ControlNet img2img on the canonical image, then re-warp."""
    state = _require_video(state)
    prompt = (prompt or "").strip()
    if not prompt:
        raise gr.Error("Write a prompt describing the style, e.g. 'a watercolor painting'.", print_exception=False)
    try:
        strength, steps, seed = float(strength), int(steps), int(seed)
    except (TypeError, ValueError):
        raise gr.Error("Strength, steps and seed must be numbers.") from None
    if not 0.05 <= strength <= 1.0 or not 1 <= steps <= 50:
        raise gr.Error("Strength must be in 0.05..1 and steps in 1..50.", print_exception=False)
    progress(0.0, desc="loading ControlNet")
    stylizer = _get_stylizer(control or "canny", fast, progress)

    def report(fraction, desc=""):
        progress(0.3 + 0.5 * float(fraction), desc=desc or "diffusing")

    progress(0.3, desc="stylizing the canonical image")
    guidance = 1.0 if fast else 7.5  # LCM runs without classifier-free guidance
    styled = stylizer(
        state.video.canonical,
        prompt,
        negative_prompt=negative or "",
        strength=strength,
        steps=steps,
        guidance=guidance,
        seed=seed,
        progress=report,
    )
    frames = state.video.render(styled)
    result = Result("stylize", frames, styled)
    return _finish(state, result, progress, f"Stylized ({control}, {steps} steps, strength {strength:g}): “{prompt}”.")


def look_names() -> list:
    try:
        from gendef.editing.looks import LOOKS
    except ImportError:
        return []
    return list(LOOKS)


@friendly
def apply_look(state, name, strength, progress=gr.Progress()):
    """Offline OpenCV looks: always available, no weights."""
    state = _require_video(state)
    from gendef.editing.looks import apply_look as look

    if not name:
        raise gr.Error("Pick a look first.", print_exception=False)
    progress(0.2, desc=f"applying {name}")
    styled = look(state.video.canonical, name, strength=float(strength))
    frames = state.video.render(styled)
    return _finish(state, Result("look", frames, styled), progress, f"Look “{name}” (strength {float(strength):g}) applied.")


# ---------------------------------------------------------------------------------------
# 3c. segment
# ---------------------------------------------------------------------------------------
MASK_COLOR = (0.1, 0.5, 1.0)
SEG_SAM = "SAM (segment-anything)"
SEG_GRABCUT = "GrabCut (offline fallback)"


def segment_status() -> str:
    try:
        from gendef.editing import segment as sg
    except ImportError as e:
        return f"**SAM unavailable** in this build ({e}); GrabCut (offline fallback) is used."
    ok, msg = sg.sam_status()
    if ok:
        return f"SAM weights found locally. {msg}"
    tail = "" if "GrabCut" in msg else f" Use *{SEG_GRABCUT}* meanwhile."
    return f"**SAM weights are not available.** {msg}{tail}"


def default_segmenter() -> str:
    try:
        from gendef.editing import segment as sg

        return SEG_SAM if "segmenter" in _OVERRIDES or sg.sam_status()[0] else SEG_GRABCUT
    except ImportError:
        return SEG_GRABCUT


def set_segmenter(segmenter) -> None:
    """Install an already-built Segmenter (tests, or a preloaded Space)."""
    _OVERRIDES["segmenter"] = segmenter


def _get_segmenter():
    from gendef.editing import segment as sg

    return _OVERRIDES.get("segmenter") or sg.get_segmenter()


def _segment_view(state: StudioState):
    viz = _viz()
    canon = state.video.canonical
    if state.mask is not None:
        canon = viz.overlay_masks(canon[None], state.mask[None], color=MASK_COLOR, alpha=0.45)[0]
    pts = state.seg_positive + state.seg_negative + state.seg_box
    img = _upscaled(state, canon)
    if pts:
        disp = np.asarray(to_display_xy(state, pts), dtype=np.float32)[None]
        img = viz.draw_tracks(img[None], disp, np.ones(disp.shape[:2], bool), trail=0)[0]
    return to_uint8(img)


def _points_text(state: StudioState) -> str:
    def fmt(pts):
        return ", ".join(f"({x:g}, {y:g})" for x, y in pts) or "–"

    box = fmt(state.seg_box)
    return f"positive: {fmt(state.seg_positive)}  \nnegative: {fmt(state.seg_negative)}  \nbox corners: {box}"


def _run_segmentation(state: StudioState, backend: str):
    box = None
    if len(state.seg_box) == 2:
        (x0, y0), (x1, y1) = state.seg_box
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    if not state.seg_positive and box is None:
        state.mask = None
        return "Add a positive click (or two box corners) on the object."
    mask = None
    if backend == SEG_SAM:
        from gendef.editing.segment import SegmentUnavailable

        try:
            seg = _get_segmenter()
        except SegmentUnavailable as e:
            gr.Warning(f"SAM unavailable, using GrabCut instead: {_one_line(e)}")
        else:
            mask = seg.segment(state.video.canonical, positive=state.seg_positive, negative=state.seg_negative, box=box)
            label = "SAM"
    if mask is None:
        from gendef.editing.segment import grabcut_segment

        mask = grabcut_segment(state.video.canonical, state.seg_positive, state.seg_negative, box=box)
        label = "GrabCut (offline fallback, not SAM)"
    state.mask = np.asarray(mask, dtype=bool)
    if not state.mask.any():
        return f"{label}: no object found around the clicks; add positive clicks or two box corners around it."
    return f"{label}: mask covers {int(state.mask.sum())} canonical pixels."


@friendly
def segment_click(state, mode, backend, evt: gr.SelectData, progress=gr.Progress(track_tqdm=True)):
    """Each click refines the canonical mask immediately (SAM caches the image embedding)."""
    state = _require_video(state)
    if evt is None or evt.index is None:
        raise gr.Error("Click inside the image.", print_exception=False)
    xy = to_canonical_xy(state, evt.index)
    if mode == "negative":
        state.seg_negative.append(xy)
    elif mode == "box corner":
        state.seg_box = (state.seg_box + [xy])[-2:]
    else:
        state.seg_positive.append(xy)
    msg = _run_segmentation(state, backend)
    return state, _segment_view(state), _points_text(state) + "  \n" + msg


@friendly
def segment_clear(state):
    state = _require_video(state)
    state.seg_positive, state.seg_negative, state.seg_box, state.mask = [], [], [], None
    return state, _segment_view(state), _points_text(state)


@friendly
def apply_segment(state, progress=gr.Progress()):
    """Fig. 7b: one canonical mask -> per-frame masks, overlay and cut-out videos, PNG zip."""
    state = _require_video(state)
    if state.mask is None or not state.mask.any():
        raise gr.Error("No mask yet: click on the object in the canonical image first.", print_exception=False)
    viz = _viz()
    progress(0.2, desc="propagating the mask")
    masks = state.video.propagate_mask(state.mask)
    frames = state.video.frames()
    overlay = viz.overlay_masks(frames, masks, color=MASK_COLOR, alpha=0.45)
    cut = viz.cutout(frames, masks)
    progress(0.6, desc="writing masks")
    cut_path = _write_mp4(state, cut, "cutout.mp4")
    zip_path = viz.masks_to_zip(masks, state.new_path("masks.zip"))
    result = Result("segment", overlay, None, {"masks": masks, "cutout": cut, "files": [cut_path, zip_path]})
    return _finish(state, result, progress, f"Mask propagated to {len(masks)} frames (overlay shown; cut-out and PNG masks in the files).")


# ---------------------------------------------------------------------------------------
# 3d. track
# ---------------------------------------------------------------------------------------
TRACK_ON_CANONICAL = "canonical image"
TRACK_ON_FRAME0 = "frame 0"


@friendly
def track_view(state, where):
    """The picture the user clicks on for tracking: canonical image or frame 0."""
    state = _require_video(state)
    base = state.video.frames()[0] if where == TRACK_ON_FRAME0 else state.video.canonical
    img = _upscaled(state, base)
    if state.track_points and where != TRACK_ON_FRAME0:
        disp = np.asarray(to_display_xy(state, state.track_points), dtype=np.float32)[None]
        img = _viz().draw_tracks(img[None], disp, np.ones(disp.shape[:2], bool), trail=0)[0]
    return to_uint8(img)


@friendly
def track_click(state, where, evt: gr.SelectData, progress=gr.Progress()):
    """Fig. 7a: add a point, track every point through all frames, draw and export the trajectories."""
    state = _require_video(state)
    if evt is None or evt.index is None:
        raise gr.Error("Click inside the image.", print_exception=False)
    xy = to_canonical_xy(state, evt.index)
    if where == TRACK_ON_FRAME0:
        h, w = state.video.frame_size
        fx = min(max(xy[0], 0.0), w - 1.0)
        fy = min(max(xy[1], 0.0), h - 1.0)
        c = state.video.frame_to_canonical([(fx, fy)], 0)[0]
        xy = (round(float(c[0]), 3), round(float(c[1]), 3))
    if len(state.track_points) >= 32:
        raise gr.Error("At most 32 tracked points; clear them to start again.", print_exception=False)
    state.track_points.append(xy)
    return _track_result(state, where, progress)


def _track_result(state: StudioState, where, progress):
    viz = _viz()
    progress(0.2, desc="tracking")
    pos, vis = state.video.track(state.track_points)
    state.tracks = (pos, vis)
    frames = viz.draw_tracks(state.video.frames(), pos, vis)
    text = viz.tracks_to_json(pos, vis, state.video.fps)
    json_path = state.new_path("tracks.json")
    json_path.write_text(text)
    csv_path = state.new_path("tracks.csv")
    csv_path.write_text(viz.tracks_to_csv(pos, vis))
    result = Result("track", frames, None, {"files": [json_path, csv_path]})
    points = json.dumps([list(p) for p in state.track_points])
    visible = int(vis.sum())
    out = _finish(state, result, progress, f"Tracking {len(state.track_points)} point(s): visible in {visible} of {vis.size} point-frames.")
    return out + (text, points, track_view(state, where))


@friendly
def track_clear(state, where):
    state = _require_video(state)
    state.track_points, state.tracks = [], None
    return state, "", "[]", track_view(state, where)


# ---------------------------------------------------------------------------------------
# 4. export
# ---------------------------------------------------------------------------------------
@friendly
def export_all(state, which, progress=gr.Progress()):
    """mp4 + gif of the chosen video, the re-openable .npz, and the session's masks and trajectories."""
    state = _require_video(state)
    use_result = which == "result" and state.result is not None
    if which == "result" and state.result is None:
        gr.Warning("No edit applied yet: exporting the original video.")
    frames = state.result.frames if use_result else state.video.frames()
    tag = state.result.kind if use_result else "original"
    from gendef.videoio import write_video

    progress(0.1, desc="mp4")
    files = [_write_mp4(state, frames, f"{tag}.mp4")]
    progress(0.4, desc="gif")
    files.append(str(write_video(frames, state.new_path(f"{tag}.gif"), fps=state.video.fps)))
    progress(0.7, desc="npz")
    video = state.video
    if use_result and state.result.canonical is not None:
        video = state.video.with_canonical(state.result.canonical)
    meta = dict(video.metadata)
    meta["studio_source"] = state.source
    export = CanonicalVideo(video.canonical, video.grid, video.fps, meta)
    files.append(str(export.save(state.new_path(f"{tag}-canonical-video.npz"))))
    viz = _viz()
    if state.mask is not None and state.mask.any():
        progress(0.8, desc="masks")
        files.append(str(viz.masks_to_zip(state.video.propagate_mask(state.mask), state.new_path("masks.zip"))))
    if state.tracks is not None:
        pos, vis = state.tracks
        for name, text in (("tracks.json", viz.tracks_to_json(pos, vis, state.video.fps)), ("tracks.csv", viz.tracks_to_csv(pos, vis))):
            path = state.new_path(name)
            path.write_text(text)
            files.append(str(path))
    progress(1.0, desc="done")
    return files

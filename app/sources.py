"""Sources tab: sample from the model, decompose an uploaded clip, open a .npz or the example."""
from pathlib import Path
from typing import Optional

import gradio as gr

from gendef import decomposition, viz
from gendef.video import fullsize
from gendef.errors import GenDeFError
from gendef.video.canonical_video import CanonicalVideo
from gendef.video.reader import probe

from .errors import fail, friendly, number, require, whole_number
from .checkpoints import get_model
from .state import StudioState
from .views import EDIT_ON_CANONICAL, display_canonical, display_scale, editor_update, frame_slider, status_line, write_mp4

MIN_FRAMES, MAX_FRAMES = 16, 128
MAX_UPLOAD_MB = 50
MAX_CLIP_SECONDS = 600
MIN_DECOMPOSE_SIZE, MAX_DECOMPOSE_SIZE = 64, 256
MAX_GRID_SIDE = 512  # the motion (grid) the studio keeps: generated or working size
MAX_FRAME_SIDE, MAX_CANVAS_SIDE = 1920, 4096  # output size (1080p either way round) and full-size canonical
MAX_NPZ_GRID_BYTES = MAX_FRAMES * MAX_GRID_SIDE**2 * 2 * 4  # the most motion the studio keeps (256 MiB)
OUTPUT_SOURCE, OUTPUT_1080P, OUTPUT_720P, OUTPUT_WORKING = "source (≤ 1080p)", "1080p", "720p", "working size"
OUTPUT_SIZES = (OUTPUT_SOURCE, OUTPUT_1080P, OUTPUT_720P, OUTPUT_WORKING)
MAX_DECOMPOSE_STEPS = 2000
MAX_SEED = 2**31 - 1
EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
EXAMPLE_CLIP = EXAMPLES / "astronaut_pan.mp4"
EXAMPLE_NPZ = EXAMPLES / "astronaut_pan.npz"
VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".gif")


def loaded_views(state: StudioState, progress, notice=None) -> dict:
    """Everything the views show for a freshly loaded video; edits of the previous one are cleared."""
    v = state.video
    state.scale = display_scale(max(v.canvas_size))
    progress(0.8, desc="rendering views")
    canon = display_canonical(state)
    views = dict(
        state=state,
        video=write_mp4(state, state.preview.frames(), "video.mp4"),
        field=write_mp4(state, viz.deformation_video(state.preview), "deformation.mp4"),
        canonical=canon,
        strip=viz.deformation_strip(state.preview, num=4),
        editor=editor_update(canon),
        seg_image=canon,
        track_image=canon,
        result_video=None,
        comparison=None,
        result_files=None,
        track_json="",
        track_points="[]",
        seg_points="",
        status=status_line(state),
        export_files=None,
        scribble_on=EDIT_ON_CANONICAL,
        scribble_frame=frame_slider(state),
        seg_on=EDIT_ON_CANONICAL,
        seg_frame=frame_slider(state),
    )
    if notice is not None:
        views["notice"] = notice
    progress(1.0, desc="done")
    return views


def _fresh(state) -> StudioState:
    return state if isinstance(state, StudioState) else StudioState()


def _sample(state, checkpoint, seed, num_frames, psi, fps, motion_seed, progress, output_size=None) -> dict:
    state = _fresh(state)
    n = whole_number(num_frames, "Frames", MIN_FRAMES, MAX_FRAMES)
    fps = number(fps, "fps", 1, 60)
    seed = whole_number(seed, "Seed", 0, MAX_SEED)
    psi = number(psi, "Truncation ψ", 0.0, 1.5)
    progress(0.0, desc="loading model")
    loaded = get_model(checkpoint, progress=progress)
    res = loaded.model.resolution
    require(res <= MAX_GRID_SIDE, f"{loaded.checkpoint} generates {res}px frames; the studio handles at most {MAX_GRID_SIDE}px.")
    progress(0.3, desc=f"sampling {n} frames")
    video = loaded.model.sample(
        seed=seed,
        num_frames=n,
        truncation_psi=psi,
        motion_seed=motion_seed,
        fps=fps,
        progress=lambda f, msg="": progress(0.3 + 0.45 * float(f), desc=msg or "sampling"),
    )
    video, upscale_note = _sample_output(video, output_size)
    state.checkpoint, state.seed, state.motion_seed = loaded.checkpoint, seed, motion_seed
    label = "untrained demo model" if loaded.untrained else loaded.checkpoint
    motion = "" if motion_seed is None else f", motion seed {motion_seed}"
    state.set_video(video, f"Sampled: {label}, seed {seed}{motion}, ψ={psi:g}{upscale_note}")
    return loaded_views(state, progress, loaded.notice)


def _sample_output(video: CanonicalVideo, output_size) -> tuple:
    """Samples are generated at the model's size; 1080p / 720p exports are bicubic upscaling, said so."""
    if output_size not in (OUTPUT_1080P, OUTPUT_720P):
        return video, ""
    up = fullsize.upscale(video, fullsize.resolve_output_size(output_size, video.frame_size, video.grid_size))
    h, w = video.frame_size
    return up, f", upscaled (bicubic) from {w}x{h}"


@friendly
def sample(state, checkpoint, seed, num_frames, psi, fps, output_size=None, progress=gr.Progress()):
    """Sample a new video (new canonical image and new motion)."""
    return _sample(state, checkpoint, seed, num_frames, psi, fps, None, progress, output_size)


@friendly
def new_motion(state, checkpoint, seed, num_frames, psi, fps, output_size=None, progress=gr.Progress()):
    """Fig. 6: same canonical image (same seed), new motion seed."""
    if isinstance(state, StudioState) and state.video is not None and state.checkpoint:
        base = state.motion_seed if state.motion_seed is not None else int(state.seed)
        return _sample(state, state.checkpoint, state.seed, num_frames, psi, fps, (base + 1) % 2**31, progress, output_size)
    seed = whole_number(seed or 0, "Seed", 0, MAX_SEED)
    return _sample(state, checkpoint, seed, num_frames, psi, fps, seed + 1, progress, output_size)


def _limit_video(video: CanonicalVideo) -> CanonicalVideo:
    h, w = video.frame_size
    hc, wc = video.canvas_size
    require(
        max(h, w) <= MAX_FRAME_SIDE and max(hc, wc) <= MAX_CANVAS_SIDE,
        f"Video too large for the studio: frames {w}x{h} (max {MAX_FRAME_SIDE}), canonical {wc}x{hc} (max {MAX_CANVAS_SIDE}).",
    )
    if video.num_frames > MAX_FRAMES:
        gr.Warning(f"The file has {video.num_frames} frames; the studio keeps the first {MAX_FRAMES}.")
        video = CanonicalVideo(video.canonical, video.grid[:MAX_FRAMES], video.fps, dict(video.metadata), size=video.size)
    return video


def _check_npz_header(path: Path) -> None:
    """The studio's limits checked on the .npz headers, before anything is decompressed."""
    from gendef.video.canonical_video import check_npz

    members = check_npz(path)  # the library's limits; CanonicalVideoError is a one-line user error
    t, h, w, _ = members["grid"].shape
    hc, wc = members["canonical"].shape[:2]
    require(
        max(h, w) <= MAX_FRAME_SIDE and max(hc, wc) <= MAX_CANVAS_SIDE,
        f"Video too large for the studio: frames {w}x{h} (max {MAX_FRAME_SIDE}), canonical {wc}x{hc} (max {MAX_CANVAS_SIDE}).",
    )
    mb = members["grid"].nbytes / 2**20
    require(
        members["grid"].nbytes <= MAX_NPZ_GRID_BYTES,
        f"{path.name} holds {t} frames of {w}x{h} motion ({mb:.0f} MB); the studio opens at most {MAX_NPZ_GRID_BYTES >> 20} MB.",
    )


def _upload_path(file) -> Path:
    require(file is not None, "Choose a file first.")
    path = Path(getattr(file, "name", file))
    require(path.is_file(), f"{path.name}: upload not found, please upload it again.")
    size_mb = path.stat().st_size / 2**20
    require(size_mb <= MAX_UPLOAD_MB, f"{path.name} is {size_mb:.0f} MB; the limit is {MAX_UPLOAD_MB} MB.")
    return path


def _header(path: Path):
    """The one reader's header facts, or None when the file cannot be probed (decompose then says why)."""
    try:
        return probe(path)
    except GenDeFError:
        return None


def clip_length(path: Path) -> tuple:
    """(frames, fps) from the header, without decoding; (0, 0.0) when unknown."""
    info = _header(path)
    return (info.frames, info.fps) if info else (0, 0.0)


def clip_size(path: Path) -> Optional[tuple]:
    """(H, W) of the clip's frames (rotation applied) from the header, None when unknown."""
    info = _header(path)
    return (info.height, info.width) if info else None


def decompose_output_size(path: Path, choice) -> str:
    """The Output size choice as gendef.video.fullsize understands it ("source" capped at 1080p here)."""
    require(choice in OUTPUT_SIZES, f"Output size must be one of {', '.join(OUTPUT_SIZES)}.")
    if choice == OUTPUT_WORKING:
        return "working"
    if choice != OUTPUT_SOURCE:
        return choice
    hw = clip_size(path)
    if hw is None:
        return "1080p"
    h, w = fullsize.resolve_output_size("source", hw, hw, cap_1080p=True)
    return f"{w}x{h}"


def _check_clip(path: Path, start: int, n: int) -> None:
    frames, fps = clip_length(path)
    if frames and fps > 0 and frames / fps > MAX_CLIP_SECONDS:
        fail(f"{path.name} lasts {frames / fps / 60:.0f} min; the limit is {MAX_CLIP_SECONDS // 60} min. Trim it first.")
    if frames and start >= frames:
        fail(f"Start frame {start} is past the end of {path.name} ({frames} frames).")
    if frames and frames - start > n:
        gr.Info(f"Using frames {start}..{start + n - 1} of {frames}.")


@friendly
def open_npz(state, file, progress=gr.Progress()):
    """Re-open a CanonicalVideo saved by the studio, the CLI or the Python API."""
    state = _fresh(state)
    path = _upload_path(file)
    require(path.suffix.lower() == ".npz", f"{path.name}: expected a .npz CanonicalVideo file.")
    _check_npz_header(path)
    progress(0.1, desc="reading")
    video = _limit_video(CanonicalVideo.load(path))
    state.checkpoint = ""
    state.set_video(video, f"Opened {path.name}")
    return loaded_views(state, progress)


@friendly
def open_example(state, progress=gr.Progress()):
    """One click to a real (decomposed) video, even offline and without a trained model."""
    require(EXAMPLE_NPZ.is_file(), "The example file is missing from assets/examples.")
    return open_npz.__wrapped__(state, str(EXAMPLE_NPZ), progress)


@friendly
def decompose_upload(state, file, num_frames, size, start=0, steps=200, output_size=OUTPUT_SOURCE, progress=gr.Progress()):
    """Real clip -> CanonicalVideo with the decomposer (gendef.decomposition): motion fitted at the
    working size, canonical image rebuilt from the full-size frames at the output size."""
    state = _fresh(state)
    path = _upload_path(file)
    require(path.suffix.lower() in VIDEO_EXTS, f"{path.name}: unsupported type; upload one of {', '.join(VIDEO_EXTS)}.")
    n = whole_number(num_frames, "Frames", MIN_FRAMES, MAX_FRAMES)
    size = whole_number(size, "Size", MIN_DECOMPOSE_SIZE, MAX_DECOMPOSE_SIZE)
    start = whole_number(start or 0, "Start frame", 0, 10**7)
    steps = whole_number(steps, "Steps", 0, MAX_DECOMPOSE_STEPS)
    _check_clip(path, start, n)
    out_size = decompose_output_size(path, output_size)
    progress(0.0, desc="decomposing")

    def report(fraction, message=""):
        progress(min(max(float(fraction), 0.0), 1.0) * 0.75, desc=message or "decomposing")

    video = _limit_video(decomposition.decompose_file(str(path), start=start, frames=n, size=size, steps=steps, progress=report, output_size=out_size))
    state.checkpoint = ""
    chosen = video.metadata.get("layers_reason")
    state.set_video(video, f"Decomposed {path.name} (frames {start}..{start + video.num_frames - 1})" + (f"; {chosen}" if chosen else ""))
    return loaded_views(state, progress)

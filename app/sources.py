"""Sources tab: sample from the model, decompose an uploaded clip, open a .npz or the example."""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import math

import gradio as gr

from gendef import decomposition
from gendef.video import fullsize
from gendef.decomposition.refine import Refinement
from gendef.decomposition.segmenting import SpanRules
from gendef.errors import GenDeFError
from gendef.video.canonical_video import CanonicalVideo
from gendef.video.segments import SegmentedVideo, load_video_npz
from gendef.video.io import VIDEO_EXTS
from gendef.video.reader import VideoInfo, probe

from .chain import canvas_side
from .errors import fail, friendly, number, require, whole_number
from .state import SHORT_CLIP_FRAMES, StudioState, TabPart, Video
from .studio import LOADED, default_studio, services_of
from .uploads import DEFAULT_MAX_UPLOAD_MB, Uploads
from .views import display_scale, status_line

PANEL = "source"
ON_LOAD = ("status", "notice")
MIN_FRAMES, MAX_FRAMES = 16, SHORT_CLIP_FRAMES
MAX_CLIP_FRAMES = 1800  # a whole clip the studio decomposes or opens: 60 s at 30 fps, checked from the header
# a whole clip's display-size frames counted as float32 (the views hold them as uint8, a quarter of this,
# rendered a chunk at a time): the preview shrinks to fit
MAX_PREVIEW_BYTES = 256 << 20
# A whole clip of up to MAX_FRAMES frames is split at its hard cuts only (one canvas per shot, as the
# studio always fitted such clips, at the output size where it is one shot); longer clips by every rule.
SHORT_CLIP_RULES = SpanRules(max_span=MAX_FRAMES, drift=math.inf, content=math.inf)
MAX_UPLOAD_MB = DEFAULT_MAX_UPLOAD_MB  # the default cap; a studio's own is its services.uploads (python app.py --max-upload-mb N)
MAX_CLIP_SECONDS = 600
MIN_DECOMPOSE_SIZE, MAX_DECOMPOSE_SIZE = 64, 256
MAX_GRID_SIDE = 512  # the motion (grid) the studio keeps: generated or working size
MAX_FRAME_SIDE, MAX_CANVAS_SIDE = 1920, 4096  # output size (1080p either way round) and full-size canonical
MAX_NPZ_GRID_BYTES = MAX_FRAMES * MAX_GRID_SIDE**2 * 2 * 4  # the most motion the studio keeps (256 MiB)
# a whole clip's chain of segments: MAX_CLIP_FRAMES frames of the largest working size, a third more for the overlaps (1.2 GiB)
MAX_CHAIN_GRID_BYTES = MAX_CLIP_FRAMES * MAX_DECOMPOSE_SIZE**2 * 2 * 4 * 4 // 3
OUTPUT_SOURCE, OUTPUT_1080P, OUTPUT_720P, OUTPUT_WORKING = "source (≤ 1080p)", "1080p", "720p", "working size"
OUTPUT_SIZES = (OUTPUT_SOURCE, OUTPUT_1080P, OUTPUT_720P, OUTPUT_WORKING)
MAX_DECOMPOSE_STEPS = 2000
MAX_SEED = 2**31 - 1
REFINE_LABEL = "Refine worst spans: share of frames refitted"
DEFAULT_REFINE = Refinement().budget  # on by default, as the CLI's --refine and decompose_clip
EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
EXAMPLE_CLIP = EXAMPLES / "astronaut_pan.mp4"
EXAMPLE_NPZ = EXAMPLES / "astronaut_pan.npz"


@dataclass
class SamplePart(TabPart):
    """Where the loaded video came from, when it was sampled (New motion samples it again)."""

    checkpoint: str = ""
    seed: int = 0
    motion_seed: Optional[int] = None


def build(studio) -> None:
    with gr.Tabs():
        with gr.Tab("Sample", id="tab-sample"):
            ckpt = gr.Textbox(studio.checkpoint, label="Checkpoint", info="folder, hub id, or checkpoints/default", elem_id="checkpoint")
            with gr.Row():
                seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="seed")
                fps = gr.Slider(1, 60, value=16, step=1, label="fps", elem_id="fps")
            frames = gr.Slider(MIN_FRAMES, MAX_FRAMES, value=16, step=1, label="Frames", elem_id="frames")
            psi = gr.Slider(0.0, 1.5, value=1.0, step=0.05, label="Truncation ψ", elem_id="psi")
            with gr.Row():
                sample_btn = gr.Button("Sample", variant="primary", elem_id="sample-btn")
                motion_btn = gr.Button("New motion", elem_id="new-motion-btn")
        with gr.Tab("Upload clip", id="tab-upload"):
            cap = studio.services.uploads.max_mb
            clip = gr.File(label=f"Video clip (≤ {cap} MB)", file_types=list(VIDEO_EXTS), elem_id="clip-file")
            with gr.Row():
                clip_frames = gr.Number(0, label="Frames to use (0 = whole clip)", precision=0, minimum=0, maximum=MAX_CLIP_FRAMES,
                                        info=f"whole clips up to {MAX_CLIP_FRAMES} frames; up to {MAX_FRAMES}: one canonical image", elem_id="clip-frames")
                clip_size = gr.Slider(MIN_DECOMPOSE_SIZE, MAX_DECOMPOSE_SIZE, value=128, step=32, label="Working size (px)", info="the motion is fitted at this size")
            with gr.Row():
                clip_start = gr.Number(0, label="Start frame", precision=0, minimum=0)
                clip_steps = gr.Slider(0, 1000, value=200, step=10, label="Optimisation steps", info="fewer is faster, more is sharper", elem_id="clip-steps")
            clip_refine = gr.Slider(0.0, 1.0, value=DEFAULT_REFINE, step=0.05, label=REFINE_LABEL, elem_id="clip-refine",
                                    info="whole clips split into segments: 0 = off (the default); e.g. 0.5 splits and refits the "
                                    "spans whose worst frame is poor, up to half the clip's frames (slower)")
            decompose_btn = gr.Button("Decompose into canonical image + field", variant="primary", elem_id="decompose-btn")
            if EXAMPLE_CLIP.is_file():
                gr.Examples([[str(EXAMPLE_CLIP)]], inputs=[clip], label="Example clip")
        with gr.Tab("Open .npz", id="tab-open"):
            npz = gr.File(label=f"CanonicalVideo (.npz, ≤ {cap} MB)", file_types=[".npz"], elem_id="npz-file")
            open_btn = gr.Button("Open", variant="primary", elem_id="open-btn")
            example_btn = gr.Button("Open the example (astronaut photo, known pan + zoom)", visible=EXAMPLE_NPZ.is_file(), elem_id="example-npz-btn")
    output_size = gr.Dropdown(
        list(OUTPUT_SIZES), value=OUTPUT_SOURCE, label="Output size", elem_id="output-size",
        info="edits and exports at this size; clips: motion fitted at the working size, canonical rebuilt "
        "from the full-size frames; samples: 1080p/720p are bicubic upscaling",
    )
    studio.add(status=gr.Markdown("", elem_id="status"))

    sample_inputs = ["state", ckpt, seed, frames, psi, fps, output_size]
    studio.on(sample_btn.click, sample, sample_inputs, (LOADED,), concurrency_id="model")
    studio.on(motion_btn.click, new_motion, sample_inputs, (LOADED,), concurrency_id="model")
    studio.on(open_btn.click, open_npz, ["state", npz], (LOADED,))
    studio.on(example_btn.click, open_example, ["state"], (LOADED,))
    studio.on(decompose_btn.click, decompose_upload, ["state", clip, clip_frames, clip_size, clip_start, clip_steps, output_size, clip_refine], (LOADED,),
              concurrency_id="heavy", concurrency_limit=1)
    studio.on(studio.demo.load, sample, sample_inputs, (LOADED,), concurrency_id="model")


def reset(state: StudioState) -> dict:
    return dict(status=status_line(state), notice=gr.skip())


def loaded_views(state: StudioState, progress, notice=None, studio=None) -> dict:
    """Everything the views show for a freshly loaded video (every tab's reset)."""
    state.scale = display_scale(canvas_side(state))
    progress(0.8, desc="rendering views")
    views = dict(state=state, **default_studio(studio).reset(state))
    if notice is not None:
        views["notice"] = notice
    progress(1.0, desc="done")
    return views


def _fresh(state) -> StudioState:
    return state if isinstance(state, StudioState) else StudioState()


def _sample(state, checkpoint, seed, num_frames, psi, fps, motion_seed, progress, output_size, studio) -> dict:
    state, studio = _fresh(state), default_studio(studio)
    n = whole_number(num_frames, "Frames", MIN_FRAMES, MAX_FRAMES)
    fps = number(fps, "fps", 1, 60)
    seed = whole_number(seed, "Seed", 0, MAX_SEED)
    psi = number(psi, "Truncation ψ", 0.0, 1.5)
    progress(0.0, desc="loading model")
    loaded = studio.services.model(checkpoint, progress=progress)
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
    label = "untrained demo model" if loaded.untrained else loaded.checkpoint
    motion = "" if motion_seed is None else f", motion seed {motion_seed}"
    state.set_video(video, f"Sampled: {label}, seed {seed}{motion}, ψ={psi:g}{upscale_note}")
    state.parts[SamplePart] = SamplePart(loaded.checkpoint, seed, motion_seed)
    return loaded_views(state, progress, loaded.notice, studio)


def _sample_output(video: CanonicalVideo, output_size) -> tuple:
    """Samples are generated at the model's size; 1080p / 720p exports are bicubic upscaling, said so."""
    if output_size not in (OUTPUT_1080P, OUTPUT_720P):
        return video, ""
    up = fullsize.upscale(video, fullsize.resolve_output_size(output_size, video.frame_size, video.grid_size))
    h, w = video.frame_size
    return up, f", upscaled (bicubic) from {w}x{h}"


@friendly
def sample(state, checkpoint, seed, num_frames, psi, fps, output_size=None, progress=gr.Progress(), studio=None):
    """Sample a new video (new canonical image and new motion)."""
    return _sample(state, checkpoint, seed, num_frames, psi, fps, None, progress, output_size, studio)


@friendly
def new_motion(state, checkpoint, seed, num_frames, psi, fps, output_size=None, progress=gr.Progress(), studio=None):
    """Fig. 6: same canonical image (same seed), new motion seed."""
    if isinstance(state, StudioState) and state.video is not None and state.part(SamplePart).checkpoint:
        was = state.part(SamplePart)
        base = was.motion_seed if was.motion_seed is not None else int(was.seed)
        return _sample(state, was.checkpoint, was.seed, num_frames, psi, fps, (base + 1) % 2**31, progress, output_size, studio)
    seed = whole_number(seed or 0, "Seed", 0, MAX_SEED)
    return _sample(state, checkpoint, seed, num_frames, psi, fps, seed + 1, progress, output_size, studio)


def _require_sizes(frame_hw, canvas_hw) -> None:
    (h, w), (hc, wc) = frame_hw, canvas_hw
    require(
        max(h, w) <= MAX_FRAME_SIDE and max(hc, wc) <= MAX_CANVAS_SIDE,
        f"Video too large for the studio: frames {w}x{h} (max {MAX_FRAME_SIDE}), canonical {wc}x{hc} (max {MAX_CANVAS_SIDE}).",
    )


def _limit_video(video: Video, most: int = MAX_FRAMES) -> Video:
    """The studio's limits on a loaded video (a CanonicalVideo or a chain of segments): sizes, the first ``most`` frames."""
    for seg in video.segments if isinstance(video, SegmentedVideo) else (video,):
        _require_sizes(video.frame_size, seg.canvas_size)
    if video.num_frames > most:
        gr.Warning(f"The file has {video.num_frames} frames; the studio keeps the first {most}.")
        if isinstance(video, SegmentedVideo):
            return video.head(most)
        video = video.replaced(grid=video.grid[:most])
    return video


def bounded_preview(state: StudioState) -> None:
    """A whole clip's views: the display-size frames (counted as float32, whole clip) shrunk to fit
    MAX_PREVIEW_BYTES, decided from the sizes before anything is rendered; the views render them a
    chunk at a time into uint8 (views.shown_frames). Videos of up to MAX_FRAMES frames are shown as before."""
    v = state.preview
    h, w = v.frame_size
    need = v.num_frames * h * w * 3 * 4
    if v.num_frames <= MAX_FRAMES or need <= MAX_PREVIEW_BYTES:
        return
    s = math.sqrt(MAX_PREVIEW_BYTES / need)
    state.preview = state.video.with_size((max(2, int(h * s)), max(2, int(w * s))))


def _check_npz_header(path: Path, uploads: Uploads) -> None:
    """The studio's limits checked on the .npz headers (either kind), before anything is decompressed:
    the sizes, the grids, and all the arrays together against ``uploads.npz_budget``."""
    from gendef.video.npzformat import check_npz, check_segmented_npz, is_segmented_npz

    if is_segmented_npz(path):
        members = check_segmented_npz(path)  # the library's limits; CanonicalVideoError is a one-line user error
        pairs = [(members[f"seg{i}_grid"], members[f"seg{i}_canonical"]) for i in range(members["starts"].shape[0])]
    else:
        members = check_npz(path)
        pairs = [(members["grid"], members["canonical"])]
    for grid, canonical in pairs:
        _require_sizes(grid.shape[1:3], canonical.shape[:2])
    t, h, w, _ = pairs[0][0].shape
    nbytes = sum(grid.nbytes for grid, _ in pairs)
    what = f"{t} frames of {w}x{h} motion" if len(pairs) == 1 else f"{len(pairs)} segments of {w}x{h} motion"
    most = MAX_NPZ_GRID_BYTES if len(pairs) == 1 else MAX_CHAIN_GRID_BYTES
    require(nbytes <= most, f"{path.name} holds {what} ({nbytes / 2**20:.0f} MB); the studio opens at most {most >> 20} MB.")
    uploads.check_npz_memory(path.name, members.values())


def _header(clip) -> Optional[VideoInfo]:
    """The one reader's header facts for a path (or a header already probed), None when the file
    cannot be probed (decompose then says why)."""
    if clip is None or isinstance(clip, VideoInfo):
        return clip
    try:
        return probe(clip)
    except GenDeFError:
        return None


def clip_length(clip) -> tuple:
    """(frames, fps) from the header of a path or probe, without decoding; (0, 0.0) when unknown."""
    info = _header(clip)
    return (info.frames, info.fps) if info else (0, 0.0)


def decompose_output_size(clip, choice) -> str:
    """The Output size choice as gendef.video.fullsize understands it ("source" capped at 1080p here,
    decided from the header of ``clip``: a path or its probe)."""
    require(choice in OUTPUT_SIZES, f"Output size must be one of {', '.join(OUTPUT_SIZES)}.")
    if choice == OUTPUT_WORKING:
        return "working"
    if choice != OUTPUT_SOURCE:
        return choice
    info = _header(clip)
    if info is None:
        return "1080p"
    hw = (info.height, info.width)
    h, w = fullsize.resolve_output_size("source", hw, hw, cap_1080p=True)
    return f"{w}x{h}"


def _check_clip(path: Path, info: Optional[VideoInfo], start: int, n: Optional[int]) -> None:
    """The clip's header against the studio's limits (``n`` None: the whole clip from ``start``), before any decoding."""
    frames, fps = clip_length(info)
    if frames and fps > 0 and frames / fps > MAX_CLIP_SECONDS:
        fail(f"{path.name} lasts {frames / fps / 60:.0f} min; the limit is {MAX_CLIP_SECONDS // 60} min. Trim it first.")
    if frames and start >= frames:
        fail(f"Start frame {start} is past the end of {path.name} ({frames} frames).")
    if n is None and frames - start > MAX_CLIP_FRAMES:
        fail(f"{path.name} has {frames - start} frames from frame {start}; the studio decomposes at most {MAX_CLIP_FRAMES} "
             f"frames (60 s at 30 fps) at once: set Frames to use or Start frame.")
    if n is not None and frames and frames - start > n:
        gr.Info(f"Using frames {start}..{start + n - 1} of {frames}.")


def _clip_frames(num_frames) -> Optional[int]:
    """The Frames field: empty or 0 is the whole clip (None), otherwise MIN_FRAMES..MAX_CLIP_FRAMES."""
    if num_frames in (None, "") or (isinstance(num_frames, (int, float)) and num_frames == 0):
        return None
    return whole_number(num_frames, "Frames", MIN_FRAMES, MAX_CLIP_FRAMES)


def clip_refinement(share) -> Optional[Refinement]:
    """The Refine slider as ``decompose_clip`` takes it: 0 or empty: off (None);
    a share of the clip's frames in (0, 1]: ``Refinement(budget=share)``, as the CLI's ``--refine SHARE``."""
    if share in (None, ""):
        return None
    share = number(share, REFINE_LABEL, 0.0, 1.0)
    return None if share == 0 else Refinement(budget=share)


def _refine_note(refinement: Optional[Refinement], video: Video, n: Optional[int]) -> str:
    """What refinement did, for the status line; a one-span result says it was not used (gr.Info) when
    the slider was moved from its default (at the default every short clip would get the note)."""
    if refinement is None:
        return ""
    if isinstance(video, SegmentedVideo):
        return f"; refinement refitted {video.metadata.get('refitted_frames', 0)} frames"
    if refinement == Refinement(budget=DEFAULT_REFINE):
        return ""
    why = f"{n} frames set by hand are fitted with one canonical image" if n is not None and n <= MAX_FRAMES else "the clip is one span"
    gr.Info(f"Refinement not used: {why}; it splits and refits the segments of whole clips.")
    return ""


def _decompose(path: Path, info, start: int, n: Optional[int], size: int, steps: int, out_size: str, progress,
               refinement: Optional[Refinement] = None) -> Video:
    """Up to MAX_FRAMES frames: one canonical image (``decompose_file``), as ever (``refinement`` is not
    used there); a whole clip or a longer span: ``decompose_clip``, streamed, split into segments where
    one canvas stops explaining the frames, then refined when ``refinement`` is given."""
    if n is not None and n <= MAX_FRAMES:
        def report(fraction, message=""):
            progress(min(max(float(fraction), 0.0), 1.0) * 0.75, desc=message or "decomposing")

        return decomposition.decompose_file(str(path), start=start, frames=n, size=size, steps=steps, progress=report,
                                            output_size=out_size, info=info, threads=None)

    def per_segment(k, num, message=""):
        if not num:
            progress(0.02, desc=message or "scanning the clip")
            return
        detail = message.partition(": ")[2] if num > 1 else message
        progress(0.05 + 0.7 * min(k, num - 1) / num, desc=f"segment {k + 1} of {num}" + (f": {detail}" if detail else ""))

    count = n if n is not None else (info.frames - start if info is not None else MAX_CLIP_FRAMES)
    rules = SHORT_CLIP_RULES if count <= MAX_FRAMES else SpanRules()
    return decomposition.decompose_clip(str(path), start=start, frames=n, size=size, steps=steps, progress=per_segment,
                                        rules=rules, output_size=out_size, info=info, threads=None, refinement=refinement)


@friendly
def open_npz(state, file, progress=gr.Progress(), studio=None):
    """Re-open a CanonicalVideo, or a whole clip's chain of segments, saved by the studio, the CLI or the Python API."""
    state = _fresh(state)
    uploads = services_of(studio).uploads
    path = uploads.file(file)
    require(path.suffix.lower() == ".npz", f"{path.name}: expected a .npz CanonicalVideo file.")
    _check_npz_header(path, uploads)
    progress(0.1, desc="reading")
    video = load_video_npz(path)  # a chain of segments is a whole clip: kept whole, as when it was decomposed
    video = _limit_video(video, MAX_CLIP_FRAMES if isinstance(video, SegmentedVideo) else MAX_FRAMES)
    state.set_video(video, f"Opened {path.name}")
    bounded_preview(state)
    return loaded_views(state, progress, studio=studio)


@friendly
def open_example(state, progress=gr.Progress(), studio=None):
    """One click to a real (decomposed) video, even offline and without a trained model."""
    require(EXAMPLE_NPZ.is_file(), "The example file is missing from assets/examples.")
    return open_npz.__wrapped__(state, str(EXAMPLE_NPZ), progress, studio)


@friendly
def decompose_upload(state, file, num_frames, size, start=0, steps=200, output_size=OUTPUT_SOURCE, refine=DEFAULT_REFINE, progress=gr.Progress(),
                     studio=None):
    """Real clip -> CanonicalVideo (or, where the decomposer splits the clip, a chain of segments) with
    the decomposer (gendef.decomposition): motion fitted at the working size, canonical image rebuilt
    from the full-size frames at the output size. Frames empty or 0: the whole clip (at most
    MAX_CLIP_FRAMES, refused from the header otherwise), progress shown per segment. The header is
    probed once here and handed to the decomposer; threads stay as the services set them. ``refine``:
    the share of a whole clip's frames refinement may refit (0: off; ``clip_refinement``); a clip
    fitted as one span is not refined, and a note says so."""
    state = _fresh(state)
    path = services_of(studio).uploads.file(file)
    require(path.suffix.lower() in VIDEO_EXTS, f"{path.name}: unsupported type; upload one of {', '.join(VIDEO_EXTS)}.")
    n = _clip_frames(num_frames)
    size = whole_number(size, "Size", MIN_DECOMPOSE_SIZE, MAX_DECOMPOSE_SIZE)
    start = whole_number(start or 0, "Start frame", 0, 10**7)
    steps = whole_number(steps, "Steps", 0, MAX_DECOMPOSE_STEPS)
    refinement = clip_refinement(refine)
    info = _header(path)
    _check_clip(path, info, start, n)
    out_size = decompose_output_size(info, output_size)
    progress(0.0, desc="decomposing")
    video = _decompose(path, info, start, n, size, steps, out_size, progress, refinement)
    if video.metadata.get("output_note"):  # several segments stay at the working size
        gr.Info(video.metadata["output_note"][0].upper() + video.metadata["output_note"][1:] + ".")
    video = _limit_video(video, MAX_FRAMES if n is not None and n <= MAX_FRAMES else MAX_CLIP_FRAMES)
    chosen = video.metadata.get("layers_reason")
    refined = _refine_note(refinement, video, n)
    state.set_video(video, f"Decomposed {path.name} (frames {start}..{start + video.num_frames - 1})" + (f"; {chosen}" if chosen else "") + refined)
    bounded_preview(state)
    return loaded_views(state, progress, studio=studio)

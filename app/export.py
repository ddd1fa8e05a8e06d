"""Results column: the last edit's result views, and the export: mp4 (with the source clip's sound) + gif of
the chosen video, the re-openable .npz, and the session's masks and trajectories.

Everything is written at the video's output size (``state.video``), not at the size the
views show: frames are rendered from the canonical edit and streamed to the encoder, so an
export's memory does not grow with the clip (the gif, which holds its frames, is written only
up to MAX_GIF_PIXELS).
"""
import gradio as gr
import numpy as np

from gendef import viz
from gendef.video.audio import AUTO, resolve_audio
from gendef.video.chunks import iter_uint8
from gendef.video.segments import SegmentedVideo
from gendef.video.io import write_video_and_gif

from .errors import fail, friendly
from .formats import masks_to_zip, tracks_to_csv, tracks_to_json
from .segment import MASK_COLOR, SegmentPart
from .state import StudioState, Video
from .track import TrackPart
from .views import require_video

PANEL = "result"
ON_LOAD = ("result_video", "comparison", "result_files", "export_files")

TRACK_CHUNK = 32  # frames rendered at once when drawing trajectories at output size
TRACK_TRAIL = viz.TRACK_TRAIL  # frames a trail reaches back
SEGMENT_TINT = 0.45
# 60 s of 1080p at 30 fps (the studio's longest clip at its largest output size): about 3 min to render and encode on 2 cores
MAX_EXPORT_PIXELS = 1800 * 1920 * 1080
MAX_GIF_PIXELS = 128 * 1920 * 1080  # the gif encoder keeps every frame (a byte a pixel, plus the frames): 128 frames of 1080p


def build(studio) -> None:
    """The results column: the last edit's result views, and the export."""
    result_video = gr.Video(label="Result", autoplay=True, loop=True, interactive=False, elem_id="result-video")
    comparison = gr.Video(label="Original | result", autoplay=True, loop=True, interactive=False, elem_id="comparison-video")
    result_files = gr.File(label="Result files", file_count="multiple", interactive=False, height=180, elem_id="result-files")
    with gr.Accordion("Export", open=True):
        which = gr.Radio(["result", "original"], value="result", label="Export")
        export_btn = gr.Button("Export mp4 + gif + .npz (+ masks / tracks)", elem_id="export-btn")
        export_files = gr.File(label="Exported files", file_count="multiple", interactive=False, height=180, elem_id="export-files")
    studio.add(result_video=result_video, comparison=comparison, result_files=result_files, export_files=export_files)
    studio.on(export_btn.click, export_all, ["state", which], ("export_files",))


def reset(state: StudioState) -> dict:
    return dict(result_video=None, comparison=None, result_files=None, export_files=None)


def _session_files(state: StudioState) -> list:
    """Masks and trajectories made earlier in the session, whatever the last edit was."""
    files = []
    mask, tracks = state.part(SegmentPart).mask, state.part(TrackPart).tracks
    if mask is not None and mask.any():
        files.append(str(masks_to_zip(state.video.propagate_mask(mask, **state.on_canvas()), state.new_path("masks.zip"))))
    if tracks is not None:
        pos, vis = tracks
        for name, text in (("tracks.json", tracks_to_json(pos, vis, state.video.fps)), ("tracks.csv", tracks_to_csv(pos, vis))):
            path = state.new_path(name)
            path.write_text(text)
            files.append(str(path))
    return files


def _export_video(state: StudioState, use_result: bool) -> Video:
    """The video to export: the edit baked into the canonical image (a chain: into every segment it reaches)."""
    video, result = state.video, state.result
    if use_result and result.edits is not None:
        return video.with_edit(result.edits)
    if use_result and result.canonical is not None:
        return video.with_canonical(result.canonical)
    mask = state.part(SegmentPart).mask
    if use_result and result.kind == "segment" and mask is not None:
        if state.chain:  # the tint as an overlay of the picked segment, carried along the chain
            return video.with_edit(viz.mask_tint_layer(mask, MASK_COLOR, SEGMENT_TINT), segment=state.segment)
        a = SEGMENT_TINT * mask[..., None].astype(np.float32)
        return video.with_canonical(video.canonical * (1 - a) + np.float32(MASK_COLOR) * a)
    return video


def _export_frames(state: StudioState, use_result: bool) -> np.ndarray:
    """uint8 [T, H, W, 3] at output size: :func:`_export_stream` held whole (export_all never holds it)."""
    return np.stack(list(_export_stream(state, use_result)))


def _export_stream(state: StudioState, use_result: bool):
    """The frames at output size, uint8 [H, W, 3] one by one (rendered as the encoder takes them)."""
    video = _export_video(state, use_result)
    tracks = state.part(TrackPart).tracks
    if not (use_result and state.result.kind == "track" and tracks is not None):
        return video.frames_uint8_iter()
    pos, vis = tracks  # a chunk's trails reach back into the previous chunk's positions
    return iter_uint8(video, step=lambda a, frames: viz.draw_tracks(frames, pos, vis, first=a), chunk=TRACK_CHUNK)


def _check_export_size(state: StudioState) -> bool:
    """Refuse (one line) an export over MAX_EXPORT_PIXELS before rendering; whether a gif is written too."""
    n, (h, w) = state.video.num_frames, state.video.frame_size
    if n * h * w > MAX_EXPORT_PIXELS:
        fail(f"Exporting {n} frames at {w}x{h} is too long for the studio (at most {MAX_EXPORT_PIXELS // (1920 * 1080)} frames "
             f"of 1920x1080); use the CLI (python -m gendef render) on the exported .npz.")
    return n * h * w <= MAX_GIF_PIXELS


def _sound(state: StudioState):
    """The source clip's sound for the mp4 (decomposed uploads), or None; a lost source is a warning, not a failure."""
    v = state.video
    span, warning = resolve_audio(AUTO, v.metadata, v.num_frames / v.fps)
    if warning:
        gr.Warning(warning[0].upper() + warning[1:] + ".")
    return span


def _export_npz(state: StudioState, use_result: bool) -> Video:
    """The re-openable video: the edit baked in (a painted, restyled or looked canonical image), the studio's source noted."""
    video = state.video
    if use_result and state.result.edits is not None:
        video = video.with_edit(state.result.edits)
    elif use_result and state.result.canonical is not None:
        video = state.video.with_canonical(state.result.canonical)
    meta = dict(video.metadata, studio_source=state.source)
    if isinstance(video, SegmentedVideo):
        return SegmentedVideo(list(zip(video.starts, video.segments)), fps=video.fps, metadata=meta, cuts=video.cuts)
    return video.replaced(metadata=meta)


@friendly
def export_all(state, which, progress=gr.Progress()):
    state = require_video(state)
    use_result = which == "result" and state.result is not None
    if which == "result" and state.result is None:
        gr.Warning("No edit applied yet: exporting the original video.")
    tag = state.result.kind if use_result else "original"
    h, w = state.video.frame_size
    with_gif = _check_export_size(state)
    mp4_path = state.new_path(f"{tag}-{w}x{h}.mp4")
    gif_path = state.new_path(f"{tag}-{w}x{h}.gif") if with_gif else None
    progress(0.05, desc=f"rendering and encoding {w}x{h}" + (" (mp4 + gif)" if with_gif else " (mp4)"))
    mp4, gif = write_video_and_gif(_export_stream(state, use_result), mp4_path, gif_path, fps=state.video.fps, audio=_sound(state))
    files = [str(mp4)] + ([str(gif)] if gif is not None else [])
    if gif is None:
        gr.Info(f"No gif for {state.video.num_frames} frames at {w}x{h} (gifs up to {MAX_GIF_PIXELS // (w * h)} frames at this size); the mp4 has them all.")
    progress(0.7, desc="npz")
    files.append(str(_export_npz(state, use_result).save(state.new_path(f"{tag}-canonical-video.npz"))))
    progress(0.8, desc="masks and tracks")
    files += _session_files(state)
    progress(1.0, desc="done")
    return dict(export_files=files)

"""Results column: the last edit's result views, and the export: mp4 (with the source clip's sound) + gif of
the chosen video, the re-openable .npz, and the session's masks and trajectories.

Everything is written at the video's output size (``state.video``), not at the size the
views show: frames are rendered from the canonical edit, one frame at a time.
"""
import gradio as gr
import numpy as np

from gendef import viz
from gendef.video.audio import AUTO, resolve_audio
from gendef.video.canonical_video import CanonicalVideo
from gendef.video.segments import SegmentedVideo
from gendef.imageutil import to_uint8
from gendef.video.io import write_video

from .errors import friendly
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
    """uint8 [T, H, W, 3] at output size."""
    video = _export_video(state, use_result)
    tracks = state.part(TrackPart).tracks
    if not (use_result and state.result.kind == "track" and tracks is not None):
        return video.frames_uint8()
    pos, vis = tracks
    out = []
    for a in range(0, video.num_frames, TRACK_CHUNK):  # trails reach back TRACK_TRAIL frames: render those again
        s, b = max(0, a - TRACK_TRAIL), min(video.num_frames, a + TRACK_CHUNK)
        frames = np.stack([video.render_frame(t) for t in range(s, b)])
        out.extend(to_uint8(viz.draw_tracks(frames, pos[s:b], vis[s:b]))[a - s :])
    return np.stack(out)


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
    return CanonicalVideo(video.canonical, video.grid, video.fps, meta, size=video.size)


@friendly
def export_all(state, which, progress=gr.Progress()):
    state = require_video(state)
    use_result = which == "result" and state.result is not None
    if which == "result" and state.result is None:
        gr.Warning("No edit applied yet: exporting the original video.")
    tag = state.result.kind if use_result else "original"
    h, w = state.video.frame_size
    progress(0.05, desc=f"rendering {w}x{h}")
    frames = _export_frames(state, use_result)
    progress(0.3, desc="mp4")
    files = [str(write_video(frames, state.new_path(f"{tag}-{w}x{h}.mp4"), fps=state.video.fps, audio=_sound(state)))]
    progress(0.5, desc="gif")
    files.append(str(write_video(frames, state.new_path(f"{tag}-{w}x{h}.gif"), fps=state.video.fps)))
    del frames
    progress(0.7, desc="npz")
    files.append(str(_export_npz(state, use_result).save(state.new_path(f"{tag}-canonical-video.npz"))))
    progress(0.8, desc="masks and tracks")
    files += _session_files(state)
    progress(1.0, desc="done")
    return dict(export_files=files)

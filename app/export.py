"""Export: mp4 + gif of the chosen video, the re-openable .npz, and the session's masks and trajectories."""
import gradio as gr

from gendef import viz
from gendef.video import CanonicalVideo
from gendef.videoio import write_video

from .errors import friendly
from .state import StudioState
from .views import require_video, write_mp4


def _session_files(state: StudioState) -> list:
    """Masks and trajectories made earlier in the session, whatever the last edit was."""
    files = []
    if state.mask is not None and state.mask.any():
        files.append(str(viz.masks_to_zip(state.video.propagate_mask(state.mask), state.new_path("masks.zip"))))
    if state.tracks is not None:
        pos, vis = state.tracks
        for name, text in (("tracks.json", viz.tracks_to_json(pos, vis, state.video.fps)), ("tracks.csv", viz.tracks_to_csv(pos, vis))):
            path = state.new_path(name)
            path.write_text(text)
            files.append(str(path))
    return files


@friendly
def export_all(state, which, progress=gr.Progress()):
    state = require_video(state)
    use_result = which == "result" and state.result is not None
    if which == "result" and state.result is None:
        gr.Warning("No edit applied yet: exporting the original video.")
    frames = state.result.frames if use_result else state.video.frames()
    tag = state.result.kind if use_result else "original"
    progress(0.1, desc="mp4")
    files = [write_mp4(state, frames, f"{tag}.mp4")]
    progress(0.4, desc="gif")
    files.append(str(write_video(frames, state.new_path(f"{tag}.gif"), fps=state.video.fps)))
    progress(0.7, desc="npz")
    video = state.video
    if use_result and state.result.canonical is not None:
        video = state.video.with_canonical(state.result.canonical)
    meta = dict(video.metadata, studio_source=state.source)
    export = CanonicalVideo(video.canonical, video.grid, video.fps, meta)
    files.append(str(export.save(state.new_path(f"{tag}-canonical-video.npz"))))
    progress(0.8, desc="masks and tracks")
    files += _session_files(state)
    progress(1.0, desc="done")
    return dict(export_files=files)

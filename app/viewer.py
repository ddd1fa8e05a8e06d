"""The loaded video's views: the video, its canonical image, its deformation field and a strip of frames.

A whole clip decomposed into a chain of segments also shows its segments: a picker ("segment k:
frames a-b") choosing the canonical image the tabs edit, the boundaries in words, and in the
strip each segment's canonical image over a timeline of the frames it renders, cuts in red.
"""
import gradio as gr

from gendef import viz

from . import chain
from .errors import friendly
from .state import StudioState
from .studio import LOADED, default_studio
from .views import display_canonical, require_video, write_mp4

PANEL = "view"
ON_LOAD = ("video", "canonical", "field", "strip", "segment_pick", "segments_info")


def build(studio) -> None:
    with gr.Row():
        video = gr.Video(label="Video", autoplay=True, loop=True, interactive=False, elem_id="video-view")
        canonical = gr.Image(label="Canonical image", interactive=False, elem_id="canonical-view", buttons=["download", "fullscreen"])
        field = gr.Video(label="Deformation field", autoplay=True, loop=True, interactive=False, elem_id="field-view")
    with gr.Row():
        pick = gr.Dropdown([], label="Segment to edit", visible=False, elem_id="segment-pick",
                           info="each segment of the clip has its own canonical image; edits carry to the others")
        info = gr.Markdown("", visible=False, elem_id="segments-info")
    strip = gr.Image(label="Frames and displacement (hue = direction, saturation = magnitude; full at the largest displacement, at least 1 px)", interactive=False, elem_id="strip-view")
    studio.add(video=video, canonical=canonical, field=field, strip=strip, segment_pick=pick, segments_info=info)
    studio.on(pick.input, pick_segment, ["state", pick], (LOADED,))


def reset(state: StudioState) -> dict:
    views = dict(
        video=str(state.preview.to_video(state.new_path("video.mp4"), fps=state.video.fps, audio=None)),  # streamed, frame by frame
        field=write_mp4(state, viz.deformation_video(state.preview_canvas), "deformation.mp4"),
        canonical=display_canonical(state),
    )
    if not state.chain:
        views.update(strip=viz.deformation_strip(state.preview, num=4),
                     segment_pick=gr.update(choices=[], value=None, visible=False), segments_info=gr.update(value="", visible=False))
        return views
    names = chain.labels(state)
    views.update(
        strip=viz.segment_timeline(state.preview, picked=state.segment),
        segment_pick=gr.update(choices=names, value=names[state.segment], visible=True),
        segments_info=gr.update(value=chain.boundaries_text(state), visible=True),
    )
    return views


@friendly
def pick_segment(state, label, progress=gr.Progress(), studio=None):
    """Edit another segment's canonical image: every tab shows it; clicks, masks and tracks start afresh."""
    state = require_video(state)
    if not state.chain:
        return dict(state=state, **{name: gr.skip() for name in default_studio(studio).load_views if name != "state"})
    state.pick_segment(chain.segment_from_label(state, label))
    progress(0.5, desc="showing the segment")
    return dict(state=state, **default_studio(studio).reset(state))

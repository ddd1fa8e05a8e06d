"""The loaded video's views: the video, its canonical image, its deformation field and a strip of frames."""
import gradio as gr

from gendef import viz

from .state import StudioState
from .views import display_canonical, write_mp4

PANEL = "view"
ON_LOAD = ("video", "canonical", "field", "strip")


def build(studio) -> None:
    with gr.Row():
        video = gr.Video(label="Video", autoplay=True, loop=True, interactive=False, elem_id="video-view")
        canonical = gr.Image(label="Canonical image", interactive=False, elem_id="canonical-view", buttons=["download", "fullscreen"])
        field = gr.Video(label="Deformation field", autoplay=True, loop=True, interactive=False, elem_id="field-view")
    strip = gr.Image(label="Frames and displacement (hue = direction, saturation = magnitude)", interactive=False, elem_id="strip-view")
    studio.add(video=video, canonical=canonical, field=field, strip=strip)


def reset(state: StudioState) -> dict:
    return dict(
        video=write_mp4(state, state.preview.frames(), "video.mp4"),
        field=write_mp4(state, viz.deformation_video(state.preview), "deformation.mp4"),
        canonical=display_canonical(state),
        strip=viz.deformation_strip(state.preview, num=4),
    )

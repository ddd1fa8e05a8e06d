"""The studio layout: build_demo() -> gr.Blocks, a short list of tabs.

Each tab is one module (app.sources, viewer, scribble, stylize, segment, track, export) that
builds its components, registers its views, events and reset with the ``app.studio.Studio``;
adding a tab is writing its module and adding it to TABS.
"""
import gradio as gr

from . import export, scribble, segment, sources, stylize, track, viewer
from .checkpoints import default_checkpoint
from .services import Services
from .state import StudioState, cleanup
from .studio import Studio
from .uploads import Uploads

TABS = (sources, viewer, scribble, stylize, segment, track, export)  # each placed in its PANEL, in this order

SESSION_TTL_S = 2 * 3600
SESSION_CAPACITY = 100  # sessions kept in memory; each may hold a few hundred MB of frames
CONCURRENCY = 2
QUEUE_MAX = 32

CSS = """
#studio-title h1 {margin-bottom: 0}
#model-notice {border-left: 4px solid var(--color-accent); padding-left: 10px}
.clickable img {cursor: crosshair}
#canonical-view img, #segment-image img, #track-image img {image-rendering: pixelated}
#strip-view img {image-rendering: pixelated}
"""


def theme():
    """System fonts only: a Space or an offline laptop must not wait on a font CDN."""
    return gr.themes.Soft(
        primary_hue="indigo",
        secondary_hue="slate",
        font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )


def launch_kwargs(uploads: Uploads = Uploads()) -> dict:
    """``demo.launch`` settings; Gradio's upload cap is the studio's (``services.uploads``: 50 MB unless raised at launch)."""
    return dict(theme=theme(), css=CSS, max_file_size=uploads.gradio_max_file_size, state_session_capacity=SESSION_CAPACITY)


def build_demo(checkpoint=None, services=None, tabs=TABS) -> gr.Blocks:
    """The studio on ``services`` (the app's one Services; a fresh one when None)."""
    studio = Studio(services or Services(), tabs, checkpoint or default_checkpoint())
    # delete_cache: Gradio's copies of served files older than the session TTL go away hourly
    with gr.Blocks(title="GenDeF studio", delete_cache=(3600, SESSION_TTL_S)) as demo:
        studio.begin(demo, gr.State(StudioState(), time_to_live=SESSION_TTL_S, delete_callback=cleanup))
        gr.Markdown(
            "# GenDeF studio\n"
            "A video is a **canonical image** warped by a **deformation field**. Edit the image once "
            "(paint, restyle, segment, pick points) and the field carries the edit through every frame.",
            elem_id="studio-title",
        )
        studio.add(notice=gr.Markdown("", elem_id="model-notice"))
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                studio.build("source")
            with gr.Column(scale=3):
                studio.build("view")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3), gr.Tabs():
                studio.build("edit")
            with gr.Column(scale=2):
                studio.build("result")
        studio.wire()
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_MAX)
    return demo

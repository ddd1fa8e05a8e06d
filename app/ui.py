"""The studio layout: build_demo() -> gr.Blocks. Behaviour lives in one module per tab
(app.sources, scribble, stylize, segment, track, export); each callback returns
``{view name: value}`` and ``_binder`` maps the names to this layout's components."""
import functools

import gradio as gr

from . import export, scribble, segment, sources, stylize, track
from .checkpoints import default_checkpoint
from .sources import EXAMPLE_CLIP, EXAMPLE_NPZ
from .state import StudioState, cleanup
from .views import DISPLAY_SIZE, EDIT_ON_CANONICAL, EDIT_ON_FRAME, LOAD_VIEWS, RESULT_VIEWS

SESSION_TTL_S = 2 * 3600
SESSION_CAPACITY = 100  # sessions kept in memory; each may hold a few hundred MB of frames
CONCURRENCY = 2
QUEUE_MAX = 32
MAX_FILE_SIZE = f"{sources.MAX_UPLOAD_MB}mb"

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


def launch_kwargs() -> dict:
    return dict(theme=theme(), css=CSS, max_file_size=MAX_FILE_SIZE, state_session_capacity=SESSION_CAPACITY)


def build_demo(checkpoint=None) -> gr.Blocks:
    checkpoint = checkpoint or default_checkpoint()
    # delete_cache: Gradio's copies of served files older than the session TTL go away hourly
    with gr.Blocks(title="GenDeF studio", delete_cache=(3600, SESSION_TTL_S)) as demo:
        state = gr.State(StudioState(), time_to_live=SESSION_TTL_S, delete_callback=cleanup)
        gr.Markdown(
            "# GenDeF studio\n"
            "A video is a **canonical image** warped by a **deformation field**. Edit the image once "
            "(paint, restyle, segment, pick points) and the field carries the edit through every frame.",
            elem_id="studio-title",
        )
        notice = gr.Markdown("", elem_id="model-notice")

        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                with gr.Tabs():
                    with gr.Tab("Sample", id="tab-sample"):
                        ckpt = gr.Textbox(checkpoint, label="Checkpoint", info="folder, hub id, or checkpoints/default", elem_id="checkpoint")
                        with gr.Row():
                            seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="seed")
                            fps = gr.Slider(1, 60, value=16, step=1, label="fps", elem_id="fps")
                        frames = gr.Slider(sources.MIN_FRAMES, sources.MAX_FRAMES, value=16, step=1, label="Frames", elem_id="frames")
                        psi = gr.Slider(0.0, 1.5, value=1.0, step=0.05, label="Truncation ψ", elem_id="psi")
                        with gr.Row():
                            sample_btn = gr.Button("Sample", variant="primary", elem_id="sample-btn")
                            motion_btn = gr.Button("New motion", elem_id="new-motion-btn")
                    with gr.Tab("Upload clip", id="tab-upload"):
                        clip = gr.File(label=f"Video clip (≤ {sources.MAX_UPLOAD_MB} MB)", file_types=list(sources.VIDEO_EXTS), elem_id="clip-file")
                        with gr.Row():
                            clip_frames = gr.Slider(sources.MIN_FRAMES, sources.MAX_FRAMES, value=32, step=1, label="Frames to use")
                            clip_size = gr.Slider(sources.MIN_DECOMPOSE_SIZE, sources.MAX_DECOMPOSE_SIZE, value=128, step=32, label="Working size (px)", info="the motion is fitted at this size")
                        with gr.Row():
                            clip_start = gr.Number(0, label="Start frame", precision=0, minimum=0)
                            clip_steps = gr.Slider(0, 1000, value=200, step=10, label="Optimisation steps", info="fewer is faster, more is sharper", elem_id="clip-steps")
                        decompose_btn = gr.Button("Decompose into canonical image + field", variant="primary", elem_id="decompose-btn")
                        if EXAMPLE_CLIP.is_file():
                            gr.Examples([[str(EXAMPLE_CLIP)]], inputs=[clip], label="Example clip")
                    with gr.Tab("Open .npz", id="tab-open"):
                        npz = gr.File(label="CanonicalVideo (.npz)", file_types=[".npz"], elem_id="npz-file")
                        open_btn = gr.Button("Open", variant="primary", elem_id="open-btn")
                        example_btn = gr.Button("Open the example (astronaut photo, known pan + zoom)", visible=EXAMPLE_NPZ.is_file(), elem_id="example-npz-btn")
                output_size = gr.Dropdown(
                    list(sources.OUTPUT_SIZES), value=sources.OUTPUT_SOURCE, label="Output size", elem_id="output-size",
                    info="edits and exports at this size; clips: motion fitted at the working size, canonical rebuilt "
                    "from the full-size frames; samples: 1080p/720p are bicubic upscaling",
                )
                status = gr.Markdown("", elem_id="status")
            with gr.Column(scale=3):
                with gr.Row():
                    video = gr.Video(label="Video", autoplay=True, loop=True, interactive=False, elem_id="video-view")
                    canonical = gr.Image(label="Canonical image", interactive=False, elem_id="canonical-view", buttons=["download", "fullscreen"])
                    field = gr.Video(label="Deformation field", autoplay=True, loop=True, interactive=False, elem_id="field-view")
                strip = gr.Image(label="Frames and displacement (hue = direction, saturation = magnitude; full at the largest displacement, at least 1 px)", interactive=False, elem_id="strip-view")

        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                with gr.Tabs():
                    with gr.Tab("Scribble", id="tab-scribble"):
                        scribble_on, scribble_frame = _edit_target("scribble")
                        editor = gr.ImageEditor(
                            label="Paint on the canonical image",
                            type="numpy",
                            image_mode="RGBA",
                            sources=(),
                            transforms=(),
                            brush=gr.Brush(default_size=24, colors=["#ff2d2d", "#ffd400", "#19c37d", "#2f7bff", "#ffffff", "#000000"], color_mode="defaults"),
                            eraser=gr.Eraser(default_size=24),
                            layers=gr.LayerOptions(allow_additional_layers=True),
                            canvas_size=(DISPLAY_SIZE, DISPLAY_SIZE),
                            elem_id="scribble-editor",
                        )
                        scribble_btn = gr.Button("Apply scribble to the video", variant="primary", elem_id="apply-scribble-btn")
                    with gr.Tab("Stylize", id="tab-stylize"):
                        style_status = gr.Markdown(elem_id="stylize-status")
                        prompt = gr.Textbox(label="Prompt", placeholder="a watercolor painting, vivid colours", elem_id="prompt")
                        negative = gr.Textbox(label="Negative prompt", value="blurry, low quality")
                        with gr.Row():
                            control = gr.Dropdown(stylize.control_types(), value="canny", label="Control")
                            fast = gr.Checkbox(True, label="Few-step mode (LCM-LoRA)")
                        with gr.Row():
                            strength = gr.Slider(0.05, 1.0, value=0.6, step=0.05, label="Strength")
                            steps = gr.Slider(1, 50, value=4, step=1, label="Steps")
                            style_seed = gr.Number(0, label="Seed", precision=0)
                        style_btn = gr.Button("Stylize canonical image", variant="primary")
                        gr.Markdown("**Offline looks** (OpenCV, no downloads)")
                        with gr.Row():
                            look = gr.Dropdown(stylize.look_names(), value=(stylize.look_names() or [None])[0], label="Look", elem_id="look")
                            look_strength = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Look strength")
                        look_btn = gr.Button("Apply look", elem_id="apply-look-btn")
                    with gr.Tab("Segment", id="tab-segment"):
                        seg_status = gr.Markdown(elem_id="segment-status")
                        with gr.Row():
                            seg_mode = gr.Radio(["positive", "negative", "box corner"], value="positive", label="Click adds")
                            seg_backend = gr.Radio([segment.SEG_SAM, segment.SEG_GRABCUT], value=segment.SEG_GRABCUT, label="Segmenter")
                        seg_on, seg_frame = _edit_target("segment")
                        seg_image = gr.Image(label="Click on the object", interactive=False, elem_id="segment-image", elem_classes=["clickable"])
                        seg_points = gr.Markdown()
                        with gr.Row():
                            seg_clear_btn = gr.Button("Clear clicks")
                            seg_btn = gr.Button("Propagate mask to all frames", variant="primary", elem_id="apply-segment-btn")
                    with gr.Tab("Track", id="tab-track"):
                        track_where = gr.Radio([track.TRACK_ON_CANONICAL, track.TRACK_ON_FRAME0], value=track.TRACK_ON_CANONICAL, label="Click on")
                        track_image = gr.Image(label="Click points to track", interactive=False, elem_id="track-image", elem_classes=["clickable"])
                        track_points = gr.Textbox(label="Tracked points (canonical x, y)", interactive=False, elem_id="track-points")
                        track_json = gr.Code(label="Trajectories (JSON)", language="json", interactive=False, lines=6, max_lines=12, elem_id="track-json")
                        track_clear_btn = gr.Button("Clear points")
            with gr.Column(scale=2):
                result_video = gr.Video(label="Result", autoplay=True, loop=True, interactive=False, elem_id="result-video")
                comparison = gr.Video(label="Original | result", autoplay=True, loop=True, interactive=False, elem_id="comparison-video")
                result_files = gr.File(label="Result files", file_count="multiple", interactive=False, height=180, elem_id="result-files")
                with gr.Accordion("Export", open=True):
                    export_which = gr.Radio(["result", "original"], value="result", label="Export")
                    export_btn = gr.Button("Export mp4 + gif + .npz (+ masks / tracks)", elem_id="export-btn")
                    export_files = gr.File(label="Exported files", file_count="multiple", interactive=False, height=180, elem_id="export-files")

        views = dict(
            state=state, video=video, field=field, canonical=canonical, strip=strip, editor=editor, seg_image=seg_image,
            track_image=track_image, result_video=result_video, comparison=comparison, result_files=result_files,
            track_json=track_json, track_points=track_points, seg_points=seg_points, status=status, notice=notice,
            export_files=export_files, style_status=style_status, seg_status=seg_status, seg_backend=seg_backend,
            scribble_on=scribble_on, scribble_frame=scribble_frame, seg_on=seg_on, seg_frame=seg_frame,
        )
        on = _binder(views)
        sample_inputs = [state, ckpt, seed, frames, psi, fps, output_size]
        load = LOAD_VIEWS

        on(sample_btn.click, sources.sample, sample_inputs, load, concurrency_id="model")
        on(motion_btn.click, sources.new_motion, sample_inputs, load, concurrency_id="model")
        on(open_btn.click, sources.open_npz, [state, npz], load)
        on(example_btn.click, sources.open_example, [state], load)
        on(decompose_btn.click, sources.decompose_upload, [state, clip, clip_frames, clip_size, clip_start, clip_steps, output_size], load, concurrency_id="heavy", concurrency_limit=1)

        for target in (scribble_on.input, scribble_frame.input):
            on(target, scribble.scribble_target, [state, scribble_on, scribble_frame], ("editor",), concurrency_id="scribble-target", concurrency_limit=1)
        on(scribble_btn.click, scribble.apply_scribble, [state, editor, scribble_on, scribble_frame], RESULT_VIEWS)
        on(style_btn.click, stylize.apply_stylize, [state, prompt, negative, control, strength, steps, style_seed, fast], RESULT_VIEWS, concurrency_id="heavy", concurrency_limit=1)
        control.change(stylize.stylize_status, [control, fast], [style_status])
        fast.change(stylize.stylize_status, [control, fast], [style_status])
        on(look_btn.click, stylize.apply_look, [state, look, look_strength], RESULT_VIEWS)

        for target in (seg_on.input, seg_frame.input):
            on(target, segment.segment_target, [state, seg_on, seg_frame], ("seg_image",), concurrency_id="segment-target", concurrency_limit=1)
        on(seg_image.select, segment.segment_click, [state, seg_mode, seg_backend, seg_on, seg_frame], ("state", "seg_image", "seg_points"))
        on(seg_clear_btn.click, segment.segment_clear, [state, seg_on, seg_frame], ("state", "seg_image", "seg_points"))
        on(seg_btn.click, segment.apply_segment, [state], RESULT_VIEWS)

        on(track_image.select, track.track_click, [state, track_where], RESULT_VIEWS + ("track_json", "track_points", "track_image"))
        on(track_where.change, track.track_view, [state, track_where], ("track_image",))
        on(track_clear_btn.click, track.track_clear, [state, track_where], ("state", "track_json", "track_points", "track_image"))

        on(export_btn.click, export.export_all, [state, export_which], ("export_files",))

        demo.load(stylize.stylize_status, [control, fast], [style_status])
        demo.load(segment.segment_status, None, [seg_status])
        demo.load(segment.default_segmenter, None, [seg_backend])
        on(demo.load, sources.sample, sample_inputs, load, concurrency_id="model")
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_MAX)
    return demo


def _edit_target(name: str):
    """'Edit on: canonical image | a frame' and the frame slider (its range is set when a video loads)."""
    with gr.Row():
        on = gr.Radio([EDIT_ON_CANONICAL, EDIT_ON_FRAME], value=EDIT_ON_CANONICAL, label="Edit on", elem_id=f"{name}-on")
        frame = gr.Slider(0, 15, value=0, step=1, label="Frame", elem_id=f"{name}-frame")
    return on, frame


def _binder(views: dict):
    """on(event, fn, inputs, names): wire a callback that returns {view name: value} to those components."""

    def on(event, fn, inputs, names, **kwargs):
        @functools.wraps(fn)
        def run(*args, **kw):
            return {views[name]: value for name, value in fn(*args, **kw).items()}

        return event(run, inputs, [views[name] for name in names], **kwargs)

    return on

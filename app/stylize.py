"""Stylize tab: ControlNet img2img on the canonical image, and the offline OpenCV looks."""
import gradio as gr

from gendef.editing import stylize as st
from gendef.editing.looks import LOOKS
from gendef.editing.looks import apply_look as _look

from . import chain
from .errors import friendly, number, require, whole_number
from .state import Result
from .studio import services_of
from .views import RESULT_VIEWS, finish, require_video

PANEL = "edit"


def build(studio) -> None:
    with gr.Tab("Stylize", id="tab-stylize"):
        status = gr.Markdown(elem_id="stylize-status")
        prompt = gr.Textbox(label="Prompt", placeholder="a watercolor painting, vivid colours", elem_id="prompt")
        negative = gr.Textbox(label="Negative prompt", value="blurry, low quality")
        with gr.Row():
            control = gr.Dropdown(control_types(), value="canny", label="Control")
            fast = gr.Checkbox(True, label="Few-step mode (LCM-LoRA)")
        with gr.Row():
            strength = gr.Slider(0.05, 1.0, value=0.6, step=0.05, label="Strength")
            steps = gr.Slider(1, 50, value=4, step=1, label="Steps")
            seed = gr.Number(0, label="Seed", precision=0)
        style_btn = gr.Button("Stylize canonical image", variant="primary")
        gr.Markdown("**Offline looks** (OpenCV, no downloads)")
        with gr.Row():
            look = gr.Dropdown(look_names(), value=(look_names() or [None])[0], label="Look", elem_id="look")
            look_strength = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Look strength")
        look_btn = gr.Button("Apply look", elem_id="apply-look-btn")
    studio.add(style_status=status)
    studio.on(style_btn.click, apply_stylize, ["state", prompt, negative, control, strength, steps, seed, fast], RESULT_VIEWS,
              concurrency_id="heavy", concurrency_limit=1)
    studio.on(control.change, stylize_status, [control, fast], "style_status")
    studio.on(fast.change, stylize_status, [control, fast], "style_status")
    studio.on(look_btn.click, apply_look, ["state", look, look_strength], RESULT_VIEWS)
    studio.on(studio.demo.load, stylize_status, [control, fast], "style_status")


def control_types() -> list:
    return list(st.CONTROL_TYPES)


def stylize_status(control: str = "canny", fast: bool = True, studio=None) -> str:
    """Plain-language availability line for the Stylize tab (never downloads)."""
    if services_of(studio).has_stylizer(control, fast):
        return f"ControlNet ({control}) pipeline preloaded."
    ok, msg = st.weights_status(control or "canny", fast=bool(fast))
    if ok:
        return f"ControlNet ({control}) weights found locally. {msg}"
    return f"**ControlNet stylization is not ready.** {msg}"


@friendly
def apply_stylize(state, prompt, negative, control, strength, steps, seed, fast, progress=gr.Progress(track_tqdm=True), studio=None):
    """Fig. 5b/5c: ControlNet img2img on the canonical image (a chain's picked segment, carried to the others), then re-warp."""
    state = require_video(state)
    prompt = (prompt or "").strip()
    require(prompt, "Write a prompt describing the style, e.g. 'a watercolor painting'.")
    strength = number(strength, "Strength", 0.05, 1.0)
    steps = whole_number(steps, "Steps", 1, 50)
    seed = whole_number(seed, "Seed", 0, 2**31 - 1)
    progress(0.0, desc="loading ControlNet")

    def loading(fraction, desc=""):
        progress(0.05 + 0.25 * float(fraction), desc=desc or "loading ControlNet")

    stylizer = services_of(studio).stylizer(control or "canny", fast, loading)

    def report(fraction, desc=""):
        progress(0.3 + 0.5 * float(fraction), desc=desc or "diffusing")

    progress(0.3, desc="stylizing the canonical image")
    guidance = 1.0 if fast else 7.5  # LCM runs without classifier-free guidance
    styled = stylizer(
        state.canvas.canonical,
        prompt,
        negative_prompt=negative or "",
        strength=strength,
        steps=steps,
        guidance=guidance,
        seed=seed,
        progress=report,
    )
    frames, edits = chain.propagate(state, styled)
    result = Result("stylize", frames, styled, edits=edits)
    return finish(state, result, progress, f"Stylized ({control}, {steps} steps, strength {strength:g}): “{prompt}”.")


def look_names() -> list:
    return list(LOOKS)


@friendly
def apply_look(state, name, strength, progress=gr.Progress()):
    """Offline OpenCV looks: always available, no weights."""
    state = require_video(state)
    require(name, "Pick a look first.")
    strength = number(strength, "Look strength", 0.0, 1.0)
    progress(0.2, desc=f"applying {name}")
    styled = _look(state.canvas.canonical, name, strength=strength)
    frames, edits = chain.propagate(state, styled)
    result = Result("look", frames, styled, edits=edits)
    return finish(state, result, progress, f"Look “{name}” (strength {strength:g}) applied.")

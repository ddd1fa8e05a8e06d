"""Stylize tab: ControlNet img2img on the canonical image, and the offline OpenCV looks."""
import gradio as gr

from gendef.editing import stylize as st
from gendef.editing.looks import LOOKS
from gendef.editing.looks import apply_look as _look

from .errors import friendly, number, require, whole_number
from .state import Result
from .views import finish, require_video

_PRELOADED: dict = {}  # (control, fast) -> Stylizer built by a test or a Space


def control_types() -> list:
    return list(st.CONTROL_TYPES)


def stylize_status(control: str = "canny", fast: bool = True) -> str:
    """Plain-language availability line for the Stylize tab (never downloads)."""
    if (control, bool(fast)) in _PRELOADED:
        return f"ControlNet ({control}) pipeline preloaded."
    ok, msg = st.weights_status(control or "canny", fast=bool(fast))
    if ok:
        return f"ControlNet ({control}) weights found locally. {msg}"
    return f"**ControlNet stylization is not ready.** {msg}"


def set_stylizer(stylizer, control: str = "canny", fast: bool = True) -> None:
    """Install an already-built Stylizer (tests, or a Space that preloads one)."""
    _PRELOADED[(control, bool(fast))] = stylizer


def clear_stylizers() -> None:
    _PRELOADED.clear()


def _get_stylizer(control: str, fast: bool, progress):
    """The process-wide pipeline from gendef.editing (downloads on first use unless offline)."""
    if (control, bool(fast)) in _PRELOADED:
        return _PRELOADED[(control, bool(fast))]

    def report(fraction, desc=""):
        progress(0.05 + 0.25 * float(fraction), desc=desc or "loading ControlNet")

    return st.get_stylizer(control=control, fast=fast, progress=report)


@friendly
def apply_stylize(state, prompt, negative, control, strength, steps, seed, fast, progress=gr.Progress(track_tqdm=True)):
    """Fig. 5b/5c: ControlNet img2img on the canonical image, then re-warp."""
    state = require_video(state)
    prompt = (prompt or "").strip()
    require(prompt, "Write a prompt describing the style, e.g. 'a watercolor painting'.")
    strength = number(strength, "Strength", 0.05, 1.0)
    steps = whole_number(steps, "Steps", 1, 50)
    seed = whole_number(seed, "Seed", 0, 2**31 - 1)
    progress(0.0, desc="loading ControlNet")
    stylizer = _get_stylizer(control or "canny", fast, progress)

    def report(fraction, desc=""):
        progress(0.3 + 0.5 * float(fraction), desc=desc or "diffusing")

    progress(0.3, desc="stylizing the canonical image")
    guidance = 1.0 if fast else 7.5  # LCM runs without classifier-free guidance
    styled = stylizer(
        state.video.canonical,
        prompt,
        negative_prompt=negative or "",
        strength=strength,
        steps=steps,
        guidance=guidance,
        seed=seed,
        progress=report,
    )
    result = Result("stylize", state.preview.render(styled), styled)
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
    styled = _look(state.video.canonical, name, strength=strength)
    result = Result("look", state.preview.render(styled), styled)
    return finish(state, result, progress, f"Look “{name}” (strength {strength:g}) applied.")

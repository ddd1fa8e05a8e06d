"""Scribble tab: paint on the canonical image, the grid carries the paint through every frame."""
import time

import gradio as gr
import numpy as np

from gendef import viz
from gendef.video import CanonicalVideo, identity_grid
from gendef.videoio import to_uint8

from .errors import friendly, require
from .state import Result
from .views import finish, require_video

NOTHING_DRAWN = "Nothing drawn yet: paint on the canonical image with the brush first."


def _composite(video: CanonicalVideo, rgba: np.ndarray) -> np.ndarray:
    """The scribble baked into the canonical image (identity warp = CanonicalVideo's own compositing)."""
    hc, wc = video.canvas_size
    still = CanonicalVideo(video.canonical, identity_grid(hc, wc, 1), video.fps)
    return still.render(rgba)[0]


def _editor_rgba(editor_value) -> np.ndarray:
    """The ImageEditor's painted layers flattened to one float RGBA layer (display resolution)."""
    require(isinstance(editor_value, dict) and editor_value.get("background") is not None,
            "The editor is empty: sample or open a video first.")
    layers = [layer for layer in (editor_value.get("layers") or []) if layer is not None]
    require(layers, NOTHING_DRAWN)
    return viz.rgba_from_editor_layers(np.asarray(editor_value["background"]), [np.asarray(x) for x in layers])


@friendly
def apply_scribble(state, editor_value, progress=gr.Progress()):
    """Fig. 5a: paint on the canonical image, the grid carries the paint through every frame."""
    state = require_video(state)
    progress(0.1, desc="flattening layers")
    rgba = viz.resize_image(_editor_rgba(editor_value), state.video.canvas_size)
    painted = int((rgba[..., 3] > 0).sum())
    require(painted > 0, NOTHING_DRAWN)
    progress(0.3, desc="propagating through the grid")
    t0 = time.perf_counter()
    frames = state.video.render(rgba)
    canonical = _composite(state.video, rgba)
    edit_path = state.new_path("scribble-rgba.png")
    from PIL import Image

    Image.fromarray(to_uint8(rgba)).save(edit_path)
    result = Result("scribble", frames, canonical, {"edit_rgba": rgba, "files": [edit_path]})
    msg = f"Scribble applied: {painted} canonical pixels painted, propagated to {len(frames)} frames in {time.perf_counter() - t0:.2f} s."
    return finish(state, result, progress, msg)

"""Scribble tab: paint on the canonical image or on any frame; the grid carries the paint through every frame."""
import time

import gradio as gr
import numpy as np
from PIL import Image

from gendef import viz
from gendef.imageutil import to_uint8

from . import chain
from .errors import friendly, require
from .formats import rgba_from_editor_layers
from .state import Result, StudioState
from .views import (DISPLAY_SIZE, EDIT_ON_CANONICAL, RESULT_VIEWS, display_canonical, display_target, edit_frame,
                    edit_target, editor_update, finish, frame_slider, require_video, shown)

PANEL = "edit"
ON_LOAD = ("editor", "scribble_on", "scribble_frame")
BRUSH_COLORS = ["#ff2d2d", "#ffd400", "#19c37d", "#2f7bff", "#ffffff", "#000000"]
NOTHING_DRAWN = "Nothing drawn yet: paint on the image with the brush first."


def build(studio) -> None:
    with gr.Tab("Scribble", id="tab-scribble"):
        on, frame = edit_target("scribble")
        editor = gr.ImageEditor(
            label="Paint on the canonical image",
            type="numpy",
            image_mode="RGBA",
            sources=(),
            transforms=(),
            brush=gr.Brush(default_size=24, colors=BRUSH_COLORS, color_mode="defaults"),
            eraser=gr.Eraser(default_size=24),
            layers=gr.LayerOptions(allow_additional_layers=True),
            canvas_size=(DISPLAY_SIZE, DISPLAY_SIZE),
            elem_id="scribble-editor",
        )
        apply_btn = gr.Button("Apply scribble to the video", variant="primary", elem_id="apply-scribble-btn")
    studio.add(editor=editor, scribble_on=on, scribble_frame=frame)
    for target in (on.input, frame.input):
        studio.on(target, scribble_target, ["state", on, frame], ("editor",), concurrency_id="scribble-target", concurrency_limit=1)
    studio.on(apply_btn.click, apply_scribble, ["state", editor, on, frame], RESULT_VIEWS)


def reset(state: StudioState) -> dict:
    return dict(editor=editor_update(display_canonical(state)), scribble_on=EDIT_ON_CANONICAL, scribble_frame=frame_slider(state))


def _editor_rgba(value) -> np.ndarray:
    """The ImageEditor's painted layers flattened to one float RGBA layer (display resolution)."""
    require(isinstance(value, dict) and value.get("background") is not None,
            "The editor is empty: sample or open a video first.")
    layers = [layer for layer in (value.get("layers") or []) if layer is not None]
    require(layers, NOTHING_DRAWN)
    return rgba_from_editor_layers(np.asarray(value["background"]), [np.asarray(x) for x in layers])


@friendly
def scribble_target(state, on, frame):
    """Show the canonical image or the chosen frame in the editor (drawn layers are cleared)."""
    state = require_video(state)
    frame = edit_frame(state, on, frame)
    return dict(editor=editor_update(display_target(state, frame), frame))


def _canonical_rgba(state, rgba: np.ndarray, frame):
    """The flattened paint (display resolution) as an RGBA layer on the edited canonical image.

    A chain's frame edit gives one layer per segment (None where the frame's content never shows).
    """
    if frame is None:
        return viz.resize_image(rgba, state.canvas.canvas_size)
    on_frame = viz.resize_image(rgba, state.video.frame_size)
    require((on_frame[..., 3] > 0).any(), NOTHING_DRAWN)
    return state.video.frame_edit_to_canonical(on_frame, frame)


def _apply_on_chain(state, rgba, frame) -> tuple:
    """(preview frames, edited canonical of the picked segment, per-segment edits, message) of a chain's scribble."""
    edits = chain.carried(state, rgba) if frame is None else rgba
    k = state.segment
    reached = [i for i, e in enumerate(edits) if e is not None and (e[..., 3] > 0).any()]
    require(reached, NOTHING_DRAWN if frame is None else f"Frame {frame} shows none of the painted pixels.")
    frames = shown(state, edits)
    canonical = state.video.with_edit(edits).segments[k].canonical
    where = "" if frame is None else f" on frame {frame}"
    msg = f"Scribble{where} carried to segments {', '.join(map(str, reached))} and propagated to {len(frames)} frames."
    return frames, canonical, edits, msg


@friendly
def apply_scribble(state, value, on=EDIT_ON_CANONICAL, frame=0, progress=gr.Progress()):
    """Fig. 5a: paint on the canonical image (or on any frame, carried to it through the grid);
    the grid carries the paint through every frame."""
    state = require_video(state)
    frame = edit_frame(state, on, frame)
    progress(0.1, desc="flattening layers")
    rgba = _canonical_rgba(state, _editor_rgba(value), frame)
    if state.chain:
        progress(0.3, desc="carrying to every segment")
        frames, canonical, edits, msg = _apply_on_chain(state, rgba, frame)
        return _finish(state, frames, canonical, edits[state.segment], edits, progress, msg)
    painted = int((rgba[..., 3] > 0).sum())
    require(painted > 0, NOTHING_DRAWN if frame is None else f"Frame {frame} shows none of the painted pixels.")
    progress(0.3, desc="propagating through the grid")
    t0 = time.perf_counter()
    frames = shown(state, rgba)  # the view; exports render at output size
    canonical = state.video.with_edit(rgba).canonical
    where = "" if frame is None else f" on frame {frame}"
    msg = f"Scribble{where} applied: {painted} canonical pixels painted, propagated to {len(frames)} frames in {time.perf_counter() - t0:.2f} s."
    return _finish(state, frames, canonical, rgba, None, progress, msg)


def _finish(state, frames, canonical, rgba, edits, progress, msg) -> dict:
    """The result views, with the painted layer of the edited canonical image (if it has one) saved as a PNG."""
    files = []
    if rgba is not None:
        files.append(state.new_path("scribble-rgba.png"))
        Image.fromarray(to_uint8(rgba)).save(files[0])
    result = Result("scribble", frames, canonical, {"edit_rgba": rgba, "files": files}, edits)
    return finish(state, result, progress, msg)

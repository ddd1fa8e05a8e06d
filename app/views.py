"""What the views show: display scaling, click coordinates, status lines and result files.

Callbacks return ``{view name: value}`` dicts; ``app.studio`` maps each name to the component a tab registered.
"""
from typing import Optional

import gradio as gr
import numpy as np

from gendef import viz
from gendef.imageutil import to_uint8
from gendef.video.chunks import map_uint8, render_uint8_each
from gendef.video.io import write_video, write_video_frames

from .errors import require, whole_number
from .state import SHORT_CLIP_FRAMES, Result, StudioState

DISPLAY_SIZE = 512  # small pictures are shown upscaled by a whole factor to about this
DISPLAY_MAX = 1024  # large (full-size) canonical images are shown downscaled to this long side

RESULT_VIEWS = ("state", "result_video", "comparison", "result_files", "status")  # what every edit result fills


def require_video(state: Optional[StudioState]) -> StudioState:
    require(isinstance(state, StudioState) and state.video is not None,
            "No video yet: sample one, upload a clip or open a .npz first.")
    return state


def display_scale(size: int):
    """Display pixels per image pixel: a whole upscale for tiny images, a downscale for full-size ones.

    Editors show this display-sized view; clicks and painted layers are mapped back to
    the full-size canonical image (to_canonical_xy, scribble's resize), so nothing is
    edited at display resolution.
    """
    size = max(int(size), 1)
    if size > DISPLAY_MAX:
        return DISPLAY_MAX / size  # float < 1
    return max(1, DISPLAY_SIZE // size)  # whole factor (int)


def display_hw(state: StudioState, hw) -> tuple:
    """Display size of an image of size ``hw`` (H, W)."""
    k = state.scale
    return max(1, int(round(hw[0] * k))), max(1, int(round(hw[1] * k)))


def to_image_xy(state: StudioState, index, hw) -> tuple:
    """Display-pixel click on an image of size ``hw`` -> its (x, y), pixel centres at integers."""
    (h, w), (dh, dw) = hw, display_hw(state, hw)
    x = min(max((float(index[0]) + 0.5) * w / dw - 0.5, 0.0), w - 1.0)
    y = min(max((float(index[1]) + 0.5) * h / dh - 0.5, 0.0), h - 1.0)
    return (round(x, 3), round(y, 3))


EDIT_ON_CANONICAL = "canonical image"
EDIT_ON_FRAME = "a frame"


def to_canonical_xy(state: StudioState, index) -> tuple:
    """Display-pixel click on the edited canonical image (``state.canvas``) -> canonical (x, y)."""
    return to_image_xy(state, index, state.canvas.canvas_size)


def to_display_xy(state: StudioState, points, hw=None) -> list:
    """(x, y) on an image of size ``hw`` (default the canonical's) -> display pixels."""
    (hc, wc) = state.canvas.canvas_size if hw is None else hw
    dh, dw = display_hw(state, (hc, wc))
    return [((x + 0.5) * dw / wc - 0.5, (y + 0.5) * dh / hc - 0.5) for x, y in points]


def edit_frame(state: StudioState, on, frame):
    """None when editing the canonical image, else the chosen frame index (checked)."""
    if on != EDIT_ON_FRAME:
        return None
    return whole_number(frame, "Frame", 0, state.video.num_frames - 1)


def edit_target(name: str):
    """'Edit on: canonical image | a frame' and the frame slider (its range is set when a video loads)."""
    with gr.Row():
        on = gr.Radio([EDIT_ON_CANONICAL, EDIT_ON_FRAME], value=EDIT_ON_CANONICAL, label="Edit on", elem_id=f"{name}-on")
        frame = gr.Slider(0, 15, value=0, step=1, label="Frame", elem_id=f"{name}-frame")
    return on, frame


def frame_slider(state: StudioState):
    """The frame slider for a freshly loaded video: 0..T-1, back at frame 0."""
    return gr.Slider(minimum=0, maximum=max(state.video.num_frames - 1, 1), value=0, step=1)


def upscaled(state: StudioState, image: np.ndarray) -> np.ndarray:
    """The image at display size (upscaled for tiny videos, downscaled for full-size ones)."""
    hw = display_hw(state, image.shape[:2])
    if hw == tuple(image.shape[:2]):
        return image
    return viz.resize_image(image, hw)


def display_canonical(state: StudioState) -> np.ndarray:
    return to_uint8(upscaled(state, state.canvas.canonical))


def display_target(state: StudioState, frame) -> np.ndarray:
    """What an editor shows: the canonical image (frame None) or frame ``frame``, upscaled, uint8."""
    image = state.canvas.canonical if frame is None else state.video.render_frame(frame)
    return to_uint8(upscaled(state, image))


def editor_update(image: np.ndarray, frame=None) -> dict:
    """A fresh ImageEditor on ``image`` (no layers), labelled with what it shows."""
    label = "Paint on the canonical image" if frame is None else f"Paint on frame {frame}"
    return gr.update(value={"background": image, "layers": [], "composite": image}, label=label)


def with_points(state: StudioState, image: np.ndarray, points) -> np.ndarray:
    """Upscaled image with markers at ``points`` (pixels of that image)."""
    img = upscaled(state, image)
    if points:
        disp = np.asarray(to_display_xy(state, points, image.shape[:2]), dtype=np.float32)[None]
        img = viz.draw_tracks(img[None], disp, np.ones(disp.shape[:2], bool), trail=0)[0]
    return to_uint8(img)


def shown_frames(state: StudioState, edits=None, steps=(None,)) -> list:
    """What the views show of the preview rendered with ``edits`` (None: the video itself), once per
    step (``step(first frame, float frames) -> frames``; None: the frames as rendered).

    Up to SHORT_CLIP_FRAMES frames: float32 clips, exactly as ever. A whole clip: uint8 clips, rendered
    a chunk at a time (gendef.video.chunks), so memory is one chunk of float plus the uint8 results.
    """
    v = state.preview
    if v.num_frames > SHORT_CLIP_FRAMES:
        return render_uint8_each(v, steps, edits)
    frames = v.frames() if edits is None else v.render(edits)
    return [frames if step is None else step(0, frames) for step in steps]


def shown(state: StudioState, edits=None, step=None) -> np.ndarray:
    """:func:`shown_frames` with one step."""
    return shown_frames(state, edits, (step,))[0]


def write_mp4(state: StudioState, frames: np.ndarray, name: str) -> str:
    return str(write_video(frames, state.new_path(name), fps=state.video.fps))


def status_line(state: StudioState, extra: str = "") -> str:
    v = state.canvas
    h, w = v.frame_size
    hc, wc = v.canvas_size
    n, fps = state.video.num_frames, state.video.fps
    if state.chain:
        a, e = state.video.starts[state.segment], state.video.ends[state.segment]
        line = (f"**{state.source}** — {n} frames in {state.video.num_segments} segments, {w}x{h} px, {fps:g} fps; "
                f"editing segment {state.segment} (frames {a}-{e - 1}), canonical {wc}x{hc}")
    else:
        line = f"**{state.source}** — {n} frames, {w}x{h} px, canonical {wc}x{hc}, {fps:g} fps"
    if v.grid_size != v.frame_size:
        line += f"; motion at {v.grid_size[1]}x{v.grid_size[0]}, exports at {w}x{h}"
        if "upscaled" in v.metadata:
            line += " (upscaled, bicubic)"
    return line + (f"  \n{extra}" if extra else "")


def finish(state: StudioState, result: Result, progress, message: str) -> dict:
    """Show an edit's result: result video, original | result comparison, numeric frames file, status."""
    state.result = result
    progress(0.85, desc="encoding video")
    original = shown(state)
    result_path = write_mp4(state, result.frames, f"{result.kind}.mp4")
    side_by_side = map_uint8(viz.side_by_side, original, result.frames)  # a chunk at a time, straight to the encoder
    comparison_path = str(write_video_frames(side_by_side, state.new_path(f"{result.kind}-vs-original.mp4"), fps=state.video.fps))
    frames_path = state.new_path(f"{result.kind}-frames.npz")
    # uint8 and uncompressed: compressing float frames cost 70% of "apply" at 256 px x 128 frames
    np.savez(frames_path, original=to_uint8(original), edited=to_uint8(result.frames))
    files = [result_path, str(frames_path)] + [str(p) for p in result.extra.get("files", [])]
    progress(1.0, desc="done")
    return dict(state=state, result_video=result_path, comparison=comparison_path, result_files=files,
                status=status_line(state, message))

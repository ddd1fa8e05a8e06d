"""Segment tab: clicks and a box on the canonical image or any frame -> a canonical mask -> per-frame masks."""
from dataclasses import dataclass, field
from typing import Optional

import gradio as gr
import numpy as np

from gendef import viz
from gendef.editing import segment as sg

from . import chain
from .errors import friendly, one_line, require
from .formats import masks_to_zip
from .state import Result, StudioState, TabPart
from .studio import services_of
from .views import (EDIT_ON_CANONICAL, RESULT_VIEWS, display_canonical, edit_frame, edit_target, finish, frame_slider,
                    require_video, shown_frames, to_image_xy, with_points, write_mp4)

PANEL = "edit"
ON_LOAD = ("seg_image", "seg_points", "seg_on", "seg_frame")
MASK_COLOR = (0.1, 0.5, 1.0)
SEG_SAM = "SAM (segment-anything)"
SEG_GRABCUT = "GrabCut (offline fallback)"


@dataclass
class SegmentPart(TabPart):
    """The clicks, the box and the canonical mask they give."""

    seg_positive: list = field(default_factory=list)
    seg_negative: list = field(default_factory=list)
    seg_box: list = field(default_factory=list)
    seg_box_frame: list = field(default_factory=list)  # box corners clicked on a frame: (frame, x, y)
    mask: Optional[np.ndarray] = None


def build(studio) -> None:
    with gr.Tab("Segment", id="tab-segment"):
        status = gr.Markdown(elem_id="segment-status")
        with gr.Row():
            mode = gr.Radio(["positive", "negative", "box corner"], value="positive", label="Click adds")
            backend = gr.Radio([SEG_SAM, SEG_GRABCUT], value=SEG_GRABCUT, label="Segmenter")
        on, frame = edit_target("segment")
        image = gr.Image(label="Click on the object", interactive=False, elem_id="segment-image", elem_classes=["clickable"])
        points = gr.Markdown()
        with gr.Row():
            clear_btn = gr.Button("Clear clicks")
            apply_btn = gr.Button("Propagate mask to all frames", variant="primary", elem_id="apply-segment-btn")
    studio.add(seg_status=status, seg_backend=backend, seg_on=on, seg_frame=frame, seg_image=image, seg_points=points)
    for target in (on.input, frame.input):
        studio.on(target, segment_target, ["state", on, frame], ("seg_image",), concurrency_id="segment-target", concurrency_limit=1)
    studio.on(image.select, segment_click, ["state", mode, backend, on, frame], ("state", "seg_image", "seg_points"))
    studio.on(clear_btn.click, segment_clear, ["state", on, frame], ("state", "seg_image", "seg_points"))
    studio.on(apply_btn.click, apply_segment, ["state"], RESULT_VIEWS)
    studio.on(studio.demo.load, segment_status, None, "seg_status")
    studio.on(studio.demo.load, default_segmenter, None, "seg_backend")


def reset(state: StudioState) -> dict:
    return dict(seg_image=display_canonical(state), seg_points="", seg_on=EDIT_ON_CANONICAL, seg_frame=frame_slider(state))


def segment_status() -> str:
    ok, msg = sg.sam_status()
    if ok:
        return f"SAM weights found locally. {msg}"
    tail = "" if "GrabCut" in msg else f" Use *{SEG_GRABCUT}* meanwhile."
    return f"**SAM weights are not available.** {msg}{tail}"


def default_segmenter(studio=None) -> str:
    return SEG_SAM if services_of(studio).has_segmenter() or sg.sam_status()[0] else SEG_GRABCUT


def _part(state: StudioState) -> SegmentPart:
    return state.part(SegmentPart)


def _segment_view(state: StudioState, frame=None):
    """The canonical image (frame None) or frame ``frame``, with the mask tinted and the clicks marked."""
    seg = _part(state)
    points = seg.seg_positive + seg.seg_negative + seg.seg_box
    if frame is None:
        image, mask = state.canvas.canonical, seg.mask
    else:
        image = state.video.render_frame(frame)  # one frame at output size, not the whole clip
        on = state.on_canvas()
        mask = None if seg.mask is None else state.video.render_frame(frame, seg.mask.astype(np.float32), **on) >= 0.5
        if points:
            pos, vis = state.video.track(points, **on)
            points = [tuple(p) for p, v in zip(pos[frame].tolist(), vis[frame]) if v]
    if mask is not None:
        image = viz.overlay_masks(image[None], mask[None], color=MASK_COLOR, alpha=0.45)[0]
    return with_points(state, image, points)


def _points_text(state: StudioState) -> str:
    def fmt(pts):
        return ", ".join(f"({x:g}, {y:g})" for x, y in pts) or "–"

    seg = _part(state)
    box = fmt(seg.seg_box)
    return f"positive: {fmt(seg.seg_positive)}  \nnegative: {fmt(seg.seg_negative)}  \nbox corners: {box}"


def _sam_mask(state: StudioState, box, services):
    """SAM's mask, or None (with a warning) when SAM cannot be loaded."""
    try:
        sam = services.segmenter()
    except sg.SegmentUnavailable as e:
        gr.Warning(f"SAM unavailable, using GrabCut instead: {one_line(e)}")
        return None
    seg = _part(state)
    return sam.segment(state.canvas.canonical, positive=seg.seg_positive, negative=seg.seg_negative, box=box)


def _run_segmentation(state: StudioState, backend: str, services) -> str:
    seg = _part(state)
    box = None
    if len(seg.seg_box) == 2:
        (x0, y0), (x1, y1) = seg.seg_box
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    if not seg.seg_positive and box is None:
        seg.mask = None
        return "Add a positive click (or two box corners) on the object."
    mask = _sam_mask(state, box, services) if backend == SEG_SAM else None
    label = "SAM"
    if mask is None:
        mask = sg.grabcut_segment(state.canvas.canonical, seg.seg_positive, seg.seg_negative, box=box)
        label = "GrabCut (offline fallback, not SAM)"
    seg.mask = np.asarray(mask, dtype=bool)
    if not seg.mask.any():
        return f"{label}: no object found around the clicks; add positive clicks or two box corners around it."
    return f"{label}: mask covers {int(seg.mask.sum())} canonical pixels."


@friendly
def segment_target(state, on, frame):
    """Click on the canonical image or on the chosen frame."""
    state = require_video(state)
    return dict(seg_image=_segment_view(state, edit_frame(state, on, frame)))


def _add_box_corner(state: StudioState, frame, xy) -> None:
    """Two corners on one frame make a box there; it goes to the canonical image as the box around its mapped corners."""
    seg = _part(state)
    if frame is None:
        seg.seg_box, seg.seg_box_frame = (seg.seg_box + [xy])[-2:], []
        return
    seg.seg_box_frame = [c for c in seg.seg_box_frame if c[0] == frame][-1:] + [(frame,) + tuple(xy)]
    if len(seg.seg_box_frame) < 2:
        seg.seg_box = (seg.seg_box + [_to_canonical(state, frame, xy)])[-2:]
        return
    (_, x0, y0), (_, x1, y1) = seg.seg_box_frame
    corners = chain.frame_to_canvas(state, [(x0, y0), (x1, y0), (x0, y1), (x1, y1)], frame)
    lo, hi = corners.min(0), corners.max(0)
    seg.seg_box = [_rounded(lo), _rounded(hi)]


def _rounded(p) -> tuple:
    return (round(float(p[0]), 3), round(float(p[1]), 3))


def _to_canonical(state: StudioState, frame, xy) -> tuple:
    return _rounded(chain.frame_to_canvas(state, [xy], frame)[0])


@friendly
def segment_click(state, mode, backend, evt: gr.SelectData, on=EDIT_ON_CANONICAL, frame=0, progress=gr.Progress(track_tqdm=True), studio=None):
    """Each click refines the canonical mask immediately (SAM caches the image embedding).
    Clicks on a frame are carried to the canonical image through the grid."""
    state = require_video(state)
    require(evt is not None and evt.index is not None, "Click inside the image.")
    frame = edit_frame(state, on, frame)
    size = state.canvas.canvas_size if frame is None else state.video.frame_size
    xy = to_image_xy(state, evt.index, size)
    if mode == "box corner":
        _add_box_corner(state, frame, xy)
    else:
        point = xy if frame is None else _to_canonical(state, frame, xy)
        seg = _part(state)
        (seg.seg_negative if mode == "negative" else seg.seg_positive).append(point)
    msg = _run_segmentation(state, backend, services_of(studio))
    return dict(state=state, seg_image=_segment_view(state, frame), seg_points=_points_text(state) + "  \n" + msg)


@friendly
def segment_clear(state, on=EDIT_ON_CANONICAL, frame=0):
    state = require_video(state)
    state.parts[SegmentPart] = SegmentPart()
    return dict(state=state, seg_image=_segment_view(state, edit_frame(state, on, frame)), seg_points=_points_text(state))


@friendly
def apply_segment(state, progress=gr.Progress()):
    """Fig. 7b: one canonical mask -> per-frame masks, overlay and cut-out videos, PNG zip."""
    state = require_video(state)
    mask = _part(state).mask
    require(mask is not None and mask.any(), "No mask yet: click on the object in the canonical image first.")
    progress(0.2, desc="propagating the mask")
    masks = state.preview.propagate_mask(mask, **state.on_canvas())
    overlay, cut = shown_frames(state, steps=(
        lambda a, frames: viz.overlay_masks(frames, masks[a : a + len(frames)], color=MASK_COLOR, alpha=0.45),
        lambda a, frames: viz.cutout(frames, masks[a : a + len(frames)]),
    ))
    progress(0.6, desc="writing masks")
    cut_path = write_mp4(state, cut, "cutout.mp4")
    full = masks if state.preview is state.video else state.video.propagate_mask(mask, **state.on_canvas())
    zip_path = masks_to_zip(full, state.new_path("masks.zip"))  # PNG masks at output size
    result = Result("segment", overlay, None, {"masks": masks, "cutout": cut, "files": [cut_path, zip_path]})
    return finish(state, result, progress, f"Mask propagated to {len(masks)} frames (overlay shown; cut-out and PNG masks in the files).")

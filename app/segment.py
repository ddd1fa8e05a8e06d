"""Segment tab: clicks and a box on the canonical image or any frame -> a canonical mask -> per-frame masks."""
import gradio as gr
import numpy as np

from gendef import viz
from gendef.editing import segment as sg

from .errors import friendly, one_line, require
from .state import Result, StudioState
from .views import EDIT_ON_CANONICAL, edit_frame, finish, require_video, to_image_xy, with_points, write_mp4

MASK_COLOR = (0.1, 0.5, 1.0)
SEG_SAM = "SAM (segment-anything)"
SEG_GRABCUT = "GrabCut (offline fallback)"

_PRELOADED: dict = {}  # "segmenter" -> Segmenter built by a test or a Space


def segment_status() -> str:
    ok, msg = sg.sam_status()
    if ok:
        return f"SAM weights found locally. {msg}"
    tail = "" if "GrabCut" in msg else f" Use *{SEG_GRABCUT}* meanwhile."
    return f"**SAM weights are not available.** {msg}{tail}"


def default_segmenter() -> str:
    return SEG_SAM if "segmenter" in _PRELOADED or sg.sam_status()[0] else SEG_GRABCUT


def set_segmenter(segmenter) -> None:
    """Install an already-built Segmenter (tests, or a preloaded Space)."""
    _PRELOADED["segmenter"] = segmenter


def clear_segmenters() -> None:
    _PRELOADED.clear()


def _segment_view(state: StudioState, frame=None):
    """The canonical image (frame None) or frame ``frame``, with the mask tinted and the clicks marked."""
    points = state.seg_positive + state.seg_negative + state.seg_box
    if frame is None:
        image, mask = state.video.canonical, state.mask
    else:
        image = state.video.render_frame(frame)  # one frame at output size, not the whole clip
        mask = None if state.mask is None else state.video.render_frame(frame, state.mask.astype(np.float32)) >= 0.5
        if points:
            pos, vis = state.video.track(points)
            points = [tuple(p) for p, v in zip(pos[frame].tolist(), vis[frame]) if v]
    if mask is not None:
        image = viz.overlay_masks(image[None], mask[None], color=MASK_COLOR, alpha=0.45)[0]
    return with_points(state, image, points)


def _points_text(state: StudioState) -> str:
    def fmt(pts):
        return ", ".join(f"({x:g}, {y:g})" for x, y in pts) or "–"

    box = fmt(state.seg_box)
    return f"positive: {fmt(state.seg_positive)}  \nnegative: {fmt(state.seg_negative)}  \nbox corners: {box}"


def _sam_mask(state: StudioState, box):
    """SAM's mask, or None (with a warning) when SAM cannot be loaded."""
    try:
        seg = _PRELOADED.get("segmenter") or sg.get_segmenter()
    except sg.SegmentUnavailable as e:
        gr.Warning(f"SAM unavailable, using GrabCut instead: {one_line(e)}")
        return None
    return seg.segment(state.video.canonical, positive=state.seg_positive, negative=state.seg_negative, box=box)


def _run_segmentation(state: StudioState, backend: str) -> str:
    box = None
    if len(state.seg_box) == 2:
        (x0, y0), (x1, y1) = state.seg_box
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    if not state.seg_positive and box is None:
        state.mask = None
        return "Add a positive click (or two box corners) on the object."
    mask = _sam_mask(state, box) if backend == SEG_SAM else None
    label = "SAM"
    if mask is None:
        mask = sg.grabcut_segment(state.video.canonical, state.seg_positive, state.seg_negative, box=box)
        label = "GrabCut (offline fallback, not SAM)"
    state.mask = np.asarray(mask, dtype=bool)
    if not state.mask.any():
        return f"{label}: no object found around the clicks; add positive clicks or two box corners around it."
    return f"{label}: mask covers {int(state.mask.sum())} canonical pixels."


@friendly
def segment_target(state, on, frame):
    """Click on the canonical image or on the chosen frame."""
    state = require_video(state)
    return dict(seg_image=_segment_view(state, edit_frame(state, on, frame)))


def _add_box_corner(state: StudioState, frame, xy) -> None:
    """Two corners on one frame make a box there; it goes to the canonical image as the box around its mapped corners."""
    if frame is None:
        state.seg_box, state.seg_box_frame = (state.seg_box + [xy])[-2:], []
        return
    state.seg_box_frame = [c for c in state.seg_box_frame if c[0] == frame][-1:] + [(frame,) + tuple(xy)]
    if len(state.seg_box_frame) < 2:
        state.seg_box = (state.seg_box + [_to_canonical(state, frame, xy)])[-2:]
        return
    (_, x0, y0), (_, x1, y1) = state.seg_box_frame
    corners = state.video.frame_to_canonical([(x0, y0), (x1, y0), (x0, y1), (x1, y1)], frame)
    lo, hi = corners.min(0), corners.max(0)
    state.seg_box = [_rounded(lo), _rounded(hi)]


def _rounded(p) -> tuple:
    return (round(float(p[0]), 3), round(float(p[1]), 3))


def _to_canonical(state: StudioState, frame, xy) -> tuple:
    return _rounded(state.video.frame_to_canonical([xy], frame)[0])


@friendly
def segment_click(state, mode, backend, evt: gr.SelectData, on=EDIT_ON_CANONICAL, frame=0, progress=gr.Progress(track_tqdm=True)):
    """Each click refines the canonical mask immediately (SAM caches the image embedding).
    Clicks on a frame are carried to the canonical image through the grid."""
    state = require_video(state)
    require(evt is not None and evt.index is not None, "Click inside the image.")
    frame = edit_frame(state, on, frame)
    size = state.video.canvas_size if frame is None else state.video.frame_size
    xy = to_image_xy(state, evt.index, size)
    if mode == "box corner":
        _add_box_corner(state, frame, xy)
    else:
        point = xy if frame is None else _to_canonical(state, frame, xy)
        (state.seg_negative if mode == "negative" else state.seg_positive).append(point)
    msg = _run_segmentation(state, backend)
    return dict(state=state, seg_image=_segment_view(state, frame), seg_points=_points_text(state) + "  \n" + msg)


@friendly
def segment_clear(state, on=EDIT_ON_CANONICAL, frame=0):
    state = require_video(state)
    state.clear_segmentation()
    return dict(state=state, seg_image=_segment_view(state, edit_frame(state, on, frame)), seg_points=_points_text(state))


@friendly
def apply_segment(state, progress=gr.Progress()):
    """Fig. 7b: one canonical mask -> per-frame masks, overlay and cut-out videos, PNG zip."""
    state = require_video(state)
    require(state.mask is not None and state.mask.any(), "No mask yet: click on the object in the canonical image first.")
    progress(0.2, desc="propagating the mask")
    masks = state.preview.propagate_mask(state.mask)
    frames = state.preview.frames()
    overlay = viz.overlay_masks(frames, masks, color=MASK_COLOR, alpha=0.45)
    cut = viz.cutout(frames, masks)
    progress(0.6, desc="writing masks")
    cut_path = write_mp4(state, cut, "cutout.mp4")
    full = masks if state.preview is state.video else state.video.propagate_mask(state.mask)
    zip_path = viz.masks_to_zip(full, state.new_path("masks.zip"))  # PNG masks at output size
    result = Result("segment", overlay, None, {"masks": masks, "cutout": cut, "files": [cut_path, zip_path]})
    return finish(state, result, progress, f"Mask propagated to {len(masks)} frames (overlay shown; cut-out and PNG masks in the files).")

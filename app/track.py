"""Track tab: click points on the canonical image or frame 0, follow them through every frame.

For a chain of segments: points live on the picked segment's canonical image ("frame 0": that
segment's first frame) and are handed along the chain to the whole clip."""
import json
from dataclasses import dataclass, field
from typing import Optional

import gradio as gr

from gendef import viz

from . import chain
from .errors import friendly, require
from .formats import tracks_to_csv, tracks_to_json
from .state import Result, StudioState, TabPart
from .views import RESULT_VIEWS, display_canonical, finish, require_video, to_canonical_xy, to_image_xy, with_points
from .views import shown as shown_clip

PANEL = "edit"
ON_LOAD = ("track_image", "track_json", "track_points")
TRACK_ON_CANONICAL = "canonical image"
TRACK_ON_FRAME0 = "frame 0"
MAX_TRACK_POINTS = 32


@dataclass
class TrackPart(TabPart):
    """The tracked points (canonical x, y) and their trajectories at output size."""

    track_points: list = field(default_factory=list)
    tracks: Optional[tuple] = None  # (positions [T, N, 2], visible [T, N])


def build(studio) -> None:
    with gr.Tab("Track", id="tab-track"):
        where = gr.Radio([TRACK_ON_CANONICAL, TRACK_ON_FRAME0], value=TRACK_ON_CANONICAL, label="Click on")
        image = gr.Image(label="Click points to track", interactive=False, elem_id="track-image", elem_classes=["clickable"])
        points = gr.Textbox(label="Tracked points (canonical x, y)", interactive=False, elem_id="track-points")
        trajectories = gr.Code(label="Trajectories (JSON)", language="json", interactive=False, lines=6, max_lines=12, elem_id="track-json")
        clear_btn = gr.Button("Clear points")
    studio.add(track_image=image, track_points=points, track_json=trajectories)
    studio.on(image.select, track_click, ["state", where], RESULT_VIEWS + ("track_json", "track_points", "track_image"))
    studio.on(where.change, track_view, ["state", where], ("track_image",))
    studio.on(clear_btn.click, track_clear, ["state", where], ("state", "track_json", "track_points", "track_image"))


def reset(state: StudioState) -> dict:
    return dict(track_image=display_canonical(state), track_json="", track_points="[]")


def _view(state: StudioState, where):
    if where == TRACK_ON_FRAME0:  # a chain: the picked segment's first frame
        return with_points(state, state.video.render_frame(chain.first_frame(state)), [])
    return with_points(state, state.canvas.canonical, state.part(TrackPart).track_points)


@friendly
def track_view(state, where):
    """The picture the user clicks on for tracking: canonical image or frame 0."""
    return dict(track_image=_view(require_video(state), where))


@friendly
def track_click(state, where, evt: gr.SelectData, progress=gr.Progress()):
    """Fig. 7a: add a point, track every point through all frames, draw and export the trajectories."""
    state = require_video(state)
    require(evt is not None and evt.index is not None, "Click inside the image.")
    if where == TRACK_ON_FRAME0:  # frame 0 is shown at output size (display-scaled)
        fxy = to_image_xy(state, evt.index, state.video.frame_size)
        c = chain.frame_to_canvas(state, [fxy], chain.first_frame(state))[0]
        xy = (round(float(c[0]), 3), round(float(c[1]), 3))
    else:
        xy = to_canonical_xy(state, evt.index)
    part = state.part(TrackPart)
    require(len(part.track_points) < MAX_TRACK_POINTS, f"At most {MAX_TRACK_POINTS} tracked points; clear them to start again.")
    part.track_points.append(xy)
    return _track_result(state, where, progress)


def _track_result(state: StudioState, where, progress) -> dict:
    part = state.part(TrackPart)
    progress(0.2, desc="tracking")
    on = state.on_canvas()
    pos, vis = state.video.track(part.track_points, **on)  # output pixels: what the files hold
    part.tracks = (pos, vis)
    shown = state.preview.track(part.track_points, **on) if state.preview is not state.video else (pos, vis)
    frames = shown_clip(state, step=lambda a, clip: viz.draw_tracks(clip, *shown, first=a))
    text = tracks_to_json(pos, vis, state.video.fps)
    json_path = state.new_path("tracks.json")
    json_path.write_text(text)
    csv_path = state.new_path("tracks.csv")
    csv_path.write_text(tracks_to_csv(pos, vis))
    result = Result("track", frames, None, {"files": [json_path, csv_path]})
    msg = f"Tracking {len(part.track_points)} point(s): visible in {int(vis.sum())} of {vis.size} point-frames."
    views = finish(state, result, progress, msg)
    views.update(track_json=text, track_points=json.dumps([list(p) for p in part.track_points]), track_image=_view(state, where))
    return views


@friendly
def track_clear(state, where):
    state = require_video(state)
    state.parts[TrackPart] = TrackPart()
    return dict(state=state, track_json="", track_points="[]", track_image=_view(state, where))

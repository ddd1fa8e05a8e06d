"""Track tab: click points on the canonical image or frame 0, follow them through every frame."""
import json

import gradio as gr

from gendef import viz

from .errors import friendly, require
from .state import Result, StudioState
from .views import finish, require_video, to_canonical_xy, to_image_xy, with_points

TRACK_ON_CANONICAL = "canonical image"
TRACK_ON_FRAME0 = "frame 0"
MAX_TRACK_POINTS = 32


def _view(state: StudioState, where):
    if where == TRACK_ON_FRAME0:
        return with_points(state, state.video.render_frame(0), [])
    return with_points(state, state.video.canonical, state.track_points)


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
        c = state.video.frame_to_canonical([fxy], 0)[0]
        xy = (round(float(c[0]), 3), round(float(c[1]), 3))
    else:
        xy = to_canonical_xy(state, evt.index)
    require(len(state.track_points) < MAX_TRACK_POINTS, f"At most {MAX_TRACK_POINTS} tracked points; clear them to start again.")
    state.track_points.append(xy)
    return _track_result(state, where, progress)


def _track_result(state: StudioState, where, progress) -> dict:
    progress(0.2, desc="tracking")
    pos, vis = state.video.track(state.track_points)  # output pixels: what the files hold
    state.tracks = (pos, vis)
    shown = state.preview.track(state.track_points) if state.preview is not state.video else (pos, vis)
    frames = viz.draw_tracks(state.preview.frames(), *shown)
    text = viz.tracks_to_json(pos, vis, state.video.fps)
    json_path = state.new_path("tracks.json")
    json_path.write_text(text)
    csv_path = state.new_path("tracks.csv")
    csv_path.write_text(viz.tracks_to_csv(pos, vis))
    result = Result("track", frames, None, {"files": [json_path, csv_path]})
    msg = f"Tracking {len(state.track_points)} point(s): visible in {int(vis.sum())} of {vis.size} point-frames."
    views = finish(state, result, progress, msg)
    views.update(track_json=text, track_points=json.dumps([list(p) for p in state.track_points]), track_image=_view(state, where))
    return views


@friendly
def track_clear(state, where):
    state = require_video(state)
    state.track_points, state.tracks = [], None
    return dict(state=state, track_json="", track_points="[]", track_image=_view(state, where))

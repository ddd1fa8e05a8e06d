"""A whole clip as a chain of segments, as the tabs see it: the picked segment, its boundaries, carried edits.

The tabs edit one canonical image, ``state.canvas``: the loaded CanonicalVideo, or the picked
segment of a SegmentedVideo. An edit on it goes to ``SegmentedVideo.carry`` (gendef computes;
this module only decides which call), so the propagated video renders the whole clip. Frame
positions are clip frames; a click on a frame maps to the picked segment's canonical image.
"""
from __future__ import annotations

from .errors import require
from .state import StudioState
from .views import shown

SEGMENT_LABEL = "segment {k}: frames {a}-{b}"


def canvas_side(state: StudioState) -> int:
    """The long side of the largest canonical image (one display scale for every segment)."""
    if not state.chain:
        return max(state.video.canvas_size)
    return max(max(s.canvas_size) for s in state.video.segments)


def labels(state: StudioState) -> list:
    """'segment k: frames a-b' per segment (clip frames, inclusive), a cut named where a segment starts with one."""
    v = state.video
    out = []
    for k, (a, e) in enumerate(zip(v.starts, v.ends)):
        label = SEGMENT_LABEL.format(k=k, a=a, b=e - 1)
        out.append(label + (" (after a cut)" if a in v.cuts else ""))
    return out


def segment_from_label(state: StudioState, label) -> int:
    """The segment a dropdown label (or a number) names."""
    names = labels(state)
    if label in names:
        return names.index(label)
    try:
        k = int(label)
    except (TypeError, ValueError):
        k = -1
    require(0 <= k < len(names), f"Pick one of the {len(names)} segments.")
    return k


def boundaries_text(state: StudioState) -> str:
    """The chain in words: its segments, the frames neighbours share, the cuts."""
    v = state.video
    lines = [f"**{v.num_segments} segments** (each its own canonical image; editing segment {state.segment}):"]
    lines += [f"- {label}" for label in labels(state)]
    shared = [f"{i}|{i + 1}: frames {r.start}-{r.stop - 1}" for i in range(v.num_segments - 1)
              for r in [v.shared_frames(i)] if len(r)]
    if shared:
        lines.append("Cross-faded overlaps: " + ", ".join(shared) + ".")
    if v.cuts:
        lines.append("Hard cuts at frames " + ", ".join(str(c) for c in sorted(v.cuts)) + " (nothing carries across a cut).")
    return "\n".join(lines)


def first_frame(state: StudioState) -> int:
    """The clip frame where the picked segment starts (0 for one canonical image)."""
    return state.video.starts[state.segment] if state.chain else 0


def frame_to_canvas(state: StudioState, points, frame: int):
    """Points on clip frame ``frame`` -> coordinates on ``state.canvas``'s canonical image [P, 2].

    For a chain the frame must be one the picked segment renders.
    """
    if not state.chain:
        return state.video.frame_to_canonical(points, frame)
    v, k = state.video, state.segment
    a, e = v.starts[k], v.ends[k]
    require(a <= frame < e, f"Frame {frame} is not in segment {k} (frames {a}-{e - 1}): pick a frame there, or its segment.")
    return state.canvas.frame_to_canonical(points, frame - a)


def carried(state: StudioState, edit):
    """An edit of ``state.canvas``'s canonical image as the loaded video renders it: itself, or one per segment."""
    return state.video.carry(edit, state.segment) if state.chain else edit


def propagate(state: StudioState, edit) -> tuple:
    """(preview frames, per-segment edits or None) of an edit (RGB or RGBA) of ``state.canvas``'s canonical image."""
    if not state.chain:
        return shown(state, edit), None
    edits = carried(state, edit)
    return shown(state, edits), edits

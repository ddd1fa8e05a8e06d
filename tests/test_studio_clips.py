"""The studio on whole clips (issue 28, item 3): the whole clip by default, progress per segment,
the segment picker, the frame limit checked from the header, bounded previews. Tiny synthetic clips."""
import dataclasses

import gradio as gr
import numpy as np
import pytest

from app import sources, viewer
from app.errors import StudioInputError
from app.state import StudioState
from gendef.video.io import write_video
from gendef.video.segments import SegmentedVideo
from tests.test_clips import pan, texture

SIDE = 64


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory):
    """Two 10-frame shots of different photos, a hard cut at frame 10."""
    frames = np.concatenate([pan(texture(8), 10, SIDE, speed=0.3), pan(texture(9), 10, SIDE, speed=-0.3)])
    return write_video(frames, tmp_path_factory.mktemp("clips") / "two.mp4", fps=10)


@pytest.fixture(scope="module")
def decomposed(cut_clip):
    seen = []

    def progress(fraction, desc=""):
        seen.append((float(fraction), desc))

    out = sources.decompose_upload(StudioState(), str(cut_clip), 0, 64, 0, 3, sources.OUTPUT_WORKING, progress=progress)
    return out, seen


def test_the_whole_clip_is_decomposed_into_its_segments(decomposed):
    out, _ = decomposed
    state = out["state"]
    assert state.chain and isinstance(state.video, SegmentedVideo)
    assert state.video.num_segments == 2 and state.video.num_frames == 20
    assert state.video.starts == (0, 10) and state.video.cuts == frozenset({10})
    assert "frames 0..19" in state.source


def test_progress_names_each_segment_and_rises(decomposed):
    _, seen = decomposed
    descs = [d for _, d in seen]
    assert any(d.startswith("segment 1 of 2") for d in descs) and any(d.startswith("segment 2 of 2") for d in descs)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_the_segment_picker_lists_the_segments(decomposed):
    out, _ = decomposed
    assert out["segment_pick"]["visible"] is True
    assert out["segment_pick"]["choices"] == ["segment 0: frames 0-9", "segment 1: frames 10-19 (after a cut)"]
    state = viewer.pick_segment(out["state"], "segment 1: frames 10-19 (after a cut)")["state"]
    assert state.segment == 1


def test_frames_zero_or_empty_is_the_whole_clip_and_a_range_otherwise():
    assert sources._clip_frames(0) is None and sources._clip_frames(None) is None and sources._clip_frames("") is None
    assert sources._clip_frames(300) == 300
    with pytest.raises(StudioInputError, match=f"between {sources.MIN_FRAMES} and {sources.MAX_CLIP_FRAMES}"):
        sources._clip_frames(sources.MAX_CLIP_FRAMES + 1)


def test_a_clip_over_the_limit_is_refused_from_the_header(cut_clip, monkeypatch):
    from gendef import decomposition

    real = sources.probe(cut_clip)
    monkeypatch.setattr(sources, "probe", lambda p: dataclasses.replace(real, frames=sources.MAX_CLIP_FRAMES + 20, fps=30.0))

    def never(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(decomposition, "decompose_clip", never)
    monkeypatch.setattr(decomposition, "decompose_file", never)
    with pytest.raises(gr.Error) as err:
        sources.decompose_upload(StudioState(), str(cut_clip), 0, 64, 0, 3)
    msg = str(err.value)
    assert "\n" not in msg and f"at most {sources.MAX_CLIP_FRAMES} frames" in msg and "1820 frames from frame 0" in msg
    with pytest.raises(gr.Error, match="1810 frames from frame 10"):  # a later start is counted from there
        sources.decompose_upload(StudioState(), str(cut_clip), None, 64, 10, 3)


def test_a_long_clips_preview_is_shrunk_before_rendering(decomposed, monkeypatch):
    chain = decomposed[0]["state"].video
    st = StudioState()
    st.video = st.preview = chain  # 20 frames: shown as before
    sources.bounded_preview(st)
    assert st.preview is chain
    budget = 140 * 40 * 40 * 3 * 4
    monkeypatch.setattr(sources, "MAX_PREVIEW_BYTES", budget)
    st.video = st.preview = _repeated(chain, 7)  # 140 frames of 64x64: over the budget
    sources.bounded_preview(st)
    h, w = st.preview.frame_size
    assert st.preview.num_frames == 140 and 140 * h * w * 3 * 4 <= budget and (h, w) == (40, 40)
    assert st.video.frame_size == (SIDE, SIDE)  # exports keep the output size


def _repeated(chain: SegmentedVideo, times: int) -> SegmentedVideo:
    """The chain's segments laid end to end ``times`` times, a cut between copies."""
    pairs, cuts = [], []
    for r in range(times):
        off = r * chain.num_frames
        pairs += [(off + s, seg) for s, seg in zip(chain.starts, chain.segments)]
        cuts += [off + c for c in chain.cuts] + ([off] if r else [])
    return SegmentedVideo(pairs, fps=chain.fps, cuts=cuts)


def test_a_short_clip_without_cuts_stays_one_canonical_image(tmp_path):
    """Up to MAX_FRAMES frames the studio splits at hard cuts only: a fast pan keeps one canvas, as before."""
    from gendef.decomposition import clip as clip_mod
    from gendef.video.canonical_video import CanonicalVideo

    path = write_video(pan(texture(3), 16, SIDE, speed=3.0), tmp_path / "pan.mp4", fps=10)
    assert len(clip_mod.scan(path, 0, 16, (SIDE, SIDE))[1]) > 1  # the decomposer's own rules would split it
    state = sources.decompose_upload(StudioState(), str(path), 0, 64, 0, 3, sources.OUTPUT_WORKING)["state"]
    assert isinstance(state.video, CanonicalVideo) and state.video.num_frames == 16


def test_a_reopened_whole_clip_keeps_every_frame(decomposed, tmp_path):
    """A chain of segments reopens whole (up to MAX_CLIP_FRAMES, as decomposed); a one-canvas file keeps its first MAX_FRAMES."""
    from gendef.video.canonical_video import CanonicalVideo

    chain = _repeated(decomposed[0]["state"].video, 10)  # 200 frames
    state = sources.open_npz(StudioState(), str(chain.save(tmp_path / "whole.npz")))["state"]
    assert state.chain and state.video.num_frames == 200 > sources.MAX_FRAMES
    np.testing.assert_array_equal(state.video.render_frame(170), chain.render_frame(170))
    seg = chain.segments[0]
    one = CanonicalVideo(seg.canonical, np.concatenate([seg.grid] * 20), fps=10.0)  # 200 frames, one canvas
    with pytest.warns(UserWarning, match=f"keeps the first {sources.MAX_FRAMES}"):
        state = sources.open_npz(StudioState(), str(one.save(tmp_path / "one.npz")))["state"]
    assert state.video.num_frames == sources.MAX_FRAMES


def _peak(fn) -> tuple:
    import tracemalloc

    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def long_state(decomposed):
    st = StudioState()
    st.set_video(_repeated(decomposed[0]["state"].video, 30), "600 frames")  # 600 frames of 64x64
    return st


def test_a_whole_clips_edit_is_shown_as_uint8_rendered_a_chunk_at_a_time(long_state):
    """The views of a clip over MAX_FRAMES hold uint8 frames, the float render's exactly, and never the
    clip as float (600 frames of 64x64 are 29.5 MB as float32; the views held four such copies before)."""
    from app import stylize
    from gendef.imageutil import to_uint8

    st = long_state
    float_clip = st.video.num_frames * SIDE * SIDE * 3 * 4
    _, peak = _peak(lambda: stylize.apply_look(st, stylize.look_names()[0], 1.0))
    frames = st.result.frames
    assert frames.dtype == np.uint8 and frames.shape == (600, SIDE, SIDE, 3)
    np.testing.assert_array_equal(frames, to_uint8(st.preview.render(st.result.edits)))
    assert peak < float_clip


def test_a_whole_clips_export_streams_its_frames(long_state, monkeypatch):
    """The mp4 is encoded as the frames are rendered; the gif only within MAX_GIF_PIXELS; an export
    over MAX_EXPORT_PIXELS is refused in one line before anything is rendered."""
    from app import export
    from gendef.video.reader import iter_clip

    st = long_state
    st.result = None
    monkeypatch.setattr(export, "MAX_GIF_PIXELS", 100 * SIDE * SIDE)
    files, peak = _peak(lambda: export.export_all(st, "original")["export_files"])
    assert files[0].endswith(".mp4") and not any(f.endswith(".gif") for f in files)
    assert len(list(iter_clip(files[0]))) == 600
    assert peak < st.video.num_frames * SIDE * SIDE * 3 / 2  # less than half the clip as uint8 (.npz, masks included)
    monkeypatch.setattr(export, "MAX_EXPORT_PIXELS", 599 * SIDE * SIDE)
    monkeypatch.setattr(export, "_export_stream", lambda *a: pytest.fail("rendered"))
    with pytest.raises(gr.Error) as err:
        export.export_all(st, "original")
    assert "\n" not in str(err.value) and "600 frames at 64x64" in str(err.value)


def test_a_whole_clips_mask_and_tracks_are_drawn_a_chunk_at_a_time(long_state):
    """Segment and Track on a clip over MAX_FRAMES: uint8 views, the whole-clip float pictures' exactly
    (tints and cut-outs frame by frame; trails reaching back across chunk boundaries)."""
    from app import segment, track
    from app.segment import SegmentPart
    from gendef import viz
    from gendef.imageutil import to_uint8

    st = long_state
    st.pick_segment(0)
    hc, wc = st.canvas.canvas_size
    yy, xx = np.mgrid[:hc, :wc]
    st.part(SegmentPart).mask = np.hypot(xx - wc / 2, yy - hc / 2) <= 8
    segment.apply_segment(st)
    masks = st.result.extra["masks"]
    frames = st.preview.frames()
    np.testing.assert_array_equal(st.result.frames, to_uint8(viz.overlay_masks(frames, masks, color=segment.MASK_COLOR, alpha=0.45)))
    np.testing.assert_array_equal(st.result.extra["cutout"], to_uint8(viz.cutout(frames, masks)))
    st.part(track.TrackPart).track_points.append((wc / 2, hc / 2))
    track._track_result(st, track.TRACK_ON_CANONICAL, lambda *a, **k: None)
    pos, vis = st.part(track.TrackPart).tracks
    assert st.result.frames.dtype == np.uint8 and vis[:10].all()
    np.testing.assert_array_equal(st.result.frames, to_uint8(viz.draw_tracks(frames, pos, vis)))


# ------------------------------------------------------------------------------ refinement (opt-in)
def _recording(monkeypatch, result):
    """decompose_clip and decompose_file replaced by fakes that record what they were given and return ``result``."""
    from gendef import decomposition

    calls = {}

    def fake_clip(path, **kw):
        calls["clip"] = kw
        return result

    def fake_file(path, **kw):
        calls["file"] = kw
        return result if not isinstance(result, SegmentedVideo) else result.segments[0]

    monkeypatch.setattr(decomposition, "decompose_clip", fake_clip)
    monkeypatch.setattr(decomposition, "decompose_file", fake_file)
    return calls


def test_the_refine_slider_is_passed_to_decompose_clip(decomposed, cut_clip, monkeypatch):
    from gendef.decomposition.refine import Refinement

    assert sources.clip_refinement(0) is None and sources.clip_refinement(None) is None and sources.clip_refinement("") is None
    assert sources.clip_refinement(0.5) == Refinement(budget=0.5) and sources.clip_refinement(1) == Refinement(budget=1.0)
    chain = decomposed[0]["state"].video
    calls = _recording(monkeypatch, chain)
    sources.decompose_upload(StudioState(), str(cut_clip), 0, 64, 0, 3, sources.OUTPUT_WORKING)  # the slider's default
    assert calls["clip"]["refinement"] == Refinement(budget=0.25) == Refinement()
    calls = _recording(monkeypatch, chain)
    sources.decompose_upload(StudioState(), str(cut_clip), 0, 64, 0, 3, sources.OUTPUT_WORKING, 0)  # off
    assert calls["clip"]["refinement"] is None
    refined = SegmentedVideo(list(zip(chain.starts, chain.segments)), fps=chain.fps, cuts=chain.cuts, metadata={"refitted_frames": 7})
    calls = _recording(monkeypatch, refined)
    out = sources.decompose_upload(StudioState(), str(cut_clip), 0, 64, 0, 3, sources.OUTPUT_WORKING, 0.5)
    assert calls["clip"]["refinement"] == Refinement(budget=0.5) and "file" not in calls
    assert out["state"].source.endswith("; refinement refitted 7 frames")


@pytest.mark.parametrize("bad, message", [(1.5, "between 0 and 1, got 1.5"), (-0.25, "between 0 and 1, got -0.25"),
                                          ("lots", "must be a number between 0 and 1")])
def test_a_refine_share_out_of_range_is_one_line(bad, message, cut_clip, monkeypatch):
    calls = _recording(monkeypatch, None)
    with pytest.raises(gr.Error, match=message) as err:
        sources.decompose_upload(StudioState(), str(cut_clip), 0, 64, 0, 3, sources.OUTPUT_WORKING, bad)
    assert "\n" not in err.value.message and err.value.message.startswith(sources.REFINE_LABEL) and calls == {}


def test_refinement_is_not_used_on_one_span_and_a_note_says_so(decomposed, cut_clip, monkeypatch):
    one = decomposed[0]["state"].video.segments[0]  # a CanonicalVideo: what a one-span clip gives
    notes = []
    monkeypatch.setattr(gr, "Info", notes.append)
    calls = _recording(monkeypatch, one)
    out = sources.decompose_upload(StudioState(), str(cut_clip), 16, 64, 0, 3, sources.OUTPUT_WORKING, 0.5)  # 16 frames by hand
    assert "refinement" not in calls["file"] and "clip" not in calls
    assert notes[-1].startswith("Refinement not used: 16 frames set by hand are fitted with one canonical image")
    assert "refinement" not in out["state"].source
    calls = _recording(monkeypatch, one)
    sources.decompose_upload(StudioState(), str(cut_clip), 0, 64, 0, 3, sources.OUTPUT_WORKING, 0.5)  # whole clip, one span
    assert calls["clip"]["refinement"].budget == 0.5
    assert notes[-1].startswith("Refinement not used: the clip is one span")
    notes.clear()
    sources.decompose_upload(StudioState(), str(cut_clip), 0, 64, 0, 3, sources.OUTPUT_WORKING, 0)  # off: no note
    sources.decompose_upload(StudioState(), str(cut_clip), 16, 64, 0, 3, sources.OUTPUT_WORKING)  # the default: no note
    assert notes and not any(n.startswith("Refinement") for n in notes)  # (16 frames of 20 say which they are)


def test_a_whole_clip_refined_for_real(decomposed, cut_clip):
    """The real decomposer with the slider at 0.5: the chain says refinement ran, and on how many frames; on by
    default (the fixture's decompose), and off at 0: no trace."""
    assert decomposed[0]["state"].video.metadata["refine_floor_db"] == 27.0
    off = sources.decompose_upload(StudioState(), str(cut_clip), 0, 64, 0, 3, sources.OUTPUT_WORKING, 0)["state"]
    assert "refine_floor_db" not in off.video.metadata and "refinement" not in off.source
    state = sources.decompose_upload(StudioState(), str(cut_clip), 0, 64, 0, 3, sources.OUTPUT_WORKING, 0.5)["state"]
    v = state.video
    assert isinstance(v, SegmentedVideo) and v.num_frames == 20 and 10 in v.cuts
    assert v.metadata["refine_floor_db"] == 27.0 and 0 <= v.metadata["refitted_frames"] <= 10
    assert state.source.endswith(f"; refinement refitted {v.metadata['refitted_frames']} frames")

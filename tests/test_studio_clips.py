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

"""Whole clips (issue 28): cuts, spans, streaming, one-span clips unchanged. Tiny synthetic clips."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from gendef.decomposition import clip as clip_mod
from gendef.decomposition.clip import decompose_clip
from gendef.decomposition.cuts import ClipStats, find_cuts
from gendef.decomposition.pipeline import decompose_file
from gendef.decomposition.quality import psnr
from gendef.decomposition.segmenting import Span, SpanRules, SpanStream, plan_spans
from gendef.video.canonical_video import CanonicalVideo
from gendef.video.io import write_video
from gendef.video.segments import SegmentedVideo


def texture(seed: int, size: int = 160) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.random((12, 12, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    img += 0.15 * cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 1.5)
    return np.clip(img, 0, 1)


def pan(img: np.ndarray, n: int, side: int, speed: float = 1.0) -> np.ndarray:
    out = []
    for t in range(n):
        m = np.float32([[1, 0, -speed * t - 10], [0, 1, -0.5 * speed * t - 10]])
        out.append(cv2.warpAffine(img, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return (np.stack(out) * 255 + 0.5).astype(np.uint8)


def stats_of(frames: np.ndarray) -> ClipStats:
    st = ClipStats()
    for f in frames:
        st.add(f)
    return st


def test_a_known_cut_is_found_within_two_frames():
    frames = np.concatenate([pan(texture(1), 23, 64), pan(texture(2), 17, 64, speed=-1.0)])
    cuts = find_cuts(stats_of(frames))
    assert len(cuts) == 1 and abs(cuts[0] - 23) <= 2
    spans = plan_spans(stats_of(frames), cuts, 64, SpanRules(max_span=16, min_span=6))
    assert any(s.end == cuts[0] for s in spans) and any(s.start == cuts[0] for s in spans)  # no overlap across the cut
    assert spans[0].start == 0 and spans[-1].end == len(frames)


def test_spans_overlap_within_a_shot_and_cover_every_frame():
    st = stats_of(pan(texture(3), 50, 48))
    spans = plan_spans(st, [], 48, SpanRules(max_span=16, min_span=6, overlap=4))
    assert len(spans) >= 3
    for a, b in zip(spans, spans[1:]):
        assert b.start == a.end - 4
    assert all(s.frames <= 16 for s in spans)


def test_span_stream_holds_one_span_at_most():
    frames = (np.arange(40)[:, None, None, None] * np.ones((1, 4, 4, 3))).astype(np.float32)
    spans = [Span(0, 12, "length"), Span(8, 20, "cut"), Span(20, 40, "end")]
    stream = SpanStream(iter(frames), spans)
    got = [(s, v[:, 0, 0, 0].astype(int).tolist()) for s, v in stream]
    assert [g[1] for g in got] == [list(range(0, 12)), list(range(8, 20)), list(range(20, 40))]
    assert stream.peak_held == 20


def entering_clip() -> np.ndarray:
    """Static textured background; a bright disc enters from the left and leaves on the right."""
    bg = texture(4, 48)
    out = []
    for t in range(40):
        img = bg.copy()
        cv2.circle(img, (int(-8 + 1.6 * t), 24), 7, (1.0, 0.9, 0.1), -1)
        out.append(img)
    return (np.stack(out) * 255 + 0.5).astype(np.uint8)


def test_content_that_enters_and_leaves_gets_new_segments_and_reconstructs(tmp_path):
    frames = entering_clip()
    path = write_video(frames, tmp_path / "enter.mp4", fps=10)
    rules = SpanRules(max_span=40, min_span=8, content=0.04)
    vid = decompose_clip(path, size=48, steps=30, layers=1, rules=rules, refinement=None)  # the planner's spans alone
    assert isinstance(vid, SegmentedVideo) and len(vid.segments) >= 3
    assert vid.num_frames == 40
    assert {v.metadata["ends_by"] for v in vid.segments[:-1]} == {"content"}
    ref = np.stack(list(clip_mod._frames(path, 0, 40, (48, 48))))
    assert psnr(vid.render(), ref) >= 26.0
    one = decompose_clip(path, size=48, steps=30, layers=1, rules=SpanRules(max_span=40, content=1.0))
    assert isinstance(one, CanonicalVideo)
    assert psnr(vid.render(), ref) > psnr(one.frames(), ref) + 4.0  # a new segment beats one canvas


def test_a_long_clip_is_decoded_as_a_stream(tmp_path, monkeypatch):
    frames = pan(texture(5), 150, 32, speed=0.3)
    path = write_video(frames, tmp_path / "long.mp4", fps=25)
    import gendef.video.reader as reader

    def whole(*a, **k):
        raise AssertionError("the clip was read whole")

    monkeypatch.setattr(reader, "read_video", whole)
    vid = decompose_clip(path, size=32, steps=4, layers=1, rules=SpanRules(max_span=20, min_span=8))
    assert isinstance(vid, SegmentedVideo) and vid.num_frames == 150
    assert vid.metadata["peak_frames_held"] <= 20
    assert len(vid.segments) >= 150 // 20
    out = vid.save(tmp_path / "long.npz")
    with np.load(out, allow_pickle=False) as z:
        assert z["starts"].tolist() == list(vid.starts)


def test_a_one_segment_clip_is_exactly_todays_result(tmp_path):
    frames = pan(texture(6), 14, 40, speed=0.5)
    path = write_video(frames, tmp_path / "short.mp4", fps=12)
    got = decompose_clip(path, size=40, steps=12, layers=1)
    want = decompose_file(path, size=40, steps=12, layers=1)
    assert isinstance(got, CanonicalVideo)
    assert np.array_equal(got.canonical, want.canonical) and np.array_equal(got.grid, want.grid)
    assert got.metadata["psnr"] == want.metadata["psnr"]


def test_too_long_a_clip_is_refused_from_the_header(tmp_path, monkeypatch):
    frames = pan(texture(7), 12, 32)
    path = write_video(frames, tmp_path / "c.mp4", fps=12)
    monkeypatch.setattr(clip_mod, "MAX_CLIP_FRAMES", 10)
    with pytest.raises(Exception, match="at most 10 frames"):
        decompose_clip(path, size=32)


def test_segmented_render_cross_fades_the_overlap():
    a = CanonicalVideo(canonical=np.zeros((8, 8, 3), np.float32), grid=np.full((6, 4, 4, 2), 3.0, np.float32))
    b = CanonicalVideo(canonical=np.ones((8, 8, 3), np.float32), grid=np.full((6, 4, 4, 2), 3.0, np.float32))
    seg = SegmentedVideo([(0, a), (3, b)], fps=10)  # frames 3, 4, 5 shared
    vals = [float(f.mean()) for f in seg.iter_frames()]
    assert seg.num_frames == 9
    assert vals[:3] == [0.0, 0.0, 0.0] and vals[6:] == [1.0, 1.0, 1.0]
    assert vals[3] == pytest.approx(0.25) and vals[4] == pytest.approx(0.5) and vals[5] == pytest.approx(0.75)


def test_the_cli_decomposes_a_clip_with_a_cut_into_segments(tmp_path, capsys):
    from gendef.cli import main

    frames = np.concatenate([pan(texture(8), 10, 32, speed=0.3), pan(texture(9), 10, 32, speed=-0.3)])
    src = write_video(frames, tmp_path / "two.mp4", fps=10)
    out = tmp_path / "two.npz"
    assert main(["decompose", str(src), "--out", str(out), "--size", "32", "--steps", "3", "--layers", "1", "--quiet"]) == 0
    assert "2 segments (1 cuts)" in capsys.readouterr().out
    with np.load(out, allow_pickle=False) as z:
        assert z["starts"].tolist() == [0, 10] and z["cuts"].tolist() == [10]


def test_the_stream_gives_the_frames_read_video_gives(tmp_path):
    from gendef.video.reader import iter_clip, read_video

    path = write_video(pan(texture(10), 9, 40), tmp_path / "s.mp4", fps=10)
    whole, _ = read_video(path, start=2, num_frames=5, resize_to=(20, 20), dtype="float32")
    streamed = np.stack(list(iter_clip(path, start=2, count=5, resize_to=(20, 20), dtype="float32")))
    assert streamed.shape == (5, 20, 20, 3) and np.array_equal(streamed, whole)


def test_clips_without_movers_pay_no_layers_trial(tmp_path, monkeypatch):
    """layers auto (the default) on a clip of several spans with no mover: no span runs the
    layers' trial, and every span is exactly the one-canvas fit."""
    from gendef.decomposition import layer_choice

    calls, trial = [], layer_choice.trial

    def counted(*args, **kwargs):
        calls.append(trial(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(layer_choice, "trial", counted)
    path = write_video(pan(texture(7), 40, 32, speed=0.5), tmp_path / "pan.mp4", fps=10)
    rules = SpanRules(max_span=16, min_span=6)
    auto = decompose_clip(path, size=32, steps=8, rules=rules)
    one = decompose_clip(path, size=32, steps=8, layers=1, rules=rules)
    assert isinstance(auto, SegmentedVideo) and len(auto.segments) >= 3
    assert calls == [] and "layers_trials" not in auto.metadata
    for a, b in zip(auto.segments, one.segments):
        assert np.array_equal(a.grid, b.grid) and np.array_equal(a.canonical, b.canonical)


def test_the_cli_refines_by_default_on_request_and_refuses_a_bad_share(tmp_path, capsys):
    from gendef.cli import main

    frames = np.concatenate([pan(texture(8), 10, 32, speed=0.3), pan(texture(9), 10, 32, speed=-0.3)])
    src = write_video(frames, tmp_path / "two.mp4", fps=10)
    out = tmp_path / "two.npz"
    assert main(["decompose", str(src), "--out", str(out), "--size", "32", "--steps", "3", "--layers", "1", "--quiet",
                 "--refine", "0.5"]) == 0
    from gendef.video.segments import SegmentedVideo

    meta = SegmentedVideo.load(out).metadata
    assert meta["refine_floor_db"] == 27.0 and 0 <= meta["refitted_frames"] <= 10
    capsys.readouterr()
    assert main(["decompose", str(src), "--out", str(out), "--refine", "2", "--quiet"]) != 0
    assert "--refine must be a share" in capsys.readouterr().err
    base = ["decompose", str(src), "--out", str(out), "--size", "32", "--steps", "3", "--layers", "1", "--quiet"]
    assert main(base) == 0  # on by default, at 0.25 of the clip's frames
    assert SegmentedVideo.load(out).metadata["refine_floor_db"] == 27.0
    assert main([*base, "--refine", "0"]) == 0
    assert "refine_floor_db" not in SegmentedVideo.load(out).metadata

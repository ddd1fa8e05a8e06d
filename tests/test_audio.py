"""The clip's sound survives decompose -> edit -> export (moviepy), at the right span."""
import logging
import shutil

import numpy as np
import pytest

from gendef.video.audio import AudioSpan, has_audio
from gendef.video.canonical_video import CanonicalVideo

SR = 44100
FPS = 12.0
START_FRAME, FRAMES = 6, 16  # 16 frames from 0.5 s


def _chirp(t):
    """A frequency ramp (300 Hz + 400 Hz/s): every instant has its own waveform, so the start is identifiable."""
    return 0.5 * np.sin(2 * np.pi * (300.0 * t + 200.0 * t * t))


def make_tone_clip(path, size=48):
    """3 s of a moving gradient at 12 fps with a chirp soundtrack, written with moviepy (H.264 + AAC)."""
    from moviepy import AudioClip, ImageSequenceClip

    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    frames = [np.stack([(xx + 1.5 * t) % size / (size - 1), yy / (size - 1), 0.5 + 0 * xx], -1) for t in range(int(3 * FPS))]
    frames = [(f * 255).astype(np.uint8) for f in frames]
    sound = AudioClip(lambda t: np.stack([_chirp(np.asarray(t))] * 2, -1), duration=3.0, fps=SR)
    ImageSequenceClip(frames, fps=FPS).with_audio(sound).write_videofile(str(path), codec="libx264", audio_codec="aac", logger=None)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_tone_clip(tmp_path_factory.mktemp("clip") / "tone.mp4")


@pytest.fixture(scope="module")
def decomposed(clip):
    from gendef.decomposition import decompose_file

    return decompose_file(str(clip), start=START_FRAME, frames=FRAMES, size=48, steps=4)


def _decoded(path):
    from moviepy import AudioFileClip

    with AudioFileClip(str(path), fps=SR) as a:
        return a.to_soundarray(fps=SR).mean(-1)


def _start_of(sound) -> float:
    """Where in the source chirp ``sound`` starts (s): the lag of the best cross-correlation."""
    from scipy.signal import correlate

    ref = _chirp(np.arange(int(3.0 * SR)) / SR)
    x = sound[int(0.05 * SR) : int(1.2 * SR)]  # away from the encoder's edges
    c = correlate(ref, x, mode="valid", method="fft")
    return (int(np.argmax(c)) - int(0.05 * SR)) / SR


def test_decompose_records_where_the_sound_is(clip, decomposed):
    span = AudioSpan.from_metadata(decomposed.metadata)
    assert span == AudioSpan(str(clip.resolve()), 0.5, FRAMES / FPS)
    assert isinstance(decomposed.metadata["audio"], dict)  # plain JSON: paths and numbers only


def test_export_has_the_matching_span(decomposed, tmp_path):
    out = decomposed.to_video(tmp_path / "edited.mp4", image=np.zeros(decomposed.canvas_size + (4,), np.float32))
    sound = _decoded(out)
    duration = len(sound) / SR
    assert duration == pytest.approx(FRAMES / FPS, abs=0.03)  # one AAC frame is 23 ms
    start = _start_of(sound)
    assert start == pytest.approx(0.5, abs=0.002), start  # measured: within a few samples
    # and the sound is the chirp, not noise: correlation with the expected span near 1
    ref = _chirp(0.5 + np.arange(len(sound)) / SR)
    core = slice(int(0.05 * SR), int(1.2 * SR))
    assert np.corrcoef(ref[core], sound[core])[0, 1] > 0.95


def test_missing_source_warns_once_and_exports_silently(decomposed, tmp_path, caplog):
    moved = CanonicalVideo.load(decomposed.save(tmp_path / "v.npz"))
    moved.metadata["audio"]["path"] = str(tmp_path / "gone.mp4")
    with caplog.at_level(logging.WARNING, logger="gendef.video.audio"):
        out = moved.to_video(tmp_path / "silent.mp4")
    assert out.stat().st_size > 0 and not has_audio(out)
    lines = [r.getMessage() for r in caplog.records if r.name == "gendef.video.audio"]
    assert len(lines) == 1 and "not found" in lines[0] and "\n" not in lines[0]


def test_cli_render_audio_switch(decomposed, clip, tmp_path):
    from gendef.cli import main

    doc = decomposed.save(tmp_path / "v.npz")
    assert main(["render", str(doc), "--out", str(tmp_path / "a.mp4")]) == 0
    assert has_audio(tmp_path / "a.mp4")
    assert main(["render", str(doc), "--out", str(tmp_path / "b.mp4"), "--audio", "none"]) == 0
    assert not has_audio(tmp_path / "b.mp4")
    other = shutil.copy(clip, tmp_path / "other.mp4")
    assert main(["render", str(doc), "--out", str(tmp_path / "c.mp4"), "--audio", str(other)]) == 0
    assert _start_of(_decoded(tmp_path / "c.mp4")) == pytest.approx(0.5, abs=0.002)  # the recorded span of that file

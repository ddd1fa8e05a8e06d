"""The clip's sound: where it lives (metadata, paths only) and muxing the matching span into an mp4.

A CanonicalVideo decomposed from a file with an audio track records
``metadata["audio"] = {"path": <source file>, "start": <seconds>, "duration": <seconds>}``.
Exports read the span back from the source with moviepy and mux it next to the encoded
video stream (copied, not re-encoded). A source that has gone missing or lost its audio
gives one warning line and a silent export, never a failure.
"""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ..errors import UsageError, VideoIOError

log = logging.getLogger("gendef.video.audio")

AUDIO_EXTS = (".mp4", ".mov", ".mkv", ".webm", ".m4v", ".avi")  # containers that carry the muxed sound
AUTO = "auto"

__all__ = ["AudioSpan", "AUTO", "has_audio", "source_audio", "resolve_audio", "export_audio", "mux_audio"]


@dataclass(frozen=True)
class AudioSpan:
    """``duration`` seconds of ``path``'s audio track from ``start`` seconds."""

    path: str
    start: float
    duration: float

    def to_metadata(self) -> dict:
        return {"path": self.path, "start": float(self.start), "duration": float(self.duration)}

    @classmethod
    def from_metadata(cls, meta) -> Optional["AudioSpan"]:
        """The span stored in a CanonicalVideo's metadata, or None (absent or malformed)."""
        a = meta.get("audio") if isinstance(meta, dict) else None
        try:
            span = cls(str(a["path"]), float(a["start"]), float(a["duration"]))
        except (TypeError, KeyError, ValueError):
            return None
        return span if span.start >= 0 and span.duration > 0 else None


def has_audio(path: Union[str, os.PathLike]) -> bool:
    """Whether ``path`` is a media file with an audio stream (reads the header only)."""
    from moviepy.video.io.ffmpeg_reader import ffmpeg_parse_infos

    p = Path(path)
    if not p.is_file():
        return False
    try:
        return bool(ffmpeg_parse_infos(str(p), check_duration=False).get("audio_found"))
    except (OSError, IOError, ValueError, KeyError, IndexError):
        return False


def source_audio(path, start: float, duration: float) -> Optional[dict]:
    """Metadata entry for the audio a clip of ``duration`` s from ``start`` s of ``path`` plays, or None (no audio)."""
    if not has_audio(path):
        return None
    return AudioSpan(str(Path(path).resolve()), float(start), float(duration)).to_metadata()


def resolve_audio(audio, metadata: dict, duration: float) -> tuple:
    """What an export plays: ``(AudioSpan or None, warning or None)``.

    ``audio``: ``"auto"`` (the source recorded in ``metadata``, if any), ``None``/``"none"``
    (silent), or a file path (that file's audio, over the recorded span or from 0 s).
    """
    if audio is None or (isinstance(audio, str) and audio.lower() == "none"):
        return None, None
    span = AudioSpan.from_metadata(metadata)
    if isinstance(audio, str) and audio == AUTO:
        if span is None:
            return None, None
    else:
        start = span.start if span is not None else 0.0
        span = AudioSpan(str(audio), start, duration)
    span = AudioSpan(span.path, span.start, float(duration))
    if not Path(span.path).is_file():
        return None, f"audio source {span.path} not found; exporting without sound"
    if not has_audio(span.path):
        return None, f"{span.path} has no audio track; exporting without sound"
    return span, None


def export_audio(audio, metadata: dict, duration: float, path=None) -> Optional[AudioSpan]:
    """The sound an export of ``duration`` s to ``path`` plays (:func:`resolve_audio`), or None.

    A .gif is always silent; a missing or silent source logs one warning line and gives None.
    """
    if path is not None and Path(path).suffix.lower() == ".gif":
        return None
    span, warning = resolve_audio(audio, metadata, duration)
    if warning:
        log.warning("warning: %s", warning)
    return span


def mux_audio(video: Path, span: AudioSpan, out: Path) -> None:
    """``out`` = ``video``'s stream (copied) + ``span`` of the source's audio (AAC). ``out`` needs an mp4-like name."""
    from moviepy import AudioFileClip
    from moviepy.video.io.ffmpeg_tools import ffmpeg_merge_video_audio

    if Path(out).suffix.lower() not in AUDIO_EXTS:
        raise UsageError(f"{out}: sound needs a video container ({', '.join(AUDIO_EXTS)})")
    with tempfile.TemporaryDirectory(prefix="gendef-audio-") as tmp:
        sound = Path(tmp) / "sound.m4a"
        try:
            with AudioFileClip(span.path) as clip:
                end = min(span.start + span.duration, clip.duration)
                if end <= span.start:
                    raise VideoIOError(f"{span.path}: its audio ends at {clip.duration:.2f} s, before {span.start:.2f} s")
                clip.subclipped(span.start, end).write_audiofile(str(sound), fps=clip.fps, codec="aac", logger=None)
            ffmpeg_merge_video_audio(str(video), str(sound), str(out), logger=None)
        except OSError as e:  # moviepy raises IOError with ffmpeg's whole stderr
            why = ([ln for ln in str(e).splitlines() if ln.strip()] or [e.__class__.__name__])[-1].strip()
            raise VideoIOError(f"muxing the sound of {span.path} failed ({why})") from None

"""The data model and what serves it (the ground floor: imports only ``gendef.errors`` and ``gendef.imageutil``).

- :mod:`~gendef.video.canonical_video`: ``CanonicalVideo``, a canonical image + sampling grid + fps + padding + interpolation.
- :mod:`~gendef.video.padding`: how a video samples its canonical image (black, grey or the edge outside it;
  bilinear or bicubic between pixels), the one remap.
- :mod:`~gendef.video.segments`: ``SegmentedVideo``, a whole clip as a chain of CanonicalVideos;
  ``load_video_npz`` opens either kind of file.
- :mod:`~gendef.video.tracking`: point tracking (inverse look-up), frame -> canonical look-up, flows.
- :mod:`~gendef.video.grid`: pixel conventions, identity, upsampling and inversion of grids.
- :mod:`~gendef.video.io`: reading and writing video and image files.
- :mod:`~gendef.video.reader`: the one video reader: header probes, clips read with their size checked first.
- :mod:`~gendef.video.decoder_logging`: the decoders kept quiet for one read, their settings restored after.
- :mod:`~gendef.video.npzfile`: ``.npz`` headers checked before anything is decompressed.
- :mod:`~gendef.video.npzformat`: the CanonicalVideo and SegmentedVideo ``.npz`` formats and their limits.
- :mod:`~gendef.video.audio`: the source clip's sound, muxed into exports.
- :mod:`~gendef.video.fullsize`: the canonical image at the source's full resolution.
- :mod:`~gendef.video.frame_edit`: an edit painted on one frame, taken back to canonical space.
- :mod:`~gendef.video.chunks`: a whole clip rendered a chunk at a time, kept or streamed as uint8.
"""
from .canonical_video import CanonicalVideo
from .segments import SegmentedVideo, load_video_npz

__all__ = ["CanonicalVideo", "SegmentedVideo", "load_video_npz"]

"""GenDeF: videos as a canonical image warped by a generative deformation field.

``from gendef import CanonicalVideo, SegmentedVideo, GenDeF``; ``gendef.load(path)`` opens either
kind of .npz. Heavy pieces (torch networks,
the decomposer) are imported lazily so that ``import gendef`` stays cheap.
"""
from .errors import GenDeFError
from .video.canonical_video import CanonicalVideo
from .video.segments import SegmentedVideo, load_video_npz
from .errors import CanonicalVideoError

load = load_video_npz  # gendef.load(path): a CanonicalVideo, or a SegmentedVideo for a chain of segments

__version__ = "0.1.0"
__all__ = ["CanonicalVideo", "SegmentedVideo", "load", "load_video_npz", "CanonicalVideoError", "GenDeFError", "GenDeF", "decompose", "__version__"]


def __getattr__(name):
    if name == "GenDeF":
        from .generator.model import GenDeF

        return GenDeF
    if name == "decompose":
        from .decomposition import decompose

        return decompose
    raise AttributeError(f"module 'gendef' has no attribute {name!r}")

"""GenDeF: videos as a canonical image warped by a generative deformation field.

``from gendef import CanonicalVideo, GenDeF``. Heavy pieces (torch networks,
the decomposer) are imported lazily so that ``import gendef`` stays cheap.
"""
from .errors import GenDeFError
from .video.canonical_video import CanonicalVideo
from .errors import CanonicalVideoError

__version__ = "0.1.0"
__all__ = ["CanonicalVideo", "CanonicalVideoError", "GenDeFError", "GenDeF", "decompose", "__version__"]


def __getattr__(name):
    if name == "GenDeF":
        from .generator.gendef import GenDeF

        return GenDeF
    if name == "decompose":
        from .decomposition import decompose

        return decompose
    raise AttributeError(f"module 'gendef' has no attribute {name!r}")

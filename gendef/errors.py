"""The one family of user-facing errors.

Everything a person can cause (a bad file, an absurd setting, missing weights) raises a
subclass of :class:`GenDeFError` with a one-line message saying what is wrong and what to do.
The CLI and the studio catch ``GenDeFError`` and show that line; any other exception is a bug
and keeps its traceback in the log.

The domain classes also derive from ``ValueError`` (bad input) or ``RuntimeError``
(something unavailable), so older ``except ValueError`` call sites keep working.
"""
from __future__ import annotations


class GenDeFError(Exception):
    """Base class of every user-facing error (the message is one line)."""


class UsageError(GenDeFError, ValueError):
    """Command-line arguments or API arguments that cannot be used."""


class CanonicalVideoError(GenDeFError, ValueError):
    """Malformed CanonicalVideo data or .npz files."""


class NpzHeaderError(CanonicalVideoError):
    """The archive or one of its .npy headers is unreadable (message is one line)."""


class OutputSizeError(CanonicalVideoError):
    """Bad output size or source frames for a full-size canonical (message is user-facing)."""


class VideoIOError(GenDeFError, ValueError):
    """Unreadable, unsupported or oversized media; failed encodes."""


class CheckpointError(GenDeFError, ValueError):
    """A checkpoint that cannot be found, read, trusted or matched to its config."""


class ConfigError(GenDeFError, ValueError):
    """A model or training config (file or override) that cannot be used."""


class ModelConfigError(ConfigError):
    """A model config key or value that is unknown, out of range or too large (one line)."""


class DecomposeError(GenDeFError, ValueError):
    """Bad input for the decomposer."""


class DatasetError(GenDeFError, ValueError):
    """A dataset, or generator arguments for synthetic data, that cannot be used."""


class MetricsError(GenDeFError, ValueError):
    """A bad metric request or an unavailable detector."""


class MissingExtra(GenDeFError, RuntimeError):
    """An optional part of the install (a pyproject extra) is missing; the message names the pip command."""


class WeightsUnavailable(GenDeFError, RuntimeError):
    """External weights (SD/ControlNet, SAM, a checkpoint) missing or unreachable; says how to get them."""


class StylizeUnavailable(WeightsUnavailable):
    """Stable Diffusion / ControlNet weights missing or unusable."""


class SegmentUnavailable(WeightsUnavailable):
    """SAM weights missing or unusable (GrabCut still works)."""


class ModelUnavailable(WeightsUnavailable):
    """A GenDeF checkpoint for the studio that is missing, unreadable or offline."""


def one_line(err: BaseException, limit: int = 400) -> str:
    """The error's message folded to one line (its class name when it has none)."""
    text = " ".join(str(err).split()) or err.__class__.__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."

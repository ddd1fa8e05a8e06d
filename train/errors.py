"""Errors the trainer reports to the user as one line (``main`` prints them and returns the exit code)."""
from __future__ import annotations

from gendef.errors import ConfigError as _GenDeFConfigError
from gendef.errors import GenDeFError


class TrainError(GenDeFError, ValueError):
    """A run that cannot start or go on; the message is user-facing. ``exit_code`` is what ``main`` returns."""

    exit_code = 2


class ConfigError(TrainError, _GenDeFConfigError):
    """A config file or override that cannot be used."""


class NonFiniteLoss(TrainError):
    """A NaN/inf loss stopped the run; the last good checkpoint is named in the message."""

    exit_code = 3


class CheckpointDamaged(TrainError):
    """A checkpoint whose files do not match its manifest, or whose RNG state cannot be restored."""

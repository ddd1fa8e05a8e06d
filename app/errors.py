"""Studio error handling and input parsing: one place decides what the user sees.

User-facing failures are ``gendef.errors.GenDeFError`` (the library's per-domain classes, and
``StudioInputError`` raised by the parsers below): they become a one-line toast. Anything else
is a bug: its traceback goes to the log and the user gets a short "internal error" toast,
never a dead page.
"""
import functools
import math
import logging

import gradio as gr

from gendef.errors import GenDeFError, UsageError, one_line

log = logging.getLogger("gendef.studio")

__all__ = ["StudioInputError", "fail", "require", "friendly", "whole_number", "number", "one_line"]


class StudioInputError(UsageError):
    """A widget value the studio cannot use (message is user-facing)."""


def fail(message: str):
    """Stop the callback with a one-line message for the user."""
    raise StudioInputError(message)


def require(condition, message: str) -> None:
    if not condition:
        fail(message)


def friendly(fn):
    """User errors -> one-line toast; anything else -> traceback in the log + short toast."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except GenDeFError as e:
            raise gr.Error(one_line(e), print_exception=False) from None
        except Exception as e:
            log.exception("studio callback %s failed", fn.__name__)
            raise gr.Error(f"Internal error ({e.__class__.__name__}); the details are in the server log.", print_exception=False) from None

    return wrapper


def _as_float(value) -> float:
    """A widget value as a float; NaN when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def whole_number(value, what: str, lo: int, hi: int) -> int:
    """An int in [lo, hi] from a widget value, or a one-line error naming the range."""
    n = _as_float(value)
    if not math.isfinite(n) or n != int(n):
        fail(f"{what} must be a whole number between {lo} and {hi}.")
    n = int(n)
    require(lo <= n <= hi, f"{what} must be between {lo} and {hi}, got {n}.")
    return n


def number(value, what: str, lo: float, hi: float) -> float:
    """A float in [lo, hi] from a widget value, or a one-line error naming the range."""
    f = _as_float(value)
    if f != f:
        fail(f"{what} must be a number between {lo:g} and {hi:g}.")
    require(lo <= f <= hi, f"{what} must be between {lo:g} and {hi:g}, got {f:g}.")
    return f

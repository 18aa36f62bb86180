"""Errors of the correlator (one base class; subclasses only where a caller acts differently)."""

from __future__ import annotations

from tapio_common.errors import TapioError


class CorrelatorError(TapioError):
    """Base of the correlator's errors."""


class ReplayInputError(CorrelatorError):
    """A replay input line is not a valid Event (the message names file:line)."""

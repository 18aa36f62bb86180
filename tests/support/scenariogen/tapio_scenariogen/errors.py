"""Errors of the scenario generator and scorer."""

from __future__ import annotations

from tapio_common.errors import TapioError


class ScenarioError(TapioError):
    """A scenario cannot be generated, read or scored (unknown family, bad file, ...)."""

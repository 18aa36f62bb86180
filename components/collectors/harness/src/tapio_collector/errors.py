"""Errors of the collector harness and of the sources it runs."""

from __future__ import annotations

from tapio_common.errors import TapioError


class CollectorError(TapioError):
    """A collector cannot run (its message is one line the operator can act on)."""


class SourceError(CollectorError):
    """Raised by a Source for a fatal problem (bad credentials, a missing device): the collector
    stops with this message and a non-zero exit. Transient problems are the source's to retry."""

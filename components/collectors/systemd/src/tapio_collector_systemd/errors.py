"""Errors of the systemd collector."""

from __future__ import annotations

from tapio_common.errors import TapioError


class SystemdCollectorError(TapioError):
    """Base of the systemd collector's errors (state file, settings)."""


class BusError(SystemdCollectorError):
    """The bus or systemd cannot be reached or refused a call: the source retries."""

"""Errors of the systemd collector (pure: the domain raises them too)."""

from __future__ import annotations

from tapio_common.errors import TapioError


class SystemdCollectorError(TapioError):
    """Base of the systemd collector's errors. Raised out of the Source (e.g. the state file
    cannot be written), the harness stops the collector with its one-line message."""


class BusError(SystemdCollectorError):
    """The bus or systemd cannot be reached or refused a call: the source catches it and retries."""


class SnapshotError(SystemdCollectorError):
    """The state file cannot be read as this collector's state (corrupt, or another format)."""

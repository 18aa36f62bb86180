"""Errors of the SIEM exporter: one base, and the distinctions a caller acts on."""

from __future__ import annotations

from tapio_common.errors import ConfigError, TapioError


class ExporterError(TapioError):
    """Base of every error the exporter raises on purpose."""


class SinkConfigError(ExporterError, ConfigError):
    """A sink is misconfigured (bad URL, missing token, unreadable CA): fix the configuration."""


class SinkError(ExporterError):
    """A sink could not confirm a delivery now (down, busy, timeout): retry later, keep the messages."""


class RejectedError(ExporterError):
    """A sink refused an alert for good (bad request, invalid data): retrying cannot help; the
    alert goes to the dead-letter subject."""

    def __init__(self, message: str, alert_ids: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.alert_ids = alert_ids

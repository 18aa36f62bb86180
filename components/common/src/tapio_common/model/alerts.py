"""Alert model (tapio.alerts.v1): what the SIEM exporter delivers."""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from tapio_common.model.events import Severity, frozen_map, str_tuple


class AlertState(enum.Enum):
    UNSPECIFIED = "ALERT_STATE_UNSPECIFIED"
    FIRING = "ALERT_STATE_FIRING"
    UPDATED = "ALERT_STATE_UPDATED"
    RESOLVED = "ALERT_STATE_RESOLVED"

    @property
    def token(self) -> str:
        """firing|updated|resolved (unspecified counts as firing)."""
        # `_name_`, not `.name` (an enum property: ~1 us a call, on every alert encoded)
        return "firing" if self is AlertState.UNSPECIFIED else self._name_.lower()


@attrs.frozen
class Alert:
    """An alert derived from a correlation. `time`, `starts_at`, `ends_at` are Unix nanoseconds
    (`ends_at` 0 until resolved); `revision` is the correlation revision it reflects."""

    id: str = ""
    time: int = 0
    severity: Severity = Severity.UNSPECIFIED
    component: str = ""
    title: str = ""
    description: str = ""
    correlation_id: str = ""
    event_ids: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=frozen_map, hash=False)
    runbook_url: str = ""
    state: AlertState = AlertState.UNSPECIFIED
    revision: int = 0
    starts_at: int = 0
    ends_at: int = 0

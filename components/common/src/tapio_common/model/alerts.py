"""Alert model (tapio.alerts.v1): what the SIEM exporter delivers."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from tapio_common.model.events import Severity, frozen_map, str_tuple


@attrs.frozen
class Alert:
    """An alert derived from a correlation. `time` is Unix nanoseconds."""

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

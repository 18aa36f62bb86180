"""Console: one readable line per alert as it fires, updates and resolves."""

from __future__ import annotations

from tapio_common.model import Alert
from tapio_exporters.encoders.document import rfc3339


def console_line(alert: Alert) -> str:
    first = alert.description.split("\n", 1)[0]
    when = rfc3339(alert.ends_at if alert.ends_at else alert.time, 0)
    runbook = f"  runbook {alert.runbook_url}" if alert.runbook_url else ""
    return (
        f"{when} {alert.state.token.upper():8} {alert.severity.token:8} {alert.title} "
        f"[rev {alert.revision}, alert {alert.id}] {first}{runbook}"
    )

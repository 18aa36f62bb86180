"""Prometheus Alertmanager `/api/v2/alerts`: an alert as a postable alert (labels identify it, so
they stay the same across revisions; `endsAt` is set once resolved)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from tapio_common.model import Alert
from tapio_exporters.encoders.document import rfc3339

_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")
_IDENTITY = ("namespace", "cluster", "node", "service", "workload", "type")


def label_name(name: str) -> str:
    """A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`."""
    clean = _LABEL_NAME.sub("_", name) or "_"
    return f"_{clean}" if clean[0].isdigit() else clean


def am_alert(alert: Alert, generator_url: str = "") -> dict[str, Any]:
    labels = {
        "alertname": f"Tapio{''.join(p.title() for p in alert.labels.get('type', 'alert').split('_'))}",
        "alert_id": alert.id,
        "severity": alert.severity.token,
        "component": alert.component,
    }
    for key in _IDENTITY:
        if alert.labels.get(key):
            labels[label_name(key)] = alert.labels[key]
    annotations = {
        "summary": alert.title,
        "description": alert.description,
        "revision": str(alert.revision),
        "state": alert.state.token,
        "correlation_id": alert.correlation_id,
    }
    if alert.runbook_url:
        annotations["runbook_url"] = alert.runbook_url
    out: dict[str, Any] = {"labels": labels, "annotations": annotations, "startsAt": rfc3339(alert.starts_at)}
    if alert.ends_at:
        out["endsAt"] = rfc3339(alert.ends_at)
    if generator_url:
        out["generatorURL"] = generator_url
    return out


def am_body(alerts: Iterable[Alert], generator_url: str = "") -> bytes:
    return json.dumps([am_alert(a, generator_url) for a in alerts], ensure_ascii=False).encode()

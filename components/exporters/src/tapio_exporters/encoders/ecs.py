"""Elastic Common Schema: an alert as an ECS document (`event.kind: alert`, Tapio's own fields
under `tapio.*`), and the `_bulk` NDJSON that indexes it under `_id` = alert id."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tapio_common.model import Alert, AlertState
from tapio_exporters.domain.alerts import type_title
from tapio_exporters.domain.lifecycle import version_of
from tapio_exporters.domain.severity import ECS_SEVERITY
from tapio_exporters.encoders.document import json_bytes, rfc3339

ECS_VERSION = "8.11.0"

CATEGORY: dict[str, list[str]] = {
    "cascading_failure": ["process", "host"],
    "crash_loop": ["process"],
    "resource_pressure": ["host"],
    "network_degradation": ["network"],
    "node_failure": ["host"],
    "deployment_failure": ["configuration"],
    "service_dependency_failure": ["network"],
    "performance_degradation": ["host"],
    "potential_issue": ["host"],
}
EVENT_TYPE = {
    AlertState.UNSPECIFIED: ["start"],
    AlertState.FIRING: ["start"],
    AlertState.UPDATED: ["change"],
    AlertState.RESOLVED: ["end"],
}
_TAPIO_LABELS = ("type", "confidence", "score", "cluster", "namespace", "node", "service", "pod",
                 "workload_kind", "workload", "root_cause_event_id")  # fmt: skip


def ecs_document(alert: Alert) -> dict[str, Any]:
    labels = alert.labels
    ctype = labels.get("type", "")
    created = rfc3339(alert.time)
    event: dict[str, Any] = {
        "kind": "alert",
        "category": CATEGORY.get(ctype, ["host"]),
        "type": EVENT_TYPE[alert.state],
        "severity": ECS_SEVERITY[alert.severity],
        "id": alert.id,
        "created": created,
        "start": rfc3339(alert.starts_at),
        "dataset": "tapio.alerts",
        "provider": "tapio",
        "reason": alert.description,
    }
    if "score" in labels:
        event["risk_score"] = round(float(labels["score"]) * 100, 1)
    if alert.ends_at:
        event["end"] = rfc3339(alert.ends_at)
        event["duration"] = max(0, alert.ends_at - alert.starts_at)
    orchestrator: dict[str, Any] = {"type": "kubernetes"}
    if labels.get("cluster"):
        orchestrator["cluster"] = {"name": labels["cluster"]}
    if labels.get("namespace"):
        orchestrator["namespace"] = labels["namespace"]
    if labels.get("workload"):
        orchestrator["resource"] = {
            "type": labels.get("workload_kind", "").lower(),
            "name": labels["workload"],
        }
    elif labels.get("pod"):
        orchestrator["resource"] = {"type": "pod", "name": labels["pod"]}
    doc: dict[str, Any] = {
        "@timestamp": created,
        "ecs": {"version": ECS_VERSION},
        "message": alert.title,
        "labels": {k.replace(".", "_"): v for k, v in labels.items() if k not in _TAPIO_LABELS},
        "tags": ["tapio", ctype] if ctype else ["tapio"],
        "event": event,
        "rule": {"id": ctype, "name": type_title(ctype), "ruleset": "tapio-correlation"},
        "orchestrator": orchestrator,
    }
    if labels.get("node"):
        doc["host"] = {"name": labels["node"]}
    if labels.get("service"):
        doc["service"] = {"name": labels["service"]}
    tapio: dict[str, Any] = {
        "alert": {
            "id": alert.id,
            "state": alert.state.token,
            "revision": alert.revision,
            "severity": alert.severity.token,
            "component": alert.component,
        },
        "correlation": {
            "id": alert.correlation_id,
            "type": ctype,
            "confidence": labels.get("confidence", ""),
            "root_cause_event_id": labels.get("root_cause_event_id", ""),
        },
        "event_ids": list(alert.event_ids),
    }
    if alert.runbook_url:
        tapio["alert"]["runbook_url"] = alert.runbook_url
    doc["tapio"] = tapio
    return doc


def bulk_body(alerts: Iterable[Alert], index: str) -> bytes:
    """`_bulk` NDJSON: an `index` action with `_id` = alert id (an update replaces the document)
    and an external version (revision, then state), so a stale redelivery never overwrites a newer state."""
    lines: list[bytes] = []
    for alert in alerts:
        action = {"index": {"_index": index, "_id": alert.id, "version": version_of(alert),
                            "version_type": "external_gte"}}  # fmt: skip
        lines.append(json_bytes(action))
        lines.append(json_bytes(ecs_document(alert)))
    lines.append(b"")
    return b"\n".join(lines)

"""Prometheus Alertmanager `/api/v2/alerts`: an alert as a postable alert (its labels identify it;
`endsAt` is set once resolved).

An incident keeps its id across revisions, but its severity, type (alertname) and scope labels may
change with it (a node_failure becoming high, a cascade reaching a Service): Alertmanager would then
hold the old label set beside the new one as a second alert until it timed out. So before a later
revision is posted, the sink reads the active alerts of those ids (`active_filter`), and
`retirements` ends every one whose labels are not the ones posted now, in the same request.

Times: Alertmanager judges `startsAt`/`endsAt` on its own clock, and refuses (400) an alert that
starts after it would end (a firing alert without `endsAt` ends at its now + resolve_timeout); a
resolved one whose `endsAt` lies ahead stays active until then. An event's time comes from the clock
of the node that saw it, which may run ahead of ours: so both are clamped to the exporter's now
(`now_ns`), and the event's own times are kept in the annotations `event_starts_at`/`event_ends_at`."""

from __future__ import annotations

import json
import re
from collections.abc import Container, Iterable
from typing import Any

from tapio_common.model import Alert
from tapio_exporters.domain.lifecycle import order_of_tokens
from tapio_exporters.encoders.document import rfc3339

_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")
_IDENTITY = ("namespace", "cluster", "node", "service", "workload", "type")


def label_name(name: str) -> str:
    """A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`."""
    clean = _LABEL_NAME.sub("_", name) or "_"
    return f"_{clean}" if clean[0].isdigit() else clean


def am_alert(alert: Alert, generator_url: str = "", now_ns: int | None = None) -> dict[str, Any]:
    """The postable alert; `startsAt`/`endsAt` no later than `now_ns` (the sink's wall clock; None:
    the event times as they are)."""
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
    starts, ends = alert.starts_at, alert.ends_at
    annotations["event_starts_at"] = rfc3339(starts)
    if ends:
        annotations["event_ends_at"] = rfc3339(ends)
    if now_ns is not None:
        starts, ends = min(starts, now_ns), min(ends, now_ns)  # ends >= starts stays true
    out: dict[str, Any] = {"labels": labels, "annotations": annotations, "startsAt": rfc3339(starts)}
    if ends:
        out["endsAt"] = rfc3339(ends)
    if generator_url:
        out["generatorURL"] = generator_url
    return out


def am_body(
    alerts: Iterable[Alert],
    generator_url: str = "",
    retired: Iterable[dict[str, Any]] = (),
    now_ns: int | None = None,
) -> bytes:
    posted = [am_alert(a, generator_url, now_ns) for a in alerts]
    return json.dumps([*posted, *retired], ensure_ascii=False).encode()


def to_look_up(alerts: Iterable[Alert], known: Container[str]) -> list[str]:
    """Ids to read back before posting: later revisions (label sets to retire) and ids the sink has
    no delivered revision of (forgotten, or a restart: a redelivered revision may be older)."""
    return sorted({a.id for a in alerts if a.revision > 1 or a.state.token != "firing" or a.id not in known})


def held_revisions(active: Iterable[dict[str, Any]]) -> list[tuple[str, tuple[int, int]]]:
    """(alert id, (revision, state order)) of each active alert Alertmanager holds of ours."""
    out = []
    for alert in active:
        notes = alert.get("annotations") or {}
        alert_id = (alert.get("labels") or {}).get("alert_id", "")
        order = order_of_tokens(str(notes.get("revision", "")), str(notes.get("state", "")))
        if alert_id and order is not None:
            out.append((alert_id, order))
    return out


def active_filter(ids: Iterable[str]) -> str:
    """The `filter` matcher of GET /api/v2/alerts selecting these alert ids (hex: no escaping needed)."""
    return f'alert_id=~"{"|".join(ids)}"'


def retirements(
    alerts: Iterable[Alert], active: Iterable[dict[str, Any]], now_ns: int
) -> list[dict[str, Any]]:
    """Postable alerts ending (endsAt = now) each active alert of these ids whose labels differ from
    the labels posted now: the label sets an earlier revision left behind."""
    current = {a.id: am_alert(a)["labels"] for a in alerts}
    out = []
    for old in active:
        labels = old.get("labels") or {}
        alert_id = labels.get("alert_id", "")
        if alert_id in current and labels != current[alert_id]:
            out.append({"labels": labels, "annotations": old.get("annotations") or {},
                        "startsAt": old.get("startsAt"), "endsAt": rfc3339(now_ns)})  # fmt: skip
    return out

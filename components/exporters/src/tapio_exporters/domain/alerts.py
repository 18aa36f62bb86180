"""An Alert from a correlation revision: id, severity, component, title, description, labels, runbook."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping

import attrs

from tapio_common.model import Alert, AlertState, Context, Correlation
from tapio_exporters.domain.severity import alert_severity
from tapio_publisher.subjects import DEFAULT_PREFIX, alert_subject, sanitize_token

RUNBOOK_KEYS = ("type", "component", "namespace", "severity", "alert_id", "correlation_id")
_MAX_EVIDENCE_LINES = 10


def alert_id(correlation_id: str) -> str:
    """Stable for an incident: every revision of a correlation maps to the same alert id."""
    return hashlib.blake2b(f"alert:{correlation_id}".encode(), digest_size=12).hexdigest()


def msg_id(alert: Alert) -> str:
    """`Nats-Msg-Id` of an alert: id + revision + state (a re-published one is dropped)."""
    return f"{alert.id}:{alert.revision}:{alert.state.token}"


def subject(alert: Alert, prefix: str = DEFAULT_PREFIX) -> str:
    """`<prefix>.alerts.{severity}.{component}` (prefix: NATS_SUBJECT_PREFIX, default tapio)."""
    return alert_subject(alert.severity, alert.component, prefix)


def component_name(scope: Context) -> str:
    """The affected service, else workload, pod, node, `cluster` (sanitised for a subject token)."""
    name = (
        scope.service
        or (scope.workload.name if scope.workload is not None else "")
        or scope.pod
        or scope.node
    )
    return sanitize_token(name or "cluster")


def component_of(corr: Correlation) -> str:
    """The affected service or workload of an incident (sanitised for a subject token)."""
    return component_name(corr.scope)


def scope_labels(scope: Context) -> dict[str, str]:
    """Where it happened, as flat labels (every alert's, incident or event; empty ones left out by
    the caller): cluster, namespace, node, service, pod, container, workload_kind, workload."""
    workload = scope.workload
    return {
        "cluster": scope.cluster,
        "namespace": scope.namespace,
        "node": scope.node,
        "service": scope.service,
        "pod": scope.pod,
        "container": scope.container,
        "workload_kind": workload.kind if workload is not None else "",
        "workload": workload.name if workload is not None else "",
    }


_TITLES: dict[str, str] = {}  # a handful of types: each title made once


def type_title(correlation_type: str) -> str:
    """`cascading_failure` -> `Cascading failure`."""
    title = _TITLES.get(correlation_type)
    if title is None:
        text = correlation_type.replace("_", " ").strip() or "incident"
        title = text[0].upper() + text[1:]
        if len(_TITLES) < 1024:
            _TITLES[correlation_type] = title
    return title


def check_runbook_template(template: str) -> None:
    """Raises ValueError naming the first field the template uses that is not one of RUNBOOK_KEYS."""
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None and field not in RUNBOOK_KEYS:
            raise ValueError(f"unknown field {{{field}}} (known: {', '.join(RUNBOOK_KEYS)})")


@attrs.frozen
class AlertTemplate:
    """What every alert of this exporter carries besides its correlation."""

    runbook_template: str = ""  # e.g. https://runbooks.example.com/tapio/{type}
    extra_labels: Mapping[str, str] = attrs.field(factory=dict)


def labels_of(corr: Correlation) -> dict[str, str]:
    """Context of the incident as flat labels (only what is known)."""
    labels = {
        "type": corr.type,
        "confidence": corr.confidence.token,
        "score": f"{corr.score:.2f}",
        **scope_labels(corr.scope),
        "root_cause_event_id": corr.root_cause_event_id,
    }
    return {k: v for k, v in labels.items() if v}


def description_of(corr: Correlation) -> str:
    """The summary, then the evidence by relation (what an on-call engineer reads first)."""
    lines = [corr.summary or type_title(corr.type)]
    if corr.evidence:
        counts: dict[str, int] = {}
        for e in corr.evidence:
            counts[e.relation] = counts.get(e.relation, 0) + 1
        lines.append(
            "evidence: " + ", ".join(f"{rel or 'related'} x{n}" for rel, n in sorted(counts.items()))
        )
    lines.append(f"root cause event: {corr.root_cause_event_id or 'unknown'}; events: {len(corr.event_ids)}")
    return "\n".join(lines[: _MAX_EVIDENCE_LINES + 2])


def build_alert(corr: Correlation, state: AlertState, template: AlertTemplate, aid: str = "") -> Alert:
    """The alert of one correlation revision in `state` (firing or updated); `aid`: its
    `alert_id(corr.id)` when the caller has it already."""
    severity = alert_severity(corr.type, corr.confidence)
    component = component_of(corr)
    aid = aid or alert_id(corr.id)
    labels = {**template.extra_labels, **labels_of(corr)}
    title = f"{type_title(corr.type)}: {component}"
    if corr.scope.namespace:
        title += f" ({corr.scope.namespace})"
    runbook = ""
    if template.runbook_template:
        runbook = template.runbook_template.format(
            type=corr.type,
            component=component,
            namespace=corr.scope.namespace or "_cluster",
            severity=severity.token,
            alert_id=aid,
            correlation_id=corr.id,
        )
    return Alert(
        id=aid,
        time=corr.last_seen,
        severity=severity,
        component=component,
        title=title,
        description=description_of(corr),
        correlation_id=corr.id,
        event_ids=corr.event_ids,
        labels=labels,
        runbook_url=runbook,
        state=state,
        revision=corr.revision,
        starts_at=corr.first_seen,
        ends_at=0,
    )


def resolved(alert: Alert, ends_at: int) -> Alert:
    """The same alert, resolved at `ends_at` (event time)."""
    return attrs.evolve(alert, state=AlertState.RESOLVED, time=ends_at, ends_at=ends_at)

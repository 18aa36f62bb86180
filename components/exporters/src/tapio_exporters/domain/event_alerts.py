"""An Alert from one event of the pipeline's `siem` destination (`tapio.processed.*.siem`), for the
events at or above the configured severity: the exporter's second input, beside correlations.

Fed by the exporter's events consumer (decoded Event models). Pure: an event alert fires once (id =
a hash of the event id, revision 1: a redelivered event changes nothing) and resolves like an
incident, when its window (type `event`, `resolve_after_by_type: {event: ...}`) has passed on
event time. Its severity is the event's own; labels carry the event's type, action, source and scope.
"""

from __future__ import annotations

from tapio_common.model import Alert, AlertState, Event, Severity
from tapio_exporters.domain.alerts import AlertTemplate, alert_id, component_name, scope_labels, type_title

EVENT_TYPE = "event"  # labels["type"] of every event alert (the lifecycle's window key)
SEVERITY_NAMES = ("debug", "info", "warning", "error", "critical")


def severity_at_least(name: str) -> Severity:
    """`warning` -> Severity.WARNING (ValueError naming the known names otherwise)."""
    for s in Severity:
        if s is not Severity.UNSPECIFIED and s.token == name:
            return s
    raise ValueError(f"unknown severity {name!r} (known: {', '.join(SEVERITY_NAMES)})")


def wanted(event_severity: Severity, floor: Severity) -> bool:
    """At or above `floor` (an unspecified severity counts as info)."""
    sev = Severity.INFO if event_severity is Severity.UNSPECIFIED else event_severity
    return sev.rank >= floor.rank


def event_component(ev: Event) -> str:
    """The affected service, workload, pod or node of the event (sanitised for a subject token)."""
    return component_name(ev.context)


def event_labels(ev: Event) -> dict[str, str]:
    labels = {
        "type": EVENT_TYPE,
        "event_type": ev.type,
        "event_action": ev.action,
        "source": ev.source.value.removeprefix("SOURCE_").lower(),
        **scope_labels(ev.context),
        "root_cause_event_id": ev.id,
    }
    return {k: v for k, v in labels.items() if v}


def build_event_alert(ev: Event, template: AlertTemplate) -> Alert:
    """The firing alert of one event."""
    severity = Severity.INFO if ev.severity is Severity.UNSPECIFIED else ev.severity
    component = event_component(ev)
    aid = alert_id(f"event:{ev.id}")
    what = type_title(ev.type or EVENT_TYPE)
    if ev.action:
        what += f" ({ev.action})"
    title = f"{what}: {component}"
    if ev.context.namespace:
        title += f" ({ev.context.namespace})"
    runbook = ""
    if template.runbook_template:
        runbook = template.runbook_template.format(
            type=EVENT_TYPE,
            component=component,
            namespace=ev.context.namespace or "_cluster",
            severity=severity.token,
            alert_id=aid,
            correlation_id="",
        )
    description = ev.message or what
    description += f"\nevent: {ev.id} ({ev.source.value.removeprefix('SOURCE_').lower()} {ev.type})"
    return Alert(
        id=aid,
        time=ev.time,
        severity=severity,
        component=component,
        title=title,
        description=description,
        correlation_id="",
        event_ids=(ev.id,),
        labels={**template.extra_labels, **event_labels(ev)},
        runbook_url=runbook,
        state=AlertState.FIRING,
        revision=1,
        starts_at=ev.time,
        ends_at=0,
    )

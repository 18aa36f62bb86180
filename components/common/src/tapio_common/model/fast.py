"""Fast conversions for hot paths (events, correlations and alerts to and from protobuf): equal to convert's, no JSON or cattrs."""

from __future__ import annotations

from typing import Any

from tapio.alerts.v1 import alerts_pb2
from tapio.correlations.v1 import correlations_pb2
from tapio.events.v1 import events_pb2
from tapio_common.errors import ContractError
from tapio_common.model.alerts import Alert, AlertState
from tapio_common.model.correlations import Confidence, Correlation, Evidence
from tapio_common.model.events import (
    Context,
    Event,
    K8sEvent,
    KernelEvent,
    NetworkEvent,
    ObjectRef,
    OwnerRef,
    ServicePort,
    Severity,
    Source,
    SystemdEvent,
    Workload,
)

_SOURCES: dict[int, Source] = {events_pb2.Source.Value(s.value): s for s in Source}
_SEVERITIES: dict[int, Severity] = {events_pb2.Severity.Value(s.value): s for s in Severity}
_EMPTY_CONTEXT = Context()
_NS = 1_000_000_000


def context_from_pb(c: events_pb2.Context) -> Context:
    """The Context model of a protobuf Context (unset sub-messages stay None, like cattrs)."""
    owners: Any = tuple([OwnerRef(o.kind, o.name, o.uid) for o in c.owners])  # Any: attrs converter
    return Context(
        c.cluster,
        c.node,
        c.namespace,
        c.pod,
        c.pod_uid,
        c.container,
        c.container_id,
        c.pid,
        c.comm,
        c.cgroup_id,
        c.service,
        Workload(c.workload.kind, c.workload.name) if c.HasField("workload") else None,
        owners,
        dict(c.labels),
    )


def _k8s(k: events_pb2.K8sEvent) -> K8sEvent:
    obj = k.involved_object
    return K8sEvent(
        k.kind,
        k.name,
        k.uid,
        k.resource_version,
        k.reason,
        k.phase,
        k.restart_count,
        k.exit_code,
        k.termination_reason,
        k.ready,
        dict(k.conditions),
        k.ready_endpoints,
        k.desired_replicas,
        k.available_replicas,
        dict(k.selector),
        ObjectRef(obj.kind, obj.name, obj.namespace, obj.uid) if k.HasField("involved_object") else None,
        tuple(k.pod_ips),
        k.host_ip,
        tuple(k.cluster_ips),
        tuple(ServicePort(p.name, p.port, p.protocol, p.target_port) for p in k.ports),
        tuple(k.container_ids),
    )


def _systemd(s: events_pb2.SystemdEvent) -> SystemdEvent:
    return SystemdEvent(
        s.unit,
        s.active_state,
        s.sub_state,
        s.result,
        s.exit_code,
        s.exit_status,
        s.previous_state,
        s.restarts,
    )


def _kernel(k: events_pb2.KernelEvent) -> KernelEvent:
    return KernelEvent(
        k.pid,
        k.tid,
        k.ppid,
        k.comm,
        k.filename,
        k.exit_code,
        k.signal,
        k.oom_victim_pid,
        k.oom_pages,
        k.saddr,
        k.daddr,
        k.sport,
        k.dport,
        k.latency_ns,
        k.count,
        k.window_ns,
    )


def _network(n: events_pb2.NetworkEvent) -> NetworkEvent:
    return NetworkEvent(
        n.interface,
        n.direction,
        n.packets,
        n.bytes,
        n.drops,
        n.errors,
        n.loss_ratio,
        n.window_seconds,
        n.peer_pod,
    )


def event_time_ns(m: events_pb2.Event) -> int:
    """The event's time in Unix nanoseconds (0 when unset), without building a model."""
    ts = m.time
    return int(ts.seconds * _NS + ts.nanos)


def event_from_pb(m: events_pb2.Event) -> Event:
    """The Event model of a decoded protobuf Event; equal to `convert.event_from_proto(m)`.

    Raises ContractError for an enum value the contract does not know (as the cattrs path does).
    """
    source = _SOURCES.get(m.source)
    severity = _SEVERITIES.get(m.severity)
    if source is None or severity is None:
        raise ContractError(
            f"cannot decode Event {m.id!r}: unknown source {m.source} or severity {m.severity}"
        )
    payload = m.WhichOneof("payload")
    ts = m.time
    return Event(
        m.id,
        int(ts.seconds * _NS + ts.nanos),
        source,
        m.type,
        m.action,
        severity,
        m.message,
        context_from_pb(m.context) if m.HasField("context") else _EMPTY_CONTEXT,
        _k8s(m.k8s) if payload == "k8s" else None,
        _systemd(m.systemd) if payload == "systemd" else None,
        _kernel(m.kernel) if payload == "kernel" else None,
        _network(m.network) if payload == "network" else None,
        dict(m.attributes),
    )


_CONFIDENCES: dict[Confidence, correlations_pb2.Confidence] = {
    c: correlations_pb2.Confidence.Value(c.value)  # type: ignore[misc]  # the stub types Value() as int
    for c in Confidence
}


def context_to_pb(c: Context, out: events_pb2.Context) -> None:
    """Fills `out` with the Context model (defaults stay unset, as in the cattrs path)."""
    out.cluster, out.node, out.namespace, out.pod = c.cluster, c.node, c.namespace, c.pod
    out.pod_uid, out.container, out.container_id = c.pod_uid, c.container, c.container_id
    out.pid, out.comm, out.cgroup_id, out.service = c.pid, c.comm, c.cgroup_id, c.service
    if c.workload is not None:
        out.workload.kind, out.workload.name = c.workload.kind, c.workload.name
    for o in c.owners:
        out.owners.add(kind=o.kind, name=o.name, uid=o.uid)
    out.labels.update(c.labels)


def correlation_to_pb(corr: Correlation) -> correlations_pb2.Correlation:
    """The protobuf of a Correlation model; equal to `convert.correlation_to_proto(corr)`."""
    out = correlations_pb2.Correlation(
        id=corr.id,
        type=corr.type,
        confidence=_CONFIDENCES[corr.confidence],
        score=corr.score,
        root_cause_event_id=corr.root_cause_event_id,
        event_ids=corr.event_ids,
        summary=corr.summary,
        revision=corr.revision,
    )
    out.scope.SetInParent()  # the generic path always writes scope and both times
    context_to_pb(corr.scope, out.scope)
    for e in corr.evidence:
        out.evidence.add(event_id=e.event_id, relation=e.relation, weight=e.weight)
    out.first_seen.FromNanoseconds(corr.first_seen)
    out.last_seen.FromNanoseconds(corr.last_seen)
    return out


_CONFIDENCE_OF_PB: dict[int, Confidence] = {int(v): c for c, v in _CONFIDENCES.items()}


MAX_SCOPES = 4096  # scope models a caller's `scopes` cache holds before it starts again


def correlation_from_pb(
    m: correlations_pb2.Correlation, scopes: dict[bytes, Context] | None = None
) -> Correlation:
    """The Correlation model of a decoded protobuf; equal to `convert.correlation_from_proto(m)`.
    `scopes`: the caller's cache of scope models by their wire bytes (a Context is frozen, so one
    model serves every correlation of the same scope: an incident's revisions, a workload's
    incidents), for a consumer that converts many correlations."""
    confidence = _CONFIDENCE_OF_PB.get(m.confidence)
    if confidence is None:
        raise ContractError(f"cannot decode Correlation {m.id!r}: unknown confidence {m.confidence}")
    evidence: Any = tuple([Evidence(e.event_id, e.relation, e.weight) for e in m.evidence])
    first, last = m.first_seen, m.last_seen
    return Correlation(
        m.id,
        m.type,
        confidence,
        m.score,
        m.root_cause_event_id,
        tuple(m.event_ids),
        _scope(m.scope, scopes) if m.HasField("scope") else _EMPTY_CONTEXT,
        m.summary,
        evidence,
        int(first.seconds * _NS + first.nanos),
        int(last.seconds * _NS + last.nanos),
        m.revision,
    )


def _scope(c: events_pb2.Context, scopes: dict[bytes, Context] | None) -> Context:
    if scopes is None:
        return context_from_pb(c)
    key = c.SerializeToString(deterministic=True)  # labels are a map: its order fixed
    model = scopes.get(key)
    if model is None:
        if len(scopes) >= MAX_SCOPES:
            scopes.clear()
        model = scopes[key] = context_from_pb(c)
    return model


_ALERT_STATES_PB: dict[AlertState, int] = {s: alerts_pb2.AlertState.Value(s.value) for s in AlertState}
_ALERT_STATE_OF_PB: dict[int, AlertState] = {v: s for s, v in _ALERT_STATES_PB.items()}
_SEVERITIES_PB: dict[Severity, int] = {s: v for v, s in _SEVERITIES.items()}


def alert_to_pb(alert: Alert) -> alerts_pb2.Alert:
    """The protobuf of an Alert model; equal to `convert.alert_to_proto(alert)` (zero times stay unset)."""
    out = alerts_pb2.Alert(
        id=alert.id,
        severity=_SEVERITIES_PB[alert.severity],  # type: ignore[arg-type]
        component=alert.component,
        title=alert.title,
        description=alert.description,
        correlation_id=alert.correlation_id,
        event_ids=alert.event_ids,
        labels=alert.labels,
        runbook_url=alert.runbook_url,
        state=_ALERT_STATES_PB[alert.state],  # type: ignore[arg-type]
        revision=alert.revision,
    )
    for name in ("time", "starts_at", "ends_at"):
        ns = getattr(alert, name)
        if ns:  # what Timestamp.FromNanoseconds sets, without its Python-level call
            stamp = getattr(out, name)
            stamp.seconds, stamp.nanos = divmod(ns, _NS)
    return out


def alert_from_pb(m: alerts_pb2.Alert) -> Alert:
    """The Alert model of a decoded protobuf; equal to `convert.alert_from_proto(m)`."""
    severity = _SEVERITIES.get(m.severity)
    state = _ALERT_STATE_OF_PB.get(m.state)
    if severity is None or state is None:
        raise ContractError(f"cannot decode Alert {m.id!r}: unknown severity {m.severity} or state {m.state}")
    t, s, e = m.time, m.starts_at, m.ends_at
    return Alert(
        m.id,
        int(t.seconds * _NS + t.nanos),
        severity,
        m.component,
        m.title,
        m.description,
        m.correlation_id,
        tuple(m.event_ids),
        dict(m.labels),
        m.runbook_url,
        state,
        m.revision,
        int(s.seconds * _NS + s.nanos),
        int(e.seconds * _NS + e.nanos),
    )

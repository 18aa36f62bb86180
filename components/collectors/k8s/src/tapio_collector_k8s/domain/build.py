"""Events from digests and Changes: deterministic ids (a hash of uid, resourceVersion, action and
container), context (node, namespace, pod, owners, workload, labels, container id, service) and the
K8sEvent payload with the addresses the correlator matches connections by. Pure."""

from __future__ import annotations

import calendar
import hashlib
from datetime import UTC, datetime
from functools import lru_cache

from google.protobuf.timestamp_pb2 import Timestamp

from tapio.events.v1 import events_pb2
from tapio_collector_k8s.domain.actions import Change
from tapio_collector_k8s.domain.digest import (
    Container,
    CoreEvent,
    Deployment,
    Digest,
    Node,
    Pairs,
    Pod,
    Ref,
    ReplicaSet,
    Service,
    Slice,
)
from tapio_publisher import k8s_wire

SEVERITY = {
    "debug": events_pb2.SEVERITY_DEBUG,
    "info": events_pb2.SEVERITY_INFO,
    "warning": events_pb2.SEVERITY_WARNING,
    "error": events_pb2.SEVERITY_ERROR,
    "critical": events_pb2.SEVERITY_CRITICAL,
}
# The Event.type of each watched resource (CONTRACT.md §1: plural resource; slices are `endpoints`).
EVENT_TYPE = {
    "pods": "pods", "nodes": "nodes", "services": "services", "endpointslices": "endpoints",
    "deployments": "deployments", "replicasets": "replicasets", "events": "events",
}  # fmt: skip
KIND = {
    Pod: "Pod", Node: "Node", Service: "Service", Slice: "EndpointSlice",
    Deployment: "Deployment", ReplicaSet: "ReplicaSet", CoreEvent: "Event",
}  # fmt: skip


_ONCE = ("created", "deleted")


def event_id(uid: str, rv: str, action: str, container: str = "") -> str:
    """Deterministic id in UUID form: the same observation always gets the same id."""
    h = hashlib.blake2b(f"{uid}\x00{rv}\x00{action}\x00{container}".encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@lru_cache(maxsize=65536)
def _parse_time(text: str) -> tuple[int, int] | None:
    """(seconds, nanos) of an RFC 3339 time as the API server writes it, or None when unreadable
    (datetime.fromisoformat: ~50x faster than Timestamp.FromJsonString's strptime)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = calendar.timegm(when.utctimetuple())
    return seconds, when.microsecond * 1000


def _set_time(ts: Timestamp, text: str, now_ns: int) -> None:
    parsed = _parse_time(text) if text else None
    if parsed is None:
        ts.FromNanoseconds(now_ns)
    else:
        ts.seconds, ts.nanos = parsed


def _owners(ctx: events_pb2.Context, chain: tuple[Ref, ...]) -> None:
    for kind, name, uid in chain:
        ctx.owners.add(kind=kind, name=name, uid=uid)
    if chain:
        ctx.workload.kind, ctx.workload.name = chain[-1][0], chain[-1][1]


def build(
    resource: str,
    d: Digest,
    change: Change,
    *,
    now_ns: int,
    cluster: str = "",
    owners: tuple[Ref, ...] = (),
    service: Service | None = None,
    ready_endpoints: int | None = None,
) -> events_pb2.Event:
    """The event for `change` of the object digested as `d` (its last known state for `deleted`).
    `owners`: pod chain (pods) or the object's own (replicasets); `service`: the Service of a slice
    (its selector); `ready_endpoints`: the Service's ready endpoints over all its slices."""
    if resource == "pods":  # most events: a path of their own, with fewer message accesses
        assert isinstance(d, Pod)
        return _pod_event(d, change, now_ns, cluster, owners)
    # A creation and a deletion happen once per uid: their ids do not depend on which
    # resourceVersion (watch, list or relist) showed them, so any collector gives the same id.
    once = change.action in ("created", "deleted") and resource != "events"
    ev = events_pb2.Event(
        id=event_id(d.uid, "" if once else d.rv, change.action, change.container),
        source=events_pb2.SOURCE_K8S,
        type=EVENT_TYPE[resource],
        action=change.action,
        severity=SEVERITY[change.severity],
        message=change.message,
    )
    attributes = ev.attributes
    for key, value in change.attributes:  # item by item: a dict to the constructor costs 4x more
        attributes[key] = value
    ctx = ev.context
    ctx.cluster = cluster
    k = ev.k8s
    k.kind, k.name, k.uid, k.resource_version, k.reason = KIND[type(d)], d.name, d.uid, d.rv, change.reason
    when = getattr(d, "created", "") if change.action == "created" else ""
    if isinstance(d, Node):
        ctx.node, ctx.namespace = d.name, ""
        ctx.labels.update(d.labels)
        k.conditions.update(d.conditions)
        k.ready = dict(d.conditions).get("Ready") == "True"
    elif isinstance(d, Service):
        ctx.namespace, ctx.service = d.namespace, d.name
        ctx.labels.update(d.labels)
        k.selector.update(d.selector)
        k.cluster_ips.extend(d.cluster_ips)
        for name, port, proto, target in d.ports:
            k.ports.add(name=name, port=port, protocol=proto, target_port=target)
        if ready_endpoints is not None:
            k.ready_endpoints = ready_endpoints
    elif isinstance(d, Slice):
        ctx.namespace, ctx.service = d.namespace, d.service
        k.ready_endpoints = d.ready if ready_endpoints is None else ready_endpoints
        ev.attributes["slice_ready"], ev.attributes["slice_endpoints"] = str(d.ready), str(d.total)
        if service is not None:
            k.selector.update(service.selector)
            k.cluster_ips.extend(service.cluster_ips)
    elif isinstance(d, Deployment):
        ctx.namespace = d.namespace
        ctx.workload.kind, ctx.workload.name = "Deployment", d.name
        ctx.labels.update(d.labels)
        k.selector.update(d.selector)
        k.desired_replicas, k.available_replicas = d.replicas, d.available
    elif isinstance(d, ReplicaSet):
        ctx.namespace = d.namespace
        ctx.labels.update(d.labels)
        _owners(ctx, owners)
        k.selector.update(d.selector)
        k.desired_replicas, k.available_replicas = d.replicas, d.available
    elif isinstance(d, CoreEvent):
        _core_event(ev, d)
        when = d.time
    _set_time(ev.time, when, now_ns)
    return ev


@lru_cache(maxsize=16384)
def _pod_context(cluster: str, namespace: str, node: str, labels: Pairs, owners: tuple[Ref, ...]) -> bytes:
    """The context pods of one workload on one node share, serialized once (labels and owners are
    the costly part of building an event)."""
    ctx = events_pb2.Context(cluster=cluster, namespace=namespace, node=node, labels=dict(labels))
    _owners(ctx, owners)
    return ctx.SerializeToString()


def _pod_event(
    d: Pod, change: Change, now_ns: int, cluster: str, owners: tuple[Ref, ...]
) -> events_pb2.Event:
    """`build` of a pod: the same event, each sub-message fetched once (every access of one builds
    a wrapper) and repeated fields appended one by one (extend of a generator costs ~7x more)."""
    action, container = change.action, change.container
    ev = events_pb2.Event(
        id=event_id(d.uid, "" if action in _ONCE else d.rv, action, container),
        source=events_pb2.SOURCE_K8S,
        type="pods",
        action=action,
        severity=SEVERITY[change.severity],
        message=change.message,
    )
    if change.attributes:
        attributes = ev.attributes
        for key, value in change.attributes:
            attributes[key] = value
    ctx = ev.context
    ctx.MergeFromString(_pod_context(cluster, d.namespace, d.node, d.labels, owners))
    ctx.pod, ctx.pod_uid = d.name, d.uid
    k = ev.k8s
    k.kind, k.name, k.uid, k.resource_version, k.reason = "Pod", d.name, d.uid, d.rv, change.reason
    k.phase, k.ready = d.phase, d.ready
    k.host_ip = d.host_ip
    ips = k.pod_ips
    for ip in d.pod_ips:
        ips.append(ip)
    container_ids, chosen, when = _containers(d, action, container)
    k.container_ids.extend(container_ids)
    if chosen is not None:
        ctx.container, ctx.container_id = chosen.name, chosen.id
        k.restart_count = chosen.restarts
        if container:
            k.exit_code, k.termination_reason = chosen.term_exit, chosen.term_reason
    _set_time(ev.time, when, now_ns)
    return ev


def _containers(d: Pod, action: str, container: str) -> tuple[list[str], Container | None, str]:
    """A pod event's container ids (without the runtime's `containerd://`), the container it is
    about (the one the change names, else the first) and its time: the pod's creation for
    `created`, the container's termination for an OOM kill or restart, else "" (now)."""
    ids = []
    chosen = None
    for c in d.containers:
        if c.id:
            ids.append(c.id.partition("://")[2] or c.id)
        if chosen is None and c.name == container:
            chosen = c
    if chosen is None and d.containers:
        chosen = d.containers[0]
    when = d.created if action == "created" else ""
    if chosen is not None and container and action in ("oom_killed", "restarted"):
        when = chosen.term_at or when
    return ids, chosen, when


@lru_cache(maxsize=16384)
def _pod_context_wire(
    cluster: str, namespace: str, node: str, labels: Pairs, owners: tuple[Ref, ...]
) -> tuple[bytes, bytes]:
    """`_pod_context` as the encoded Context fields before and after a pod's own (pod, pod_uid,
    container, container_id)."""
    workload = (owners[-1][0], owners[-1][1]) if owners else None
    return k8s_wire.context_head(cluster, node, namespace), k8s_wire.context_tail(workload, owners, labels)


def pod_wire(d: Pod, change: Change, now_ns: int, cluster: str = "", owners: tuple[Ref, ...] = ()) -> bytes:
    """The serialized event `build("pods", d, change, ...)` makes, encoded by hand
    (tapio_publisher.k8s_wire): the watch path's hot spot. Equal as a message to the builder's
    (`test_k8s_wire.py`); `_pod_event` stays the reference."""
    action, container = change.action, change.container
    ids, chosen, when = _containers(d, action, container)
    c_name = c_id = term_reason = ""
    restarts = exit_code = 0
    if chosen is not None:
        c_name, c_id, restarts = chosen.name, chosen.id, chosen.restarts
        if container:
            exit_code, term_reason = chosen.term_exit, chosen.term_reason
    parsed = _parse_time(when) if when else None
    seconds, nanos = divmod(now_ns, 1_000_000_000) if parsed is None else parsed
    head, tail = _pod_context_wire(cluster, d.namespace, d.node, d.labels, owners)
    return k8s_wire.pod_event(
        event_id(d.uid, "" if action in _ONCE else d.rv, action, container),
        action,
        SEVERITY[change.severity],
        change.message,
        change.attributes,
        seconds,
        nanos,
        head,
        c_name,
        c_id,
        tail,
        d.name,
        d.uid,
        d.rv,
        change.reason,
        d.phase,
        restarts,
        exit_code,
        term_reason,
        d.ready,
        d.pod_ips,
        d.host_ip,
        ids,
    )


def _core_event(ev: events_pb2.Event, d: CoreEvent) -> None:
    ctx, k = ev.context, ev.k8s
    kind, name, ns, uid = d.involved
    k.involved_object.kind, k.involved_object.name = kind, name
    k.involved_object.namespace, k.involved_object.uid = ns, uid
    ctx.namespace = ns
    if kind == "Pod":
        ctx.pod, ctx.pod_uid, ctx.node = name, uid, d.host
        if d.field_path.startswith("spec.containers{"):
            ctx.container = d.field_path[len("spec.containers{") : -1]
    elif kind == "Node":
        ctx.node, ctx.namespace = name, ""
    elif kind == "Service":
        ctx.service = name
    elif kind in ("Deployment", "StatefulSet", "DaemonSet"):
        ctx.workload.kind, ctx.workload.name = kind, name

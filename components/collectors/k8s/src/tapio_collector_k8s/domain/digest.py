"""Digests: the few fields of a Kubernetes object (raw JSON dict) that the collector compares and
publishes. They are what it remembers of every object (and persists), so they are small immutable
tuples (NamedTuple: compact for 100k pods, and msgpack-able rows); `rv` is the first field, so
`old[1:] == new[1:]` means nothing the collector cares about changed.

`digest(resource, obj)` raises MalformedObject for an object it cannot read (no metadata, wrong
types), which the watcher counts and skips."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

Obj = dict[str, Any]
Pairs = tuple[tuple[str, str], ...]
Ref = tuple[str, str, str]  # kind, name, uid
_intern = sys.intern


class MalformedObject(ValueError):
    """An object without the fields every object of its kind has."""


class Container(NamedTuple):
    name: str
    id: str  # containerd://<hex> as the kubelet reports it
    ready: bool
    running: bool
    restarts: int
    waiting: str  # waiting reason, e.g. CrashLoopBackOff, ImagePullBackOff
    term_reason: str  # of the current state, else the last state: OOMKilled, Error, Completed
    term_exit: int
    term_at: str  # finishedAt of that termination (tells one termination from the next)
    image: str


class Pod(NamedTuple):
    rv: str
    uid: str
    name: str
    namespace: str
    node: str
    labels: Pairs
    owner: Ref | None  # the controller owner reference
    phase: str
    reason: str  # status.reason, e.g. Evicted
    ready: bool
    unschedulable: bool
    containers: tuple[Container, ...]
    pod_ips: tuple[str, ...]
    host_ip: str
    created: str


class Node(NamedTuple):
    rv: str
    uid: str
    name: str
    labels: Pairs
    conditions: Pairs  # type -> status, e.g. (("Ready", "True"), ("MemoryPressure", "False"))
    unschedulable: bool
    created: str


class Service(NamedTuple):
    rv: str
    uid: str
    name: str
    namespace: str
    labels: Pairs
    selector: Pairs
    type: str
    cluster_ips: tuple[str, ...]
    ports: tuple[tuple[str, int, str, str], ...]  # name, port, protocol, target port
    created: str


class Slice(NamedTuple):
    rv: str
    uid: str
    name: str
    namespace: str
    service: str  # label kubernetes.io/service-name
    ready: int  # endpoints with conditions.ready (unset counts as ready, as the API says)
    total: int
    created: str


class Deployment(NamedTuple):
    rv: str
    uid: str
    name: str
    namespace: str
    labels: Pairs
    selector: Pairs
    replicas: int
    available: int
    updated: int
    template: str  # hash of spec.template: changes when a rollout starts
    images: Pairs  # container -> image
    progress: str  # reason of the Progressing condition
    created: str


class ReplicaSet(NamedTuple):
    rv: str
    uid: str
    name: str
    namespace: str
    labels: Pairs
    selector: Pairs
    owner: Ref | None
    replicas: int
    available: int
    created: str


class CoreEvent(NamedTuple):
    rv: str
    uid: str
    name: str
    namespace: str
    reason: str
    type: str  # Normal or Warning
    message: str
    repeats: int  # the Event's count
    involved: tuple[str, str, str, str]  # kind, name, namespace, uid
    field_path: str
    host: str  # source.host / reportingInstance: the node that reported it
    time: str  # lastTimestamp, eventTime or creationTimestamp


Digest = Pod | Node | Service | Slice | Deployment | ReplicaSet | CoreEvent


def _meta(obj: Any) -> Obj:
    if not isinstance(obj, dict):
        raise MalformedObject(f"an object must be a JSON object, not {type(obj).__name__}")
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("uid"):
        raise MalformedObject("object without metadata.name and metadata.uid")
    return meta


_SHARED: dict[Any, Any] = {}  # equal label sets and owner refs share one tuple (pods of a ReplicaSet)
_SHARED_MAX = 100_000


def _share(value: Any) -> Any:
    found = _SHARED.get(value)
    if found is not None:
        return found
    if len(_SHARED) < _SHARED_MAX:
        _SHARED[value] = value
    return value


def _pairs(d: Any) -> Pairs:
    if not d:
        return ()
    if not isinstance(d, dict):
        raise MalformedObject(f"expected a string map, got {type(d).__name__}")
    return _share(tuple(sorted((_intern(str(k)), _intern(str(v))) for k, v in d.items())))  # type: ignore[no-any-return]


def _controller(meta: Obj) -> Ref | None:
    refs = meta.get("ownerReferences") or ()
    for ref in refs:
        if isinstance(ref, dict) and ref.get("controller"):
            return _share((_intern(ref.get("kind", "")), ref.get("name", ""), ref.get("uid", "")))  # type: ignore[no-any-return]
    return None


def _container(cs: Obj, images: dict[str, str]) -> Container:
    state = cs.get("state") or {}
    term = state.get("terminated") or (cs.get("lastState") or {}).get("terminated") or {}
    name = _intern(cs.get("name", ""))
    return Container(
        name,
        cs.get("containerID", ""),
        bool(cs.get("ready")),
        "running" in state,
        int(cs.get("restartCount") or 0),
        _intern((state.get("waiting") or {}).get("reason", "")),
        _intern(term.get("reason", "")),
        int(term.get("exitCode") or 0),
        term.get("finishedAt") or "",
        _intern(cs.get("image") or images.get(name, "")),
    )


def pod(obj: Obj) -> Pod:
    meta = _meta(obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or ()}
    ready = (conditions.get("Ready") or {}).get("status") == "True"
    sched = conditions.get("PodScheduled") or {}
    images = {c.get("name", ""): c.get("image", "") for c in spec.get("containers") or ()}
    statuses = status.get("containerStatuses") or ()
    containers = tuple(_container(cs, images) for cs in statuses)
    ips = tuple(i.get("ip", "") for i in status.get("podIPs") or ()) or (
        (status["podIP"],) if status.get("podIP") else ()
    )
    return Pod(
        str(meta.get("resourceVersion", "")), meta["uid"], meta["name"], _intern(meta.get("namespace", "")),
        _intern(spec.get("nodeName") or ""), _pairs(meta.get("labels")), _controller(meta),
        _intern(status.get("phase", "")), _intern(status.get("reason", "")), ready,
        sched.get("status") == "False" and sched.get("reason") == "Unschedulable",
        containers, ips, _intern(status.get("hostIP", "")), meta.get("creationTimestamp") or "",
    )  # fmt: skip


def node(obj: Obj) -> Node:
    meta = _meta(obj)
    status = obj.get("status") or {}
    conds = tuple(
        sorted(
            (_intern(c.get("type", "")), _intern(c.get("status", ""))) for c in status.get("conditions") or ()
        )
    )
    return Node(
        str(meta.get("resourceVersion", "")), meta["uid"], meta["name"], _pairs(meta.get("labels")), conds,
        bool((obj.get("spec") or {}).get("unschedulable")), meta.get("creationTimestamp") or "",
    )  # fmt: skip


def service(obj: Obj) -> Service:
    meta = _meta(obj)
    spec = obj.get("spec") or {}
    ips = tuple(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
    ports = tuple(
        (p.get("name", ""), int(p.get("port") or 0), p.get("protocol", "TCP"), str(p.get("targetPort", p.get("port", ""))))
        for p in spec.get("ports") or ()
    )  # fmt: skip
    return Service(
        str(meta.get("resourceVersion", "")), meta["uid"], meta["name"], _intern(meta.get("namespace", "")),
        _pairs(meta.get("labels")), _pairs(spec.get("selector")), spec.get("type", "ClusterIP"),
        tuple(ip for ip in ips if ip and ip != "None"), ports, meta.get("creationTimestamp") or "",
    )  # fmt: skip


def endpointslice(obj: Obj) -> Slice:
    meta = _meta(obj)
    endpoints = obj.get("endpoints") or ()
    ready = sum(1 for e in endpoints if (e.get("conditions") or {}).get("ready", True) is not False)
    service_name = (meta.get("labels") or {}).get("kubernetes.io/service-name", "")
    return Slice(
        str(meta.get("resourceVersion", "")), meta["uid"], meta["name"], _intern(meta.get("namespace", "")),
        service_name, ready, len(endpoints), meta.get("creationTimestamp") or "",
    )  # fmt: skip


def deployment(obj: Obj) -> Deployment:
    meta = _meta(obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    template = spec.get("template") or {}
    digest = hashlib.blake2b(json.dumps(template, sort_keys=True).encode(), digest_size=8).hexdigest()
    containers = (template.get("spec") or {}).get("containers") or ()
    progress = next(
        (c.get("reason", "") for c in status.get("conditions") or () if c.get("type") == "Progressing"), ""
    )
    return Deployment(
        str(meta.get("resourceVersion", "")), meta["uid"], meta["name"], _intern(meta.get("namespace", "")),
        _pairs(meta.get("labels")), _pairs((spec.get("selector") or {}).get("matchLabels")),
        int(spec.get("replicas", 1) or 0), int(status.get("availableReplicas") or 0),
        int(status.get("updatedReplicas") or 0), digest,
        tuple((c.get("name", ""), c.get("image", "")) for c in containers), progress,
        meta.get("creationTimestamp") or "",
    )  # fmt: skip


def replicaset(obj: Obj) -> ReplicaSet:
    meta = _meta(obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return ReplicaSet(
        str(meta.get("resourceVersion", "")), meta["uid"], meta["name"], _intern(meta.get("namespace", "")),
        _pairs(meta.get("labels")), _pairs((spec.get("selector") or {}).get("matchLabels")), _controller(meta),
        int(spec.get("replicas", 1) or 0), int(status.get("availableReplicas") or 0),
        meta.get("creationTimestamp") or "",
    )  # fmt: skip


def core_event(obj: Obj) -> CoreEvent:
    meta = _meta(obj)
    inv = obj.get("involvedObject") or obj.get("regarding") or {}
    if not isinstance(inv, dict):
        raise MalformedObject("event without involvedObject")
    source = obj.get("source") or {}
    when = obj.get("lastTimestamp") or obj.get("eventTime") or meta.get("creationTimestamp") or ""
    return CoreEvent(
        str(meta.get("resourceVersion", "")), meta["uid"], meta["name"], _intern(meta.get("namespace", "")),
        _intern(obj.get("reason") or ""), _intern(obj.get("type") or "Normal"), obj.get("message") or "",
        int(obj.get("count") or 1),
        (_intern(inv.get("kind", "")), inv.get("name", ""), _intern(inv.get("namespace", "")), inv.get("uid", "")),
        inv.get("fieldPath", ""), source.get("host") or obj.get("reportingInstance") or "", when,
    )  # fmt: skip


DIGESTERS: dict[str, Callable[[Obj], Digest]] = {
    "pods": pod,
    "nodes": node,
    "services": service,
    "endpointslices": endpointslice,
    "deployments": deployment,
    "replicasets": replicaset,
    "events": core_event,
}
KINDS = {
    "pods": "Pod", "nodes": "Node", "services": "Service", "endpointslices": "EndpointSlice",
    "deployments": "Deployment", "replicasets": "ReplicaSet", "events": "Event",
}  # fmt: skip
ROWS: dict[str, type[Digest]] = {
    "pods": Pod, "nodes": Node, "services": Service, "endpointslices": Slice,
    "deployments": Deployment, "replicasets": ReplicaSet, "events": CoreEvent,
}  # fmt: skip


def digest(resource: str, obj: Any) -> Digest:
    """The digest of `obj` of `resource` (plural), or MalformedObject."""
    if isinstance(obj, dict) and obj.get("kind") not in (None, KINDS[resource]):
        raise MalformedObject(f"unexpected kind {obj.get('kind')!r} in a {resource} stream")
    try:
        return DIGESTERS[resource](obj)
    except (AttributeError, TypeError, ValueError) as e:
        if isinstance(e, MalformedObject):
            raise
        raise MalformedObject(f"unreadable {resource} object: {e}") from e


def from_row(resource: str, row: list[Any]) -> Digest:
    """A digest back from its persisted row (msgpack lists), nested tuples restored."""
    cls = ROWS[resource]
    d = cls(*(_tuples(v) for v in row))
    if isinstance(d, Pod):
        d = d._replace(containers=tuple(Container(*c) for c in d.containers))
    return d


def _tuples(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    return v

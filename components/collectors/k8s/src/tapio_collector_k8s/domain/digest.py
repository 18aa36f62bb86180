"""Digests: the few fields of a Kubernetes object that the collector compares and publishes, made
from the Structs of domain.schema (decoded straight from the API server's JSON by domain.decode, or
converted from a parsed dict by `digest`). They are what it remembers of every object (and persists), so they are small immutable
tuples (NamedTuple: compact for 100k pods, and msgpack-able rows); `rv` is the first field, so
`old[1:] == new[1:]` means nothing the collector cares about changed.

`digest(resource, obj)` and `of_struct` raise MalformedObject for an object they cannot read (no
metadata, wrong types), which the reflector counts and skips."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import msgspec

from tapio_collector_k8s.domain import schema as s

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


_SHARED: dict[Any, Any] = {}  # equal label sets and owner refs share one tuple (pods of a ReplicaSet)
_SHARED_MAX = 100_000


def _share(value: Any) -> Any:
    found = _SHARED.get(value)
    if found is not None:
        return found
    if len(_SHARED) < _SHARED_MAX:
        _SHARED[value] = value
    return value


_PAIRS: dict[tuple[tuple[str, str], ...], Pairs] = {}  # a label set as decoded -> its shared pairs
_PAIRS_MAX = 20_000


def _pairs(d: dict[str, str] | None) -> Pairs:
    """The sorted, shared pairs of a label set (or selector). A set seen before, in the same order,
    is found by its decoded items: no sort and no interning per object (pods of one workload)."""
    if not d:
        return ()
    raw = tuple(d.items())
    found = _PAIRS.get(raw)
    if found is not None:
        return found
    pairs: Pairs = _share(tuple(sorted((_intern(k), _intern(v)) for k, v in raw)))
    if len(_PAIRS) < _PAIRS_MAX:
        _PAIRS[raw] = pairs
    return pairs


def _meta(m: s.Meta | None) -> s.Meta:
    if m is None or m.name is None or not m.uid:
        raise MalformedObject("object without metadata.name and metadata.uid")
    return m


def _controller(meta: s.Meta) -> Ref | None:
    for ref in meta.owners or ():
        if ref.controller:
            return _share((_intern(ref.kind or ""), ref.name or "", ref.uid or ""))  # type: ignore[no-any-return]
    return None


def _container(cs: s.ContainerStatus, spec: s.PodSpec) -> Container:
    state = cs.state or _NO_STATE
    term = state.terminated or (cs.last_state or _NO_STATE).terminated or _NO_TERM
    name = _intern(cs.name or "")
    return Container(
        name,
        cs.container_id or "",
        bool(cs.ready),
        state.running is not msgspec.UNSET,
        cs.restarts or 0,
        _intern((state.waiting.reason or "") if state.waiting else ""),
        _intern(term.reason or ""),
        term.exit_code or 0,
        term.finished_at or "",
        _intern(cs.image or _spec_image(spec, name)),
    )


def _spec_image(spec: s.PodSpec, name: str) -> str:
    """The image the pod's spec names for container `name` (a status without its image)."""
    for c in spec.containers or ():
        if (c.name or "") == name:
            return c.image or ""
    return ""


_NO_STATE = s.State()
_NO_TERM = s.Terminated()


def _pod(obj: s.PodObj) -> Pod:
    meta = _meta(obj.metadata)
    spec, status = obj.spec or s.PodSpec(), obj.status or s.PodStatus()
    ready = unschedulable = False
    for c in status.conditions or ():
        if c.type == "Ready":
            ready = c.status == "True"
        elif c.type == "PodScheduled":
            unschedulable = c.status == "False" and c.reason == "Unschedulable"
    containers = tuple([_container(cs, spec) for cs in status.containers or ()])
    ips = tuple(i.ip or "" for i in status.pod_ips or ()) or ((status.pod_ip,) if status.pod_ip else ())
    return Pod(
        meta.resource_version or "", meta.uid, meta.name, _intern(meta.namespace or ""),  # type: ignore[arg-type]
        _intern(spec.node_name or ""), _pairs(meta.labels), _controller(meta),
        _intern(status.phase or ""), _intern(status.reason or ""), ready, unschedulable,
        containers, ips, _intern(status.host_ip or ""), meta.created or "",
    )  # fmt: skip


def _node(obj: s.NodeObj) -> Node:
    meta = _meta(obj.metadata)
    conditions = (obj.status.conditions if obj.status else None) or ()
    conds = tuple(sorted((_intern(c.type or ""), _intern(c.status or "")) for c in conditions))
    return Node(
        meta.resource_version or "", meta.uid, meta.name, _pairs(meta.labels), conds,  # type: ignore[arg-type]
        bool(obj.spec and obj.spec.unschedulable), meta.created or "",
    )  # fmt: skip


def _service(obj: s.ServiceObj) -> Service:
    meta = _meta(obj.metadata)
    spec = obj.spec or s.ServiceSpec()
    ips = spec.cluster_ips or ([spec.cluster_ip] if spec.cluster_ip else [])
    ports = tuple(
        (p.name or "", p.port or 0, p.protocol or "TCP", str(p.target_port if p.target_port is not None else (p.port or "")))
        for p in spec.ports or ()
    )  # fmt: skip
    return Service(
        meta.resource_version or "", meta.uid, meta.name, _intern(meta.namespace or ""),  # type: ignore[arg-type]
        _pairs(meta.labels), _pairs(spec.selector), spec.type or "ClusterIP",
        tuple(ip for ip in ips if ip and ip != "None"), ports, meta.created or "",
    )  # fmt: skip


def _endpointslice(obj: s.SliceObj) -> Slice:
    meta = _meta(obj.metadata)
    endpoints = obj.endpoints or ()
    # conditions.ready unset counts as ready, as the API says
    ready = sum(1 for e in endpoints if e.conditions is None or e.conditions.ready is not False)
    return Slice(
        meta.resource_version or "", meta.uid, meta.name, _intern(meta.namespace or ""),  # type: ignore[arg-type]
        (meta.labels or {}).get("kubernetes.io/service-name", ""), ready, len(endpoints), meta.created or "",
    )  # fmt: skip


def _deployment(obj: s.DeploymentObj) -> Deployment:
    meta = _meta(obj.metadata)
    spec, status = obj.spec or s.DeploymentSpec(), obj.status or s.WorkloadStatus()
    template = spec.template or {}
    digest = hashlib.blake2b(json.dumps(template, sort_keys=True).encode(), digest_size=8).hexdigest()
    containers = (template.get("spec") or {}).get("containers") or ()
    progress = next((c.reason or "" for c in status.conditions or () if c.type == "Progressing"), "")
    return Deployment(
        meta.resource_version or "", meta.uid, meta.name, _intern(meta.namespace or ""),  # type: ignore[arg-type]
        _pairs(meta.labels), _pairs(spec.selector.match_labels if spec.selector else None),
        1 if spec.replicas is None else spec.replicas, status.available or 0, status.updated or 0, digest,
        tuple((c.get("name", ""), c.get("image", "")) for c in containers), progress, meta.created or "",
    )  # fmt: skip


def _replicaset(obj: s.ReplicaSetObj) -> ReplicaSet:
    meta = _meta(obj.metadata)
    spec, status = obj.spec or s.ReplicaSetSpec(), obj.status or s.WorkloadStatus()
    return ReplicaSet(
        meta.resource_version or "", meta.uid, meta.name, _intern(meta.namespace or ""),  # type: ignore[arg-type]
        _pairs(meta.labels), _pairs(spec.selector.match_labels if spec.selector else None), _controller(meta),
        1 if spec.replicas is None else spec.replicas, status.available or 0, meta.created or "",
    )  # fmt: skip


def _core_event(obj: s.EventObj) -> CoreEvent:
    meta = _meta(obj.metadata)
    inv = obj.involved or obj.regarding
    if inv is None:
        raise MalformedObject("event without involvedObject")
    when = obj.last_timestamp or obj.event_time or meta.created or ""
    return CoreEvent(
        meta.resource_version or "", meta.uid, meta.name, _intern(meta.namespace or ""),  # type: ignore[arg-type]
        _intern(obj.reason or ""), _intern(obj.type or "Normal"), obj.message or "", obj.count or 1,
        (_intern(inv.kind or ""), inv.name or "", _intern(inv.namespace or ""), inv.uid or ""),
        inv.field_path or "", (obj.source.host if obj.source else None) or obj.reporting_instance or "", when,
    )  # fmt: skip


DIGESTERS: dict[str, Callable[[Any], Digest]] = {
    "pods": _pod,
    "nodes": _node,
    "services": _service,
    "endpointslices": _endpointslice,
    "deployments": _deployment,
    "replicasets": _replicaset,
    "events": _core_event,
}
KINDS = {
    "pods": "Pod", "nodes": "Node", "services": "Service", "endpointslices": "EndpointSlice",
    "deployments": "Deployment", "replicasets": "ReplicaSet", "events": "Event",
}  # fmt: skip
ROWS: dict[str, type[Digest]] = {
    "pods": Pod, "nodes": Node, "services": Service, "endpointslices": Slice,
    "deployments": Deployment, "replicasets": ReplicaSet, "events": CoreEvent,
}  # fmt: skip


def of_struct(resource: str, obj: s.AnyObj) -> Digest:
    """The digest of a decoded object of `resource`, or MalformedObject (an unexpected kind says
    so in its message: the reflector counts it as `unknown_kind`)."""
    if obj.kind is not None and obj.kind != KINDS[resource]:
        raise MalformedObject(f"unexpected kind {obj.kind!r} in a {resource} stream")
    return DIGESTERS[resource](obj)


def digest(resource: str, obj: Any) -> Digest:
    """The digest of `obj` (a parsed JSON object) of `resource` (plural), or MalformedObject."""
    try:
        struct = msgspec.convert(obj, s.OBJECTS[resource], strict=False)
    except msgspec.ValidationError as e:
        raise MalformedObject(f"unreadable {resource} object: {e}") from e
    return of_struct(resource, struct)


def pod(obj: Obj) -> Pod:
    return digest("pods", obj)  # type: ignore[return-value]


def node(obj: Obj) -> Node:
    return digest("nodes", obj)  # type: ignore[return-value]


def service(obj: Obj) -> Service:
    return digest("services", obj)  # type: ignore[return-value]


def endpointslice(obj: Obj) -> Slice:
    return digest("endpointslices", obj)  # type: ignore[return-value]


def deployment(obj: Obj) -> Deployment:
    return digest("deployments", obj)  # type: ignore[return-value]


def replicaset(obj: Obj) -> ReplicaSet:
    return digest("replicasets", obj)  # type: ignore[return-value]


def core_event(obj: Obj) -> CoreEvent:
    return digest("events", obj)  # type: ignore[return-value]


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

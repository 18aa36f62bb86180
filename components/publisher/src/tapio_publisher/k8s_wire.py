"""Hand-encoded pod events: the serialized `Event` (source k8s, type `pods`) a collector hands to
`Publisher.publish_encoded_many` without building a protobuf message (pure).

Fed by the Kubernetes collector's pod path (`tapio_collector_k8s.domain.build.pod_wire`), which
passes plain values (no collector types cross into the publisher). The sibling of
`tapio_publisher.wire` (its varints and length prefixes; hand-encoded protobuf stays in these two
modules, `tools/check_repo.py`): fields are written in field-number order, as SerializeToString
writes them, so an event starts with its id (`wire.has_leading_id`) and is byte-identical to the
library's except for the order of map entries. `test_k8s_wire.py` parses the bytes of generated
pods with the library and compares them with the message the collector's builder makes.

Why by hand: building a pod event field by field from Python through the message API costs ~25
field sets, a wrapper per sub-message access and the serialization (~12 us an event on the
collector's watch path, `bazel run //bench:k8s_collector -- --seconds 20 --compare`); here it is
a join of pre-encoded parts. The context of pods of one workload on one node is encoded once by
the caller (`context_head`, `context_tail`).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from tapio_publisher.wire import VARINTS, varint

_U64 = 1 << 64  # negative int32/int64 values are written as their 64-bit two's complement

# Event (tapio.events.v1): field number << 3 | wire type, as bytes.
_EV_ID, _EV_TIME, _EV_ACTION, _EV_SEVERITY = b"\x0a", b"\x12", b"\x2a", b"\x30"
_EV_MESSAGE, _EV_CONTEXT, _EV_K8S, _EV_ATTRIBUTE = b"\x3a", b"\x42", b"\x4a", b"\x6a"
_EV_SOURCE_TYPE = b"\x18\x01" + b"\x22\x04pods"  # source = SOURCE_K8S (1), type = "pods"
# Context
_CTX_CLUSTER, _CTX_NODE, _CTX_NAMESPACE, _CTX_POD = b"\x0a", b"\x12", b"\x1a", b"\x22"
_CTX_POD_UID, _CTX_CONTAINER, _CTX_CONTAINER_ID = b"\x2a", b"\x32", b"\x3a"
_CTX_WORKLOAD, _CTX_OWNER, _CTX_LABEL = b"\x62", b"\x6a", b"\x72"
# K8sEvent (kind is always "Pod" here)
_K_KIND_POD = b"\x0a\x03Pod"
_K_NAME, _K_UID, _K_RV, _K_REASON, _K_PHASE = b"\x12", b"\x1a", b"\x22", b"\x2a", b"\x32"
_K_RESTARTS, _K_EXIT, _K_TERM_REASON, _K_READY = b"\x38", b"\x40", b"\x4a", b"\x50\x01"
_K_POD_IP, _K_HOST_IP, _K_CONTAINER_ID = b"\x8a\x01", b"\x92\x01", b"\xaa\x01"
# Sub-messages: Timestamp, Workload, OwnerRef, map entries (key 1, value 2)
_F1, _F2, _F3, _F1_VARINT, _F2_VARINT = b"\x0a", b"\x12", b"\x1a", b"\x08", b"\x10"


def _len(n: int) -> bytes:
    return VARINTS[n] if n < 16384 else varint(n)


def _string(tag: bytes, value: str) -> bytes:
    """A string field; nothing for "" (proto3 writes no default)."""
    if not value:
        return b""
    raw = value.encode()
    return tag + _len(len(raw)) + raw


def _int(tag: bytes, value: int) -> bytes:
    """An int32/int64 field; nothing for 0."""
    if not value:
        return b""
    if value < 0:
        value += _U64
    return tag + _len(value)


def _message(tag: bytes, body: bytes) -> bytes:
    return tag + _len(len(body)) + body


@lru_cache(maxsize=4096)
def _timestamp(seconds: int, nanos: int) -> bytes:
    """The Event.time field (events of one batch share `now`; restarts share their finishedAt)."""
    return _message(_EV_TIME, _int(_F1_VARINT, seconds) + _int(_F2_VARINT, nanos))


def _present(tag: bytes, value: str) -> bytes:
    """A string field written even when "" (map entries: the library writes key and value)."""
    raw = value.encode()
    return tag + _len(len(raw)) + raw


def _map(tag: bytes, pairs: Iterable[tuple[str, str]]) -> bytes:
    """A map<string, string> as its entries, in the given order (a repeated key: the last wins, as
    when the pairs are assigned one by one)."""
    return b"".join([_message(tag, _present(_F1, k) + _present(_F2, v)) for k, v in pairs])


def context_head(cluster: str, node: str, namespace: str) -> bytes:
    """Context fields 1-3 (cluster, node, namespace): what goes before a pod's own fields."""
    return _string(_CTX_CLUSTER, cluster) + _string(_CTX_NODE, node) + _string(_CTX_NAMESPACE, namespace)


def context_tail(
    workload: tuple[str, str] | None,
    owners: Iterable[tuple[str, str, str]],
    labels: Iterable[tuple[str, str]],
) -> bytes:
    """Context fields 12-14 (workload, owners, labels): what goes after a pod's own fields.
    `workload` None leaves it unset (an empty tuple's kind and name would set it, empty)."""
    parts = []
    if workload is not None:
        parts.append(_message(_CTX_WORKLOAD, _string(_F1, workload[0]) + _string(_F2, workload[1])))
    for kind, name, uid in owners:
        parts.append(_message(_CTX_OWNER, _string(_F1, kind) + _string(_F2, name) + _string(_F3, uid)))
    parts.append(_map(_CTX_LABEL, labels))
    return b"".join(parts)


def pod_event(
    event_id: str,
    action: str,
    severity: int,
    message: str,
    attributes: tuple[tuple[str, str], ...],
    seconds: int,
    nanos: int,
    ctx_head: bytes,
    container: str,
    container_id: str,
    ctx_tail: bytes,
    name: str,
    uid: str,
    rv: str,
    reason: str,
    phase: str,
    restart_count: int,
    exit_code: int,
    termination_reason: str,
    ready: bool,
    pod_ips: Iterable[str],
    host_ip: str,
    container_ids: Iterable[str],
) -> bytes:
    """A serialized pod Event. `severity`: the `events_pb2.Severity` number; `seconds`, `nanos`:
    Event.time (always set); Context: `ctx_head`, pod = `name`, pod_uid = `uid`, `container`,
    `container_id`, `ctx_tail`; K8sEvent: kind "Pod", `name`, `uid`, `rv` (resource_version),
    `reason`, `phase`, ... Written inline, field by field (a call or a loop per field costs more
    than the field itself), as parts joined once (each `+` of bytes copies them all)."""
    lengths = VARINTS
    # The pod's name and uid go in both the context and the K8sEvent: encoded once.
    raw = name.encode()
    n = len(raw)
    name_parts = (lengths[n] if n < 16384 else varint(n), raw) if n else ()
    raw = uid.encode()
    n = len(raw)
    uid_parts = (lengths[n] if n < 16384 else varint(n), raw) if n else ()

    ctx = [ctx_head]
    if name_parts:
        ctx += (_CTX_POD, *name_parts)
    if uid_parts:
        ctx += (_CTX_POD_UID, *uid_parts)
    if container:
        raw = container.encode()
        n = len(raw)
        ctx += (_CTX_CONTAINER, lengths[n] if n < 16384 else varint(n), raw)
    if container_id:
        raw = container_id.encode()
        n = len(raw)
        ctx += (_CTX_CONTAINER_ID, lengths[n] if n < 16384 else varint(n), raw)
    ctx.append(ctx_tail)

    k8s = [_K_KIND_POD]
    if name_parts:
        k8s += (_K_NAME, *name_parts)
    if uid_parts:
        k8s += (_K_UID, *uid_parts)
    if rv:
        raw = rv.encode()
        n = len(raw)
        k8s += (_K_RV, lengths[n] if n < 16384 else varint(n), raw)
    if reason:
        raw = reason.encode()
        n = len(raw)
        k8s += (_K_REASON, lengths[n] if n < 16384 else varint(n), raw)
    if phase:
        raw = phase.encode()
        n = len(raw)
        k8s += (_K_PHASE, lengths[n] if n < 16384 else varint(n), raw)
    if restart_count:
        k8s.append(_int(_K_RESTARTS, restart_count))
    if exit_code:
        k8s.append(_int(_K_EXIT, exit_code))
    if termination_reason:
        raw = termination_reason.encode()
        n = len(raw)
        k8s += (_K_TERM_REASON, lengths[n] if n < 16384 else varint(n), raw)
    if ready:
        k8s.append(_K_READY)
    for ip in pod_ips:
        raw = ip.encode()
        n = len(raw)
        k8s += (_K_POD_IP, lengths[n] if n < 16384 else varint(n), raw)
    if host_ip:
        raw = host_ip.encode()
        n = len(raw)
        k8s += (_K_HOST_IP, lengths[n] if n < 16384 else varint(n), raw)
    for cid in container_ids:
        raw = cid.encode()
        n = len(raw)
        k8s += (_K_CONTAINER_ID, lengths[n] if n < 16384 else varint(n), raw)

    out: list[bytes] = []
    if event_id:
        raw = event_id.encode()
        n = len(raw)
        out += (_EV_ID, lengths[n] if n < 16384 else varint(n), raw)
    out += (_timestamp(seconds, nanos), _EV_SOURCE_TYPE)
    if action:
        raw = action.encode()
        n = len(raw)
        out += (_EV_ACTION, lengths[n] if n < 16384 else varint(n), raw)
    if severity:
        out.append(_int(_EV_SEVERITY, severity))
    if message:
        raw = message.encode()
        n = len(raw)
        out += (_EV_MESSAGE, lengths[n] if n < 16384 else varint(n), raw)
    n = sum(map(len, ctx))
    out += (_EV_CONTEXT, lengths[n] if n < 16384 else varint(n))
    out += ctx
    n = sum(map(len, k8s))
    out += (_EV_K8S, lengths[n] if n < 16384 else varint(n))
    out += k8s
    if attributes:
        out.append(_attributes(attributes))
    return b"".join(out)


@lru_cache(maxsize=4096)
def _attributes(pairs: tuple[tuple[str, str], ...]) -> bytes:
    """Event.attributes: a few shapes repeat (container, restart_count, exit_code)."""
    return _map(_EV_ATTRIBUTE, pairs)

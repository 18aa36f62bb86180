"""The correlator's decode (pure): events messages as views whose `context` and `k8s` stay wire bytes.

Fed by the NATS runner's Kind (`tapio_correlator.service.runner`) and its restart catch-up with a
message's headers and payload; the views go to `Engine.process_view`. Most events of a cluster are
decided on the scalar fields alone (type, action, severity, time: pod status updates, unit
heartbeats, interface samples), and a pod update that repeats what the topology applied last for
that pod is found by comparing its raw context and k8s bytes (`Topology.pod_unchanged`): neither
is parsed. Any other event is parsed whole (`full_event`) and takes the protobuf path
(`Engine.process_pb`), so the rules see exactly the Event they saw before.

The view is `Event` of the contract with two fields declared `bytes` (`tapio_jetstream.views`):
the same wire format, parsed by the C runtime; a payload is refused exactly when
`tapio_jetstream.decode_events` refuses it, except a malformed context/k8s/systemd/kernel/network
sub-message, which is refused when that event is parsed (`full_event` raises DecodeError); an event
dropped on its scalars (no rule uses it) is never parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.message import DecodeError as ProtobufDecodeError

from tapio.events.v1 import events_pb2
from tapio_jetstream.decode import Headers, message_payload
from tapio_jetstream.errors import DecodeError
from tapio_jetstream.views import add_view, view_classes, view_file
from tapio_publisher.codec import ENCODING_BATCH

# Kept as wire bytes: what only some events need (context, k8s) and the other payloads, which no
# view path reads (an event that needs them is parsed whole): the C parse then builds no
# sub-message for them.
RAW_FIELDS = frozenset({"context", "k8s", "systemd", "kernel", "network"})


def _views() -> tuple[Any, Any]:
    fdp = view_file("tapio/correlator/views.proto", "tapio.correlator.views")
    add_view(fdp, "EventView", events_pb2.Event.DESCRIPTOR, raw=RAW_FIELDS)
    add_view(fdp, "BatchView", events_pb2.EventBatch.DESCRIPTOR, retype={"events": "EventView"})
    return view_classes(fdp, ("EventView", "BatchView"))


EventView, BatchView = _views()
_event_from = events_pb2.Event.FromString
_k8s_from = events_pb2.K8sEvent.FromString


def decode_views(headers: Headers, data: bytes) -> list[Any]:
    """Every event a message carries (bare Event or EventBatch, zstd/lz4) as an `EventView`.
    Raises DecodeError naming what is wrong."""
    payload, encoding = message_payload(headers, data)
    try:
        if encoding == ENCODING_BATCH:
            return list(BatchView.FromString(payload).events)
        return [EventView.FromString(payload)]
    except ProtobufDecodeError as e:
        raise DecodeError(f"not a valid {encoding} payload ({len(payload)} bytes): {e}") from e


def view_ids(_headers: Headers, views: Sequence[Any]) -> list[str]:
    """The event ids of a message's views (what the runtime's dedup window would key on)."""
    return [v.id for v in views]


def full_event(view: Any) -> events_pb2.Event:
    """The Event a view is of (its bytes parsed again as an Event); DecodeError when its context or
    k8s bytes are not what the contract says."""
    try:
        return _event_from(view.SerializeToString())
    except ProtobufDecodeError as e:
        raise DecodeError(f"event {view.id}: its context or k8s is not a valid message: {e}") from e


def parsed(ev: Any) -> Any:
    """An engine input as the Event the rules read: a view parsed whole, anything else as it is."""
    return full_event(ev) if type(ev) is EventView else ev


def context_of(ev: Any) -> Any:
    """An engine input's context: a view's parsed alone (DecodeError if it is not a Context)."""
    if type(ev) is not EventView:
        return ev.context
    try:
        return events_pb2.Context.FromString(ev.context)
    except ProtobufDecodeError as e:
        raise DecodeError(f"event {ev.id}: its context is not a valid Context: {e}") from e


class PodParts:
    """What the topology reads of a lifecycle pod event (`Topology.pod_event`): its context and k8s,
    parsed from a view's bytes alone (the rest of the event is not parsed)."""

    __slots__ = ("context", "k8s")

    def __init__(self, context: events_pb2.Context, k8s: events_pb2.K8sEvent) -> None:
        self.context = context
        self.k8s = k8s


def pod_parts(view: Any, context: bytes, k8s: bytes) -> Any:
    """A view's context and k8s bytes parsed (DecodeError if they are not a Context and a K8sEvent)."""
    try:
        return PodParts(events_pb2.Context.FromString(context), events_pb2.K8sEvent.FromString(k8s))
    except ProtobufDecodeError as e:
        raise DecodeError(f"event {view.id}: its context or k8s is not a valid message: {e}") from e


def k8s_of_bytes(k8s: bytes) -> events_pb2.K8sEvent:
    """A raw K8sEvent parsed (DecodeError if it is not one)."""
    try:
        return _k8s_from(k8s)
    except ProtobufDecodeError as e:
        raise DecodeError(f"a pod event's k8s is not a valid K8sEvent: {e}") from e


def pod_ips_of(k8s: bytes) -> tuple[str, ...]:
    """The pod IPs of a raw K8sEvent (DecodeError if it is not one)."""
    ips = k8s_of_bytes(k8s).pod_ips
    return tuple(ips) if ips else ()


def k8s_of(view: Any) -> events_pb2.K8sEvent:
    """A view's k8s payload, parsed (an empty K8sEvent when it has none)."""
    try:
        return events_pb2.K8sEvent.FromString(view.k8s)
    except ProtobufDecodeError as e:
        raise DecodeError(f"event {view.id}: its k8s is not a valid K8sEvent: {e}") from e

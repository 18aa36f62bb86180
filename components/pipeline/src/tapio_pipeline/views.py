"""The pipeline's hot path on the wire: events read with their original bytes and written back as is.

Fed by the processor (its `Kind` decodes with `decode_message`, then routes) and by the pod
follower (`decode_view`). The events of a message are parsed twice by the C protobuf runtime, once
as views (every field of `Event` except `context`, which stays raw bytes: it is the cache key of
enrichment) and once as raw byte strings (`EventBatch.events` read as `repeated bytes`), so the
processor never serializes an event it did not change:

- an event routed unchanged is forwarded as the bytes it came with;
- an enriched event is its bytes behind the pod's context as a second `context` field
  (`context_field`): protobuf merges a message field that occurs twice, the later occurrence
  winning for scalars and map keys, so the event's own context fields win over the pod's;
- only a redacted event is parsed whole, changed and serialized again.

Nothing here is encoded by hand (that is `tapio_publisher.wire` alone): the view messages are
derived at import from the contract's own descriptors (`tapio_jetstream.views`), so a field added
to `Event` is in the views too, and the C runtime parses and frames them (`RawBatch`, `ContextField`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError as ProtobufDecodeError

from tapio.events.v1 import events_pb2
from tapio_jetstream.decode import Headers, message_payload
from tapio_jetstream.errors import DecodeError
from tapio_jetstream.views import add_view, view_classes, view_file
from tapio_publisher.codec import ENCODING_BATCH

VIEW_FILE = "tapio/pipeline/views.proto"
VIEW_PACKAGE = "tapio.pipeline.views"


def _view_file() -> descriptor_pb2.FileDescriptorProto:
    fdp = view_file(VIEW_FILE, VIEW_PACKAGE)
    add_view(fdp, "RouteEvent", events_pb2.Event.DESCRIPTOR, raw={"context"})
    add_view(fdp, "RouteBatch", events_pb2.EventBatch.DESCRIPTOR, retype={"events": "RouteEvent"})
    add_view(fdp, "RawBatch", events_pb2.EventBatch.DESCRIPTOR, raw={"events"})
    # an Event with nothing but its context, raw
    add_view(fdp, "ContextField", events_pb2.Event.DESCRIPTOR, raw={"context"}, keep={"context"})
    return fdp


RouteEvent, RouteBatch, RawBatch, ContextField = view_classes(
    _view_file(), ("RouteEvent", "RouteBatch", "RawBatch", "ContextField")
)


def decode_message(headers: Headers, data: bytes) -> tuple[Sequence[Any], Sequence[bytes]]:
    """The events of a message (bare Event or EventBatch, zstd/lz4): their views and, in the same
    order, their original bytes. Raises DecodeError for a payload that is not one; the contexts stay
    bytes here, parsed (once per distinct value) by the routing that reads them
    (`routing.route`), which raises DecodeError for one that is not a Context: together exactly
    what `tapio_jetstream.decode_events` refuses (`tests/test_hot_path.py` holds them to it)."""
    payload, encoding = message_payload(headers, data)
    try:
        if encoding == ENCODING_BATCH:
            return RouteBatch.FromString(payload).events, RawBatch.FromString(payload).events
        return [RouteEvent.FromString(payload)], [payload]
    except ProtobufDecodeError as e:
        raise DecodeError(f"not a valid {encoding} payload ({len(payload)} bytes): {e}") from e


def decode_view(headers: Headers, data: bytes) -> Sequence[Any]:
    """The views of a message's events (no raw bytes): for readers that only learn from them."""
    payload, encoding = message_payload(headers, data)
    try:
        if encoding == ENCODING_BATCH:
            return RouteBatch.FromString(payload).events  # type: ignore[no-any-return]
        return [RouteEvent.FromString(payload)]
    except ProtobufDecodeError as e:
        raise DecodeError(f"not a valid {encoding} payload ({len(payload)} bytes): {e}") from e


def parse_context(raw: bytes) -> events_pb2.Context:
    """A raw `context` of a view as a Context; DecodeError when it is not one."""
    try:
        return events_pb2.Context.FromString(raw)
    except ProtobufDecodeError as e:
        raise DecodeError(f"an event's context is not a valid Context ({len(raw)} bytes): {e}") from e


def context_field(context: bytes) -> bytes:
    """A serialized Context as an `Event.context` field: put before an event's bytes, it gives the
    event this context's fields wherever the event's own context has none."""
    return ContextField(context=context).SerializeToString()  # type: ignore[no-any-return]


def encode_batch(events: list[bytes], batch_id: str) -> bytes:
    """An EventBatch of serialized events (framed by the C runtime, the bytes copied as they are)."""
    batch = RawBatch(batch_id=batch_id)
    batch.events.extend(events)
    return batch.SerializeToString()  # type: ignore[no-any-return]

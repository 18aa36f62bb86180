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
derived at import from the contract's own descriptors (`events.proto`), so a field added to
`Event` is in the views too, and the C runtime parses and frames them (`RawBatch`, `ContextField`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message_factory import GetMessageClass

from tapio.events.v1 import events_pb2
from tapio_jetstream.decode import Headers, decompress
from tapio_jetstream.errors import DecodeError
from tapio_publisher.codec import (
    COMPRESSION_HEADER,
    ENCODING_BATCH,
    ENCODING_EVENT,
    ENCODING_HEADER,
)

VIEW_FILE = "tapio/pipeline/views.proto"
VIEW_PACKAGE = "tapio.pipeline.views"
_BYTES = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES


def _views() -> tuple[Any, Any, Any, Any]:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(VIEW_FILE)
    except KeyError:
        pool.Add(_view_file())
    find = pool.FindMessageTypeByName
    return (
        GetMessageClass(find(f"{VIEW_PACKAGE}.RouteEvent")),
        GetMessageClass(find(f"{VIEW_PACKAGE}.RouteBatch")),
        GetMessageClass(find(f"{VIEW_PACKAGE}.RawBatch")),
        GetMessageClass(find(f"{VIEW_PACKAGE}.ContextField")),
    )


def _view_file() -> descriptor_pb2.FileDescriptorProto:
    contract = events_pb2.DESCRIPTOR
    fdp = descriptor_pb2.FileDescriptorProto(
        name=VIEW_FILE,
        package=VIEW_PACKAGE,
        syntax="proto3",
        dependency=[d.name for d in contract.dependencies] + [contract.name],
    )
    event = fdp.message_type.add()
    events_pb2.Event.DESCRIPTOR.CopyToProto(event)
    event.name = "RouteEvent"
    own = f".{events_pb2.Event.DESCRIPTOR.full_name}."
    for field in event.field:
        if field.name == "context":
            field.type = _BYTES
            field.ClearField("type_name")
        elif field.type_name.startswith(own):  # nested types (the attributes map entry) are the view's own
            field.type_name = f".{VIEW_PACKAGE}.RouteEvent." + field.type_name[len(own) :]
    for name, events_type in (("RouteBatch", f".{VIEW_PACKAGE}.RouteEvent"), ("RawBatch", "")):
        batch = fdp.message_type.add()
        events_pb2.EventBatch.DESCRIPTOR.CopyToProto(batch)
        batch.name = name
        for field in batch.field:
            if field.name == "events":
                if events_type:
                    field.type_name = events_type
                else:
                    field.type = _BYTES
                    field.ClearField("type_name")
    only = fdp.message_type.add(name="ContextField")  # an Event with nothing but its context, raw
    context = next(f for f in event.field if f.name == "context")
    only.field.add().CopyFrom(context)
    only.field[0].ClearField("oneof_index")
    return fdp


RouteEvent, RouteBatch, RawBatch, ContextField = _views()


def decode_message(headers: Headers, data: bytes) -> tuple[Sequence[Any], Sequence[bytes]]:
    """The events of a message (bare Event or EventBatch, zstd/lz4): their views and, in the same
    order, their original bytes. Raises DecodeError for a payload that is not one; the contexts stay
    bytes here, parsed (once per distinct value) by the routing that reads them
    (`routing.route`), which raises DecodeError for one that is not a Context: together exactly
    what `tapio_jetstream.decode_events` refuses (`tests/test_hot_path.py` holds them to it)."""
    payload, encoding = _payload(headers, data)
    try:
        if encoding == ENCODING_BATCH:
            return RouteBatch.FromString(payload).events, RawBatch.FromString(payload).events
        return [RouteEvent.FromString(payload)], [payload]
    except ProtobufDecodeError as e:
        raise DecodeError(f"not a valid {encoding} payload ({len(payload)} bytes): {e}") from e


def decode_view(headers: Headers, data: bytes) -> Sequence[Any]:
    """The views of a message's events (no raw bytes): for readers that only learn from them."""
    payload, encoding = _payload(headers, data)
    try:
        if encoding == ENCODING_BATCH:
            return RouteBatch.FromString(payload).events  # type: ignore[no-any-return]
        return [RouteEvent.FromString(payload)]
    except ProtobufDecodeError as e:
        raise DecodeError(f"not a valid {encoding} payload ({len(payload)} bytes): {e}") from e


def _payload(headers: Headers, data: bytes) -> tuple[bytes, str]:
    hdrs = headers or {}
    payload = decompress(data, hdrs.get(COMPRESSION_HEADER, ""))
    encoding = hdrs.get(ENCODING_HEADER, ENCODING_EVENT)
    if encoding not in (ENCODING_BATCH, ENCODING_EVENT):
        raise DecodeError(f"unknown {ENCODING_HEADER} {encoding!r} (expected event|batch)")
    return payload, encoding


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

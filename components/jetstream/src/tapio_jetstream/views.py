"""Views of the contract's messages (pure): the same wire format, with chosen message fields kept as
raw bytes, so a hot consumer parses only what it reads.

A message field (`Event.context`, `Event.k8s`, `EventBatch.events`) and a `bytes` field have the same
wire encoding (length-delimited), so a view that declares the field `bytes` parses the same payload
and hands the field's serialized bytes back untouched: no sub-message is built, and two equal values
compare as equal bytes. Nothing is encoded by hand (that is `tapio_publisher.wire` alone): views are
derived at import from the contract's own descriptors (`events.proto`), so a field added to `Event`
is in every view too, and the C protobuf runtime parses them. Used by the pipeline's hot path
(`tapio_pipeline.views`: context raw) and the correlator's decode (`tapio_correlator.engine.views`:
context and k8s raw).

    fdp = view_file("tapio/x/views.proto", "tapio.x.views")
    add_view(fdp, "XEvent", events_pb2.Event.DESCRIPTOR, raw={"context"})
    add_view(fdp, "XBatch", events_pb2.EventBatch.DESCRIPTOR, retype={"events": "XEvent"})
    XEvent, XBatch = view_classes(fdp, ("XEvent", "XBatch"))
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message_factory import GetMessageClass

from tapio.events.v1 import events_pb2

_BYTES = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES


def view_file(name: str, package: str) -> descriptor_pb2.FileDescriptorProto:
    """An empty proto3 file of views, depending on the events contract (and what it imports)."""
    contract = events_pb2.DESCRIPTOR
    return descriptor_pb2.FileDescriptorProto(
        name=name,
        package=package,
        syntax="proto3",
        dependency=[d.name for d in contract.dependencies] + [contract.name],
    )


def add_view(
    fdp: descriptor_pb2.FileDescriptorProto,
    name: str,
    source: Any,  # a message Descriptor (the C runtime's type is not the annotated one)
    *,
    raw: Collection[str] = (),
    retype: Mapping[str, str] = {},
    keep: Collection[str] | None = None,
) -> descriptor_pb2.DescriptorProto:
    """Adds `name` to `fdp`: the message `source` with the fields named in `raw` as `bytes`, those of
    `retype` typed as another view of this file (e.g. a batch's `events` as an event view), and only
    the fields in `keep` when given (out of any oneof, so each stands alone). Nested types (a map's
    entry) become the view's own. Raises KeyError for a name the source does not have."""
    message = fdp.message_type.add()
    source.CopyToProto(message)
    message.name = name
    names = {f.name for f in message.field}
    unknown = (set(raw) | set(retype) | set(keep or ())) - names
    if unknown:
        raise KeyError(f"{source.full_name} has no field {', '.join(sorted(unknown))}")
    own = f".{source.full_name}."
    for field in message.field:
        if field.name in raw:
            field.type = _BYTES
            field.ClearField("type_name")
        elif field.name in retype:
            field.type_name = f".{fdp.package}.{retype[field.name]}"
        elif field.type_name.startswith(own):
            field.type_name = f".{fdp.package}.{name}." + field.type_name[len(own) :]
    if keep is not None:
        kept = [f for f in message.field if f.name in keep]
        del message.field[:]
        for f in kept:
            f.ClearField("oneof_index")
            f.ClearField("proto3_optional")
            message.field.add().CopyFrom(f)
        del message.oneof_decl[:]
    return message


def view_classes(fdp: descriptor_pb2.FileDescriptorProto, names: Sequence[str]) -> tuple[Any, ...]:
    """The message classes of `names` in `fdp`, the file added to the default pool once (a second
    import finds it there)."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(fdp.name)
    except KeyError:
        pool.Add(fdp)
    return tuple(GetMessageClass(pool.FindMessageTypeByName(f"{fdp.package}.{n}")) for n in names)

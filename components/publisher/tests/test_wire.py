"""The hand-encoded framing (tapio_publisher.wire) writes exactly what the protobuf library writes,
and reads back what the library wrote: the one place the two are allowed to differ in code."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tapio.events.v1 import events_pb2
from tapio_publisher import wire


def test_framed_batch_is_byte_identical_to_protobuf(events: list[events_pb2.Event]) -> None:
    # Map entries (labels, selector, attributes) have no fixed order on the wire unless
    # serialization is deterministic (keys sorted); the framing itself must be identical.
    events = events[:50]
    expected = events_pb2.EventBatch(events=events, batch_id="b-1").SerializeToString(deterministic=True)
    datas = [e.SerializeToString(deterministic=True) for e in events]
    assert wire.frame_batch(datas, "b-1") == expected
    assert b"".join(map(wire.event_field, datas)) + wire.batch_trailer("b-1") == expected


def test_large_events_take_the_slow_prefix() -> None:
    big = events_pb2.Event(id="big", message="m" * 70_000)
    data = big.SerializeToString()
    assert len(data) > 16384
    batch = events_pb2.EventBatch.FromString(wire.frame_batch([data], "b-big"))
    assert list(batch.events) == [big]
    assert batch.batch_id == "b-big"


def test_id_field_prepended_sets_a_missing_id_and_keeps_the_rest(events: list[events_pb2.Event]) -> None:
    ev = events[1]
    ev.ClearField("id")
    data = ev.SerializeToString()
    assert not wire.has_leading_id(data)
    fixed = wire.id_field("0190-new") + data
    assert wire.has_leading_id(fixed)
    assert wire.leading_id(fixed) == "0190-new"
    parsed = events_pb2.Event.FromString(fixed)
    assert parsed.id == "0190-new"
    parsed.ClearField("id")
    assert parsed == ev


@given(st.text(min_size=1, max_size=400))
def test_leading_id_reads_what_the_library_wrote(event_id: str) -> None:
    data = events_pb2.Event(id=event_id, message="x").SerializeToString()
    assert wire.has_leading_id(data)
    assert wire.leading_id(data) == event_id


@given(st.integers(min_value=0, max_value=2**35))
def test_varint_matches_protobuf(n: int) -> None:
    encoded = events_pb2.KernelEvent(latency_ns=n).SerializeToString()  # field 14, varint
    assert encoded == (b"\x70" + wire.varint(n) if n else b"")
    assert wire.length_prefix(n) == wire.varint(n)

"""Batching decisions: sealed by count, by bytes, by linger; ids assigned; oversized events refused."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from tapio.events.v1 import events_pb2
from tapio_publisher.batching import TRAILER_RESERVE, Batcher, SealedBatch
from tapio_publisher.wire import FRAME_OVERHEAD


def make_batcher(max_events: int = 1000, max_bytes: int = 1 << 20, linger: float = 0.05) -> Batcher:
    counter = itertools.count()
    return Batcher(
        max_events=max_events, max_bytes=max_bytes, linger=linger, new_id=lambda: f"gen-{next(counter)}"
    )


def decoded(batch: SealedBatch) -> list[events_pb2.Event]:
    return list(events_pb2.EventBatch.FromString(b"".join(batch.parts)).events)


def serialized(events: list[events_pb2.Event]) -> list[bytes]:
    return [e.SerializeToString() for e in events]


def test_full_batches_seal_at_max_events(events: list[events_pb2.Event]) -> None:
    b = make_batcher(max_events=100)
    sealed, oversized = b.add_many("s", serialized(events[:250]), now=0.0)
    assert oversized == []
    assert [s.count for s in sealed] == [100, 100]
    assert b.open_events == 50
    assert decoded(sealed[0]) + decoded(sealed[1]) == events[:200]


def test_bytes_limit_is_never_exceeded(events: list[events_pb2.Event]) -> None:
    b = make_batcher(max_bytes=8192)
    sealed, _ = b.add_many("s", serialized(events), now=0.0)
    sealed += b.seal_all()
    assert sum(s.count for s in sealed) == len(events)
    for s in sealed:
        size = len(b"".join(s.parts))
        assert size <= 8192 - TRAILER_RESERVE
        assert size <= s.size  # the accounting is conservative
    assert [e for s in sealed for e in decoded(s)] == events


def test_linger_seals_old_batches_only(events: list[events_pb2.Event]) -> None:
    b = make_batcher(linger=0.05)
    b.add_many("a", serialized(events[:3]), now=10.0)
    b.add_many("b", serialized(events[3:5]), now=10.03)
    assert b.next_deadline() == 10.05
    assert b.due(10.04) == []
    due = b.due(10.05)
    assert [(s.subject, s.count) for s in due] == [("a", 3)]
    assert b.next_deadline() == 10.08
    assert [(s.subject, s.count) for s in b.due(11.0)] == [("b", 2)]
    assert b.next_deadline() is None
    assert b.open_bytes == 0


def test_events_without_id_get_one_and_keep_their_content(events: list[events_pb2.Event]) -> None:
    for ev in events[:10]:
        ev.ClearField("id")
    b = make_batcher()
    b.add_many("s", serialized(events[:10]) + serialized(events[10:20]), now=0.0)
    (batch,) = b.seal_all()
    out = decoded(batch)
    assert [e.id for e in out[:10]] == [f"gen-{i}" for i in range(10)]
    assert b.ids_assigned == 10
    for got, want in zip(out, events[:20], strict=True):
        got_rest = events_pb2.Event()
        got_rest.CopyFrom(got)
        got_rest.ClearField("id")
        want.ClearField("id")
        assert got_rest == want


def test_oversized_events_are_refused_and_the_rest_kept(events: list[events_pb2.Event]) -> None:
    b = make_batcher(max_bytes=4096)
    huge = events[0]
    huge.message = "x" * 5000
    datas = [*serialized(events[1:4]), huge.SerializeToString(), *serialized(events[4:6])]
    sealed, oversized = b.add_many("s", datas, now=0.0)
    assert [(o.index, o.size) for o in oversized] == [(3, len(datas[3]))]
    assert [e for s in sealed + b.seal_all() for e in decoded(s)] == events[1:6]


def test_open_bytes_are_bounded_across_subjects(events: list[events_pb2.Event]) -> None:
    b = Batcher(max_events=1000, max_bytes=1 << 20, linger=1.0, new_id=lambda: "x", max_open_bytes=20_000)
    sealed: list[SealedBatch] = []
    for i, ev in enumerate(events):
        s, _ = b.add_many(f"subject-{i % 40}", [ev.SerializeToString()], now=float(i))
        sealed += s
    assert b.open_bytes <= 20_000
    assert sealed, "the oldest batches were sealed early"
    assert sum(s.count for s in sealed) + b.open_events == len(events)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=60),
    max_events=st.integers(min_value=1, max_value=20),
    max_bytes=st.integers(min_value=3200, max_value=20000),
    chunk=st.integers(min_value=1, max_value=25),
)
def test_any_input_keeps_order_and_limits(
    sizes: list[int], max_events: int, max_bytes: int, chunk: int
) -> None:
    """Whatever the sizes and call chunking: every event comes out once, in order, within limits."""
    datas = [events_pb2.Event(id=f"id-{i}", message="m" * n).SerializeToString() for i, n in enumerate(sizes)]
    b = make_batcher(max_events=max_events, max_bytes=max_bytes)
    sealed: list[SealedBatch] = []
    refused = []
    for start in range(0, len(datas), chunk):
        done, too_big = b.add_many("s", datas[start : start + chunk], now=0.0)
        sealed += done
        refused += [start + x.index for x in too_big]
    sealed += b.seal_all()
    kept = [d for i, d in enumerate(datas) if i not in refused]
    assert all(len(datas[i]) > max_bytes - TRAILER_RESERVE - FRAME_OVERHEAD for i in refused)
    assert [e for batch in sealed for e in decoded(batch)] == [events_pb2.Event.FromString(d) for d in kept]
    for batch in sealed:
        assert 1 <= batch.count <= max_events
        assert len(b"".join(batch.parts)) <= max_bytes - TRAILER_RESERVE

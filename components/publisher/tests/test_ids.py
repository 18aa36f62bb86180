"""Event and batch ids are UUIDv7: right format, unique, time-ordered, cheap to make."""

from __future__ import annotations

import itertools
import uuid

from tapio_publisher.ids import IdGenerator


def test_format_is_uuid_version_7() -> None:
    gen = IdGenerator()
    for _ in range(1000):
        u = uuid.UUID(gen())
        assert u.version == 7
        assert u.variant == uuid.RFC_4122


def test_unique_and_ordered_within_and_across_milliseconds() -> None:
    clock = itertools.chain(
        [1_700_000_000_000_000_000] * 5000, itertools.count(1_700_000_000_001_000_000, 250_000)
    )
    gen = IdGenerator(clock_ns=lambda: next(clock))
    ids = [gen() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids), "UUIDv7 strings sort by time, then by the monotonic counter"
    assert uuid.UUID(ids[0]).int >> 80 == 1_700_000_000_000


def test_clock_going_back_keeps_ids_unique() -> None:
    times = iter([2_000_000_000, 1_000_000_000, 1_000_000_000, 3_000_000_000])
    gen = IdGenerator(clock_ns=lambda: next(times))
    ids = [gen() for _ in range(4)]
    assert len(set(ids)) == 4
    assert ids[:3] == sorted(ids[:3])


def test_two_generators_do_not_collide() -> None:
    now = 1_700_000_000_000_000_000
    a, b = IdGenerator(clock_ns=lambda: now), IdGenerator(clock_ns=lambda: now)
    assert not {a() for _ in range(5000)} & {b() for _ in range(5000)}


def test_stable_id_is_deterministic_time_ordered_uuid7() -> None:
    import uuid

    from tapio_publisher.ids import stable_id

    a = stable_id(1_700_000_000_000, "node", "kubelet.service", "failed")
    assert a == stable_id(1_700_000_000_000, "node", "kubelet.service", "failed")
    assert a != stable_id(1_700_000_000_000, "node", "kubelet.service", "active")
    assert uuid.UUID(a).version == 7
    assert uuid.UUID(a).variant == uuid.RFC_4122
    assert a.startswith("018bcfe5-6800-")  # the 48-bit milliseconds lead, as in new_id()
    assert stable_id(1_700_000_000_001, "x") > stable_id(1_700_000_000_000, "x")

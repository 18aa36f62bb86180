"""The topology of CONTRACT.md §3 as data, and the plan that reconciles a server with it."""

from __future__ import annotations

import pytest

from tapio_common.subjects import Subjects
from tapio_jetstream.layout import (
    CORRELATIONS,
    DAY,
    EVENTS,
    GB,
    ApplyReport,
    Change,
    plan,
    production_layout,
)


def test_production_limits() -> None:
    topo = production_layout(replicas=3)
    assert [s.name for s in topo.streams] == [
        "TAPIO_EVENTS", "TAPIO_CORRELATIONS", "TAPIO_ALERTS", "TAPIO_PROCESSED", "TAPIO_DLQ",
    ]  # fmt: skip
    ev = topo.stream(EVENTS)
    assert ev.subjects == ("tapio.events.>",)
    assert (ev.max_age, ev.max_msgs, ev.max_bytes, ev.max_msg_size) == (7 * DAY, 10_000_000, 10 * GB, 1 << 20)
    assert (ev.storage, ev.replicas, ev.duplicate_window, ev.discard) == ("file", 3, 120.0, "old")
    ages = {s.name: s.max_age / DAY for s in topo.streams}
    assert ages == {
        "TAPIO_EVENTS": 7,
        "TAPIO_CORRELATIONS": 30,
        "TAPIO_ALERTS": 30,
        "TAPIO_PROCESSED": 3,
        "TAPIO_DLQ": 30,
    }
    assert all(s.replicas == 3 and s.storage == "file" for s in topo.streams)
    consumers = {(c.stream, c.durable): c for c in topo.consumers}
    assert set(consumers) == {(EVENTS, "correlator"), (EVENTS, "pipeline"), (CORRELATIONS, "siem-exporter")}
    assert all(c.max_deliver == 5 and c.ack_policy == "explicit" for c in topo.consumers)


def test_another_prefix_gets_its_own_streams_and_filters() -> None:
    """NATS_SUBJECT_PREFIX blue: streams BLUE_*, subjects and filters blue.*; durable names stay
    (they live inside a stream); limits are the production ones."""
    blue = production_layout(3, subjects=Subjects("blue"))
    tapio = production_layout(3)
    assert [s.name for s in blue.streams] == [
        "BLUE_EVENTS", "BLUE_CORRELATIONS", "BLUE_ALERTS", "BLUE_PROCESSED", "BLUE_DLQ",
    ]  # fmt: skip
    assert [s.subjects for s in blue.streams] == [
        ("blue.events.>",), ("blue.correlations.>",), ("blue.alerts.>",), ("blue.processed.>",), ("blue.dlq.>",),
    ]  # fmt: skip
    assert {(c.stream, c.durable, c.filter_subject) for c in blue.consumers} == {
        ("BLUE_EVENTS", "correlator", "blue.events.>"),
        ("BLUE_EVENTS", "pipeline", "blue.events.>"),
        ("BLUE_CORRELATIONS", "siem-exporter", "blue.correlations.>"),
    }
    assert blue.consumer("pipeline").stream == "BLUE_EVENTS"
    assert blue.subjects.prefix == "blue"
    for mine, theirs in zip(blue.streams, tapio.streams, strict=True):
        assert mine.comparable() | {"subjects": ()} == theirs.comparable() | {"subjects": ()}
    with pytest.raises(KeyError):
        blue.consumer("nope")


def test_scaled_down_for_tests() -> None:
    ev = production_layout(1, scale=0.001).stream(EVENTS)
    assert (ev.max_msgs, ev.max_bytes, ev.max_age) == (10_000, 10 * GB // 1000, 7 * DAY)
    with pytest.raises(ValueError, match="replicas"):
        production_layout(0)


def test_plan_create_unchanged_update_refused() -> None:
    spec = production_layout(1).stream(EVENTS)
    wanted = spec.comparable()
    assert plan("stream", EVENTS, wanted, None).action == "create"
    assert plan("stream", EVENTS, wanted, dict(wanted)).action == "unchanged"
    update = plan("stream", EVENTS, wanted, {**wanted, "max_bytes": 5 * GB})
    assert update == Change("stream", EVENTS, "update", (f"max_bytes: {5 * GB} -> {10 * GB}",))
    refused = plan("stream", EVENTS, wanted, {**wanted, "storage": "memory", "max_msgs": 1})
    assert refused.action == "refused"
    assert refused.changes == ("storage: memory -> file",)
    consumer = production_layout(1).consumers[0].comparable()
    assert plan("consumer", "c", consumer, {**consumer, "ack_policy": "none"}).action == "refused"
    assert plan("consumer", "c", consumer, {**consumer, "ack_wait": 5.0}).action == "update"


def test_report_summary() -> None:
    report = ApplyReport((Change("stream", "A", "create"), Change("stream", "B", "unchanged")), dry_run=True)
    assert report.summary() == "would create 1, unchanged 1"

"""Determinism: same input, same output; stable ids; out-of-order within the slack; snapshots; pb path."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tapio.events.v1 import events_pb2
from tapio_common.config import load_settings
from tapio_common.errors import ConfigError, ContractError
from tapio_common.model import Correlation, Event
from tapio_common.model.convert import event_from_json, event_to_proto
from tapio_common.scenarios import load_scenarios
from tapio_correlator.engine import Engine, EngineConfig
from tapio_correlator.engine.incident import correlation_id, scope_key
from tapio_correlator_testing import Cluster, run

SECOND = 1_000_000_000


def _public_events() -> list[tuple[str, list[Event]]]:
    out = []
    for sc in load_scenarios():
        out.append((sc.name, [event_from_json(line) for line in sc.lines]))
    assert len(out) >= 5
    return out


PUBLIC = _public_events()


def _all(engine: Engine, events: list[Event]) -> list[Correlation]:
    out: list[Correlation] = []
    for ev in events:
        out += engine.process(ev)
    return out + engine.finish()


def shuffle_within(events: list[Event], seconds: float, seed: int) -> list[Event]:
    """The events in an arrival order where each may be up to `seconds` late."""
    rng = random.Random(seed)
    keyed = sorted((ev.time + rng.uniform(0, seconds) * SECOND, i, ev) for i, ev in enumerate(events))
    return [ev for _, _, ev in keyed]


@pytest.mark.parametrize(("name", "events"), PUBLIC, ids=[n for n, _ in PUBLIC])
def test_same_input_twice_gives_identical_output(name: str, events: list[Event]) -> None:
    first = _all(Engine(), events)
    assert first, name
    assert _all(Engine(), events) == first


def test_ids_are_a_hash_of_type_scope_and_root_cause() -> None:
    name, events = PUBLIC[0]
    result = [c for c in _all(Engine(), events) if c.score >= 0.5]
    by_id = {e.id: e for e in events}
    for corr in result:
        root = by_id[corr.root_cause_event_id]
        assert corr.id == correlation_id(corr.type, scope_key(root), root.id), name
    assert correlation_id("a", "b", "c") == correlation_id("a", "b", "c") != correlation_id("a", "b", "d")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("name", "events"), PUBLIC, ids=[n for n, _ in PUBLIC])
def test_out_of_order_within_the_slack_gives_the_sorted_result(
    name: str, events: list[Event], seed: int
) -> None:
    cfg = EngineConfig(reorder_slack_ns=3 * SECOND)
    expected = _all(Engine(cfg), events)
    shuffled = shuffle_within(events, 2.9, seed)
    assert shuffled != events, "the shuffle must actually reorder"
    assert _all(Engine(cfg), shuffled) == expected, name


def test_same_time_events_give_the_same_result_in_any_order() -> None:
    c = Cluster()
    pod = c.pod("a", "web", "n1")
    unit, not_ready = c.unit(100, "n1", "kubelet"), c.node_not_ready(150, "n1")
    lost = c.fail(150, pod, "not_ready")  # same timestamp as the node event
    events = [c.created(0, pod), unit, not_ready, lost]
    swapped = [events[0], unit, lost, not_ready]
    assert _all(Engine(), events) == _all(Engine(), swapped)


@pytest.mark.parametrize(("name", "events"), PUBLIC, ids=[n for n, _ in PUBLIC])
def test_protobuf_entry_point_gives_identical_correlations(name: str, events: list[Event]) -> None:
    expected = _all(Engine(), events)
    engine = Engine()
    out: list[Correlation] = []
    for ev in events:
        msg = events_pb2.Event()
        msg.ParseFromString(event_to_proto(ev).SerializeToString())
        out += engine.process_pb(msg)
    assert out + engine.finish() == expected, name
    batched = Engine()
    assert batched.process_many(events) + batched.finish() == expected


@pytest.mark.parametrize(("name", "events"), PUBLIC, ids=[n for n, _ in PUBLIC])
def test_snapshot_restore_mid_stream_continues_identically(name: str, events: list[Event]) -> None:
    expected = _all(Engine(), events)
    for cut in (len(events) // 3, 2 * len(events) // 3):
        engine = Engine()
        out: list[Correlation] = []
        for ev in events[:cut]:
            out += engine.process(ev)
        restored = Engine.restore(engine.snapshot())
        assert restored.state_size() == engine.state_size()
        for ev in events[cut:]:
            out += restored.process(ev)
        assert out + restored.finish() == expected, name


def test_restore_refuses_what_is_not_a_snapshot() -> None:
    with pytest.raises(ContractError):
        Engine.restore(b"not a snapshot")
    with pytest.raises(ContractError):
        Engine.restore(Engine().snapshot()[:-10])


def test_open_incidents_shows_the_latest_revision_of_what_can_still_grow(tmp_path: Path) -> None:
    c = Cluster()
    pod = c.pod("shop", "queue", "n1")
    engine = Engine(EngineConfig(reorder_slack_ns=0))
    revisions: list[Correlation] = []
    for i in range(4):
        revisions += engine.process(c.restart(100 + 30 * i, pod, i + 1))
    assert [r.revision for r in revisions] == [1, 2]
    assert engine.open_incidents() == [revisions[-1]]
    engine.advance(c.restart(0, pod, 9).time + 3600 * SECOND)  # an hour later: closed
    assert engine.open_incidents() == []


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError):
        EngineConfig(cascade_window_ns=0)
    cfg = load_settings(EngineConfig, {"reorder_slack_seconds": 1.5, "retransmit_threshold": 80})
    assert cfg.reorder_slack_ns == 1_500_000_000
    assert cfg.retransmit_threshold == 80
    with pytest.raises(ConfigError):
        load_settings(EngineConfig, {"no_such_window": 1})


def test_a_redelivered_event_changes_nothing() -> None:
    c = Cluster()
    pod = c.pod("shop", "queue", "n1")
    restarts = [c.restart(100 + 30 * i, pod, i + 1) for i in range(4)]
    once = run(restarts)
    twice = run([*restarts, restarts[1], restarts[3]])
    assert [(r.type, r.event_ids, r.revision) for r in twice] == [
        (r.type, r.event_ids, r.revision) for r in once
    ]


def test_both_entry_points_agree_on_events_without_a_payload() -> None:
    from tapio_common.model import Context, Severity, Source

    bare = [
        Event(
            "x1",
            10 * SECOND,
            Source.K8S,
            "endpoints",
            "updated",
            Severity.WARNING,
            "",
            Context(namespace="a"),
        ),
        Event(
            "x2", 11 * SECOND, Source.K8S, "services", "unhealthy", Severity.ERROR, "", Context(namespace="a")
        ),
        Event(
            "x3",
            12 * SECOND,
            Source.K8S,
            "pods",
            "restarted",
            Severity.WARNING,
            "",
            Context(namespace="a", pod="p"),
        ),
        Event(
            "x4", 13 * SECOND, Source.EBPF, "oom_kill", "killed", Severity.CRITICAL, "", Context(node="n1")
        ),
        Event("x5", 14 * SECOND, Source.K8S, "nodes", "not_ready", Severity.CRITICAL, "", Context(node="n1")),
    ]
    expected = _all(Engine(), bare)
    engine = Engine()
    out: list[Correlation] = []
    for ev in bare:
        out += engine.process_pb(event_to_proto(ev))
    assert out + engine.finish() == expected

"""Late, repeated and skewed events, one rule at a time: re-rooting, the seen-id memory, restarts."""

from __future__ import annotations

from tapio_common.model import Confidence, Correlation, Event
from tapio_correlator.engine import Engine, EngineConfig
from tapio_correlator.replay import final_revisions
from tapio_correlator_testing import Cluster, Pod, S, at, one


def _setup(c: Cluster, pods: list[Pod], t: float = 0.0) -> list[Event]:
    return [c.created(t + i * 0.1, p) for i, p in enumerate(pods)]


def _feed(engine: Engine, events: list[Event]) -> list[Correlation]:
    out: list[Correlation] = []
    for ev in events:
        out += engine.process(ev)
    return out


def _cascade(c: Cluster) -> tuple[Event, list[Event], list[Event]]:
    """An OOM cascade whose kernel kill (the root cause) comes from a node that delivers late."""
    a, b = c.pod("shop", "cart", "n1"), c.pod("shop", "cart", "n2")
    kill = c.oom_kill(100, a)
    api = [*_setup(c, [a, b]), c.service(1, "shop", "cart", "cart"), c.oom_killed(101.5, a)]
    api += [c.oom_restart(110, a), c.fail(140, b, "unhealthy"), c.service_down(220, "shop", "cart", "cart")]
    return kill, api, [*api[:3], kill, *api[3:]]


def test_a_late_root_cause_re_roots_the_published_incident_under_the_same_id() -> None:
    c = Cluster()
    kill, api, _ = _cascade(c)
    engine = Engine()
    tick = c.created(260, c.pod("shop", "web", "n3"))  # moves event time on: the API server is on time
    before = _feed(engine, [*api, tick])
    first = one(final_revisions(before), "cascading_failure")
    assert first.root_cause_event_id != kill.id  # the pod's view of the kill stood in for it
    after = _feed(engine, [kill]) + engine.finish()  # the node's spool: 160 s after the kill
    corr = one(final_revisions(before + after), "cascading_failure")
    assert corr.id == first.id
    assert corr.revision > first.revision
    assert corr.root_cause_event_id == kill.id
    assert corr.event_ids[0] == kill.id
    assert corr.confidence is Confidence.HIGH
    assert engine.counters()["late"] == 1


def test_the_same_final_incident_whatever_the_kernel_kill_delay() -> None:
    c = Cluster()
    kill, _api, ordered = _cascade(c)
    clean = one(final_revisions(_feed(engine := Engine(), ordered) + engine.finish()), "cascading_failure")
    for delay in (0.5, 3, 30, 120, 600):
        arrival = sorted(ordered, key=lambda e: e.time + (round(delay * S) if e is kill else 0))
        got = one(final_revisions(_feed(engine := Engine(), arrival) + engine.finish()), "cascading_failure")
        assert (got.root_cause_event_id, set(got.event_ids)) == (
            clean.root_cause_event_id,
            set(clean.event_ids),
        )


def test_a_redelivered_oom_kill_is_one_kill() -> None:
    c = Cluster()
    a, b = c.pod("shop", "batch", "n1"), c.pod("shop", "batch", "n2")
    kill, restart = c.oom_killed(100, a), c.oom_restart(104, a)
    events = [*_setup(c, [a, b]), kill, restart, kill, restart]
    engine = Engine()
    out = _feed(engine, events) + engine.finish()
    assert [x for x in final_revisions(out) if x.score >= 0.5] == []  # one kill: no repeated OOM
    assert engine.counters()["duplicates"] >= 1


def test_after_a_restart_the_redelivered_tail_is_a_no_op() -> None:
    c = Cluster()
    _, _, ordered = _cascade(c)
    clean = final_revisions(_feed(engine := Engine(), ordered) + engine.finish())
    for cut in range(4, len(ordered)):
        engine = Engine()
        out = _feed(engine, ordered[:cut])
        engine.advance(ordered[cut - 1].time)  # what was processed before the snapshot
        restored = Engine.restore(engine.snapshot())
        # JetStream redelivers what was not acked: everything since a few events before the snapshot.
        out += _feed(restored, ordered[max(0, cut - 3) :]) + restored.finish()
        assert final_revisions(out) == clean, f"restart after event {cut}"


def test_the_seen_id_memory_is_bounded_by_count_and_by_age() -> None:
    c = Cluster()
    pods = [c.pod("ns", f"app{i}", f"n{i % 7}") for i in range(400)]
    engine = Engine(EngineConfig(max_seen_ids=300, seen_ids_retention_ns=600 * S))
    events = _setup(c, pods)
    events += [c.fail(100 + i * 5.0, p, "unhealthy") for i, p in enumerate(pods)]
    _feed(engine, events)
    assert engine.state_size()["seen_ids"] <= 300
    assert engine.state_size()["seen_ids"] >= 100  # the recent ones are remembered
    engine.advance(at(100 + 400 * 5.0 + 700))
    assert engine.state_size()["seen_ids"] == 0


def test_a_unit_failure_stamped_just_after_the_node_went_not_ready_is_its_root() -> None:
    c = Cluster()
    pods = [c.pod("shop", "web", "n1"), c.pod("shop", "db", "n1")]
    nr = c.node_not_ready(100, "n1")
    unit = c.unit(100.6, "n1", "kubelet")  # the node's clock is 1 s ahead of the API server's
    events = [
        *_setup(c, pods),
        nr,
        unit,
        c.fail(110, pods[0], "not_ready"),
        c.fail(115, pods[1], "not_ready"),
    ]
    engine = Engine()
    corr = one(final_revisions(_feed(engine, events) + engine.finish()), "node_failure")
    assert corr.root_cause_event_id == unit.id
    assert corr.confidence is Confidence.HIGH

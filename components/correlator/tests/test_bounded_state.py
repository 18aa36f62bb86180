"""Memory stays flat on an endless stream: windows expire, deleted pods leave the topology."""

from __future__ import annotations

import random
from collections.abc import Iterator

from tapio_common.model import Event
from tapio_correlator.engine import Engine, EngineConfig
from tapio_correlator_testing import BASE, Cluster, Pod, S, final

HOURS = 8
CHECK_EVERY = 1800.0  # seconds of event time


def endless(c: Cluster, rng: random.Random, seconds: float) -> Iterator[Event]:
    """Pods churning (created, updated, deleted) with incidents now and then, in time order."""
    live: list[Pod] = []
    t = 0.0
    n = 0
    while t < seconds:
        t += rng.uniform(0.05, 0.4)
        n += 1
        if len(live) < 300 or rng.random() < 0.2:
            pod = c.pod(f"ns{rng.randrange(5)}", f"app{rng.randrange(40)}", f"n{rng.randrange(20)}")
            live.append(pod)
            yield c.created(t, pod)
        pod = live[rng.randrange(len(live))]
        roll = rng.random()
        if roll < 0.2:
            live.remove(pod)
            yield c.pod_event(t, pod, "deleted")
        elif roll < 0.8:
            yield c.pod_event(t, pod, "updated", ready=True)
        elif roll < 0.95:
            yield c.retransmit(t, pod, rng.randint(1, 8))
        elif n % 7 == 0:  # a crash loop (it keeps restarting for a while)
            for i in range(6):
                yield c.restart(t + 0.01 * i, pod, i + 1)
        elif n % 7 == 1:  # an OOM that stands alone
            yield c.oom_kill(t, pod)
        elif n % 7 == 2:
            yield c.cni_loss(t, pod.node)
        else:
            yield c.fail(t, pod, "unhealthy")


def test_state_stays_flat_over_hours_of_events() -> None:
    c = Cluster()
    engine = Engine()
    checkpoints: list[dict[str, int]] = []
    next_check = CHECK_EVERY
    emitted = 0
    for ev in endless(c, random.Random(7), HOURS * 3600):
        emitted += len(engine.process(ev))
        if (ev.time - BASE) / S >= next_check:
            checkpoints.append(engine.state_size())
            next_check += CHECK_EVERY
    assert emitted > 100, "the stream has incidents"
    assert len(checkpoints) >= 2 * HOURS - 1
    early = checkpoints[1 : HOURS // 2 * 2]
    late = checkpoints[HOURS:]
    for key in (
        "pods",
        "containers",
        "incidents",
        "incident_events",
        "crash_trackers",
        "orphans",
        "buffered",
    ):
        worst_early = max(cp[key] for cp in early)
        worst_late = max(cp[key] for cp in late)
        assert worst_late <= worst_early * 1.5 + 20, f"{key} grows: {worst_early} -> {worst_late}"
    assert max(cp["deleted_pods"] for cp in late) < 1000
    assert engine.counters()["incidents_closed"] > 0.9 * engine.counters()["incidents_opened"]


def test_an_endless_crash_loop_is_reported_once_per_max_age_with_bounded_events() -> None:
    c = Cluster()
    pod = c.pod("shop", "queue", "n1")
    restarts = [c.restart(30.0 * i, pod, i + 1) for i in range(3 * 3600 // 30)]  # three hours
    result = [r for r in final(restarts, EngineConfig(max_incident_events=50)) if r.type == "crash_loop"]
    assert len(result) == 3, "one incident per hour (the default max age)"
    assert all(len(r.event_ids) <= 50 for r in result)
    assert len({r.root_cause_event_id for r in result}) == 3

"""resource_pressure: node pressure -> evictions (high), or repeated OOM kills in one workload (medium)."""

from __future__ import annotations

from tapio_common.model import Event
from tapio_scenariogen.families.common import Builder, oom_chain, replacement, restart_times, spread_out
from tapio_scenariogen.world import OOM_REPEAT_WINDOW, PRESSURE_WINDOW, World

CONDITIONS = {"MemoryPressure": "memory", "DiskPressure": "ephemeral-storage", "PIDPressure": "pids"}


def pressure_evictions(w: World, t0: float, delay: tuple[float, float]) -> tuple[Event, list[Event], float]:
    """A pressure condition on a node, then evictions of 1-3 of its pods `delay` seconds later."""
    node, _ = w.node_with_workloads(w.rng.choice((1, 2, 3)))
    spread_out(w, node)
    condition = w.rng.choice(list(CONDITIONS))
    root = w.emit.node_condition(t0, node, condition, "True")
    victims = w.rng.sample(w.cluster.pods_on(node), min(len(w.cluster.pods_on(node)), w.rng.randint(1, 3)))
    first = t0 + w.jitter(*delay)
    times = restart_times(w, first, len(victims), 120.0, gap=(1.0, 40.0))
    evicted = [
        w.emit.pod_evicted(t, pod, CONDITIONS[condition]) for pod, t in zip(victims, times, strict=True)
    ]
    end = times[-1]
    if w.rng.random() < 0.6:
        end += w.jitter(30, 120)
        w.emit.node_condition(end, node, condition, "False")
    if w.rng.random() < 0.5:
        t = times[-1]
        for pod in victims:
            t = replacement(w, t + w.jitter(1, 6), pod, node)
        end = max(end, t)
    w.kill(victims)
    w.guard([node], w.cluster.pods_on(node), t0, end)
    return root, evicted, end


def evictions(w: World, t0: float) -> float:
    """Memory/disk/PID pressure on a node -> its pods evicted within 10 minutes (high)."""
    root, evicted, end = pressure_evictions(w, t0, (15.0, PRESSURE_WINDOW - 180.0))
    w.expect("resource_pressure", root, [root, *evicted], "high")
    return end


def repeated_oom_events(w: World, t0: float, kills: int, same_pod: bool) -> list[Event]:
    """`kills` OOM kills in one workload within the repeated-OOM window (each with its restart)."""
    dep = w.workload(min_replicas=2)
    kernel = w.rng.random() < 0.5
    times = restart_times(w, t0, kills, OOM_REPEAT_WINDOW - 60, gap=(20.0, 110.0))
    victim = w.rng.choice(dep.pods)
    counts: dict[str, int] = {}
    events: list[Event] = []
    for t in times:
        pod = victim if same_pod else w.rng.choice(dep.pods)
        counts[pod.uid] = counts.get(pod.uid, 0) + 1
        events += oom_chain(w, t, pod, kernel, counts[pod.uid])
    w.guard(dep.nodes, dep.pods, t0, w.at(events[-1]))
    return events


def repeated_oom(w: World, t0: float) -> float:
    """2-3 OOM kills in one workload within 5 minutes, no Service impact (medium)."""
    events = repeated_oom_events(w, t0, w.rng.randint(2, 3), same_pod=w.rng.random() < 0.4)
    w.expect("resource_pressure", events[0], events, "medium")
    return w.at(events[-1])


VARIANTS: dict[str, Builder] = {"evictions": evictions, "repeated_oom": repeated_oom}

"""Mixed scenarios: two incidents at once, heavy noise, and failures that belong to an earlier cause."""

from __future__ import annotations

from tapio_common.model import Event
from tapio_scenariogen.families import deploy, node, pressure
from tapio_scenariogen.families.common import (
    CRASH_EXIT_CODES,
    Builder,
    oom_chain,
    restart_series,
    restart_times,
    service_impact,
)
from tapio_scenariogen.families.positive import POSITIVE
from tapio_scenariogen.world import World


def _random_positive(w: World, exclude: str = "") -> tuple[str, Builder]:
    family = w.rng.choice(sorted(f for f in POSITIVE if f != exclude))
    variant = w.rng.choice(sorted(POSITIVE[family]))
    w.notes.append(f"{family}/{variant}")
    return family, POSITIVE[family][variant]


def two_incidents(w: World, t0: float) -> float:
    """Two independent incidents of different families, overlapping in time, with no shared link."""
    family, first = _random_positive(w)
    _, second = _random_positive(w, exclude=family)
    end1 = first(w, t0)
    end2 = second(w, max(t0 + w.jitter(-60, 240), 110.0))
    return max(end1, end2)


def heavy_noise(w: World, t0: float) -> float:
    """One incident in a bigger, much noisier cluster."""
    for _ in range(w.rng.randint(1, 3)):
        w.cluster.add_node()
    for _ in range(w.rng.randint(4, 8)):
        w.cluster.add_deployment()
    w.noise_scale = w.jitter(5, 10)
    _, builder = _random_positive(w)
    return builder(w, t0)


def cascade_with_crash(w: World, t0: float) -> float:
    """OOM of one pod; the workload's other pod crash-loops; its Service dies: one cascade, no crash_loop."""
    dep = w.workload(min_replicas=2, max_replicas=3, service=True)
    victim, *rest = dep.pods
    chain = oom_chain(w, t0, victim, kernel=w.rng.random() < 0.6)
    failures: list[Event] = []
    start = t0 + w.jitter(15, 40)
    for pod in rest:
        times = restart_times(w, start + w.jitter(0, 20), w.rng.randint(3, 5), 150.0, gap=(10.0, 40.0))
        failures += restart_series(w, pod, times, w.rng.choice(CRASH_EXIT_CODES), w.rng.choice((2, 3)))
    last = max(w.at(e) for e in failures)
    impact = service_impact(w, last + w.jitter(5, 60), dep)
    end = w.at(impact)
    w.guard(dep.nodes, dep.pods, t0, end)
    w.expect("cascading_failure", chain[0], [*chain, *failures, impact], "high")
    return end


def oom_restarts(w: World, t0: float) -> float:
    """One pod OOMKilled 3-5 times in a few minutes: the repeated OOM, never a crash_loop."""
    events = pressure.repeated_oom_events(w, t0, w.rng.randint(3, 5), same_pod=True)
    w.expect("resource_pressure", events[0], events, "medium")
    return w.at(events[-1])


def node_pods_lost(w: World, t0: float) -> float:
    """A node fails with pods of >= 2 workloads on it: not ready, evicted, replaced elsewhere."""
    events, end = node.node_lost(w, t0, evict=True, replace=True, workloads=2)
    w.expect("node_failure", events[0], events, "high")
    return end


def deploy_crash_loops(w: World, t0: float) -> float:
    """A rollout whose new pods each crash-loop >= 5 times: the deployment_failure only."""
    events, end = deploy.failed_rollout(w, t0, "crash_loop", (5, 7))
    w.expect("deployment_failure", events[0], events, "high")
    return end


def old_rs_crash_loop(w: World, t0: float) -> float:
    """During a healthy rollout an OLD ReplicaSet pod crash-loops: a crash_loop, not a deployment_failure."""
    dep = w.workload(min_replicas=2, max_replicas=4)
    _, rs = deploy.rollout_start(w, t0, dep)
    old = list(dep.pods)
    w.rng.shuffle(old)
    sick, replaced = old[0], old[1:]
    t = t0 + w.jitter(2, 10)
    for pod in replaced:
        fresh = w.cluster.new_pod(dep, rs, pod.node)
        w.emit.pod_created(t, fresh)
        w.emit.pod_ready(t + w.jitter(2, 10), fresh)
        w.emit.pod_deleted(t + w.jitter(11, 15), pod)
        t += w.jitter(16, 30)
    count = w.rng.randint(3, 7)
    times = restart_times(w, t0 + w.jitter(20, 60), count, 400.0)
    restarts = restart_series(w, sick, times, w.rng.choice(CRASH_EXIT_CODES), w.rng.choice((2, 3, 4)))
    end = max(t, times[-1]) + w.jitter(10, 40)
    fresh = w.cluster.new_pod(dep, rs, sick.node)
    w.emit.pod_created(end, fresh)
    w.emit.pod_ready(end + w.jitter(2, 10), fresh)
    w.emit.pod_deleted(end + w.jitter(11, 15), sick)
    end += 20
    w.emit.deployment_status(end, dep, dep.replicas, "NewReplicaSetAvailable")
    w.kill(old)
    w.guard(dep.nodes, old, t0, end)
    w.expect("crash_loop", restarts[0], restarts, "high" if count >= 5 else "medium")
    return end


VARIANTS: dict[str, Builder] = {
    "two_incidents": two_incidents,
    "heavy_noise": heavy_noise,
    "cascade_with_crash": cascade_with_crash,
    "oom_restarts": oom_restarts,
    "node_pods_lost": node_pods_lost,
    "deploy_crash_loops": deploy_crash_loops,
    "old_rs_crash_loop": old_rs_crash_loop,
}

"""Near-misses by time: the links of a real incident, each just outside its window."""

from __future__ import annotations

from tapio_scenariogen.families.common import (
    CRASH_EXIT_CODES,
    Builder,
    oom_chain,
    pod_failure,
    restart_series,
    service_impact,
    spread_out,
)
from tapio_scenariogen.families.deploy import rollout_start
from tapio_scenariogen.families.network import cni_event, retransmits
from tapio_scenariogen.families.node import critical_unit
from tapio_scenariogen.families.perf import latencies, unhealthy_after
from tapio_scenariogen.families.pressure import CONDITIONS
from tapio_scenariogen.world import (
    CASCADE_WINDOW,
    CRASH_WINDOW,
    DEPLOY_WINDOW,
    LATENCY_THRESHOLD_MS,
    LATENCY_WINDOW,
    NETWORK_WINDOW,
    NODE_WINDOW,
    PERF_WINDOW,
    PRESSURE_WINDOW,
    World,
)


def _late(w: World, window: float) -> float:
    """A delay just outside `window`: 5 % to 40 % longer."""
    return window * w.jitter(1.05, 1.4)


def cascade_late(w: World, t0: float) -> float:
    """An OOM; the Service selecting the pod reports no endpoints only after the window."""
    dep = w.workload(min_replicas=1, max_replicas=1, service=True)
    pod = dep.pods[0]
    chain = oom_chain(w, t0, pod, kernel=w.rng.random() < 0.5)
    w.emit.pod_updated(w.at(chain[-1]) + w.jitter(10, 40), pod)
    end = w.at(chain[-1]) + _late(w, CASCADE_WINDOW)
    service_impact(w, end, dep)
    w.guard(dep.nodes, dep.pods, t0, end)
    return end


def cascade_late_failures(w: World, t0: float) -> float:
    """An OOM on a node; pods of two other workloads on the node fail only after the window."""
    node, pods = w.node_with_workloads(3)
    spread_out(w, node)
    chain = oom_chain(w, t0, pods[0], kernel=w.rng.random() < 0.5)
    t = w.at(chain[-1]) + _late(w, CASCADE_WINDOW)
    for pod in pods[1:3]:
        pod_failure(w, t, pod)
        t += w.jitter(5, 40)
    w.guard([node], w.cluster.pods_on(node), t0, t)
    return t


def network_late(w: World, t0: float) -> float:
    """CNI loss on a node; >= 50 retransmits from its pods, but only after 2 minutes."""
    node, _ = w.node_with_workloads(w.rng.choice((1, 2)))
    cni_event(w, t0, node, errors=w.rng.random() < 0.3)
    start = t0 + _late(w, NETWORK_WINDOW)
    found = retransmits(w, start, 40.0, w.cluster.pods_on(node), w.rng.randint(60, 300))
    end = w.at(found[-1])
    w.guard([node], w.cluster.pods_on(node), t0, end)
    return end


def node_late(w: World, t0: float) -> float:
    """A critical unit fails on an empty node; the node goes not ready only after 5 minutes."""
    node = w.empty_node()
    unit, ready = critical_unit(w)
    w.emit.unit_failed(t0, node, unit)
    end = t0 + _late(w, NODE_WINDOW)
    w.emit.node_not_ready(end, node, ready)
    w.guard([node], [], t0, end)
    return end


def crash_slow(w: World, t0: float) -> float:
    """3-4 restarts of one pod so far apart that no 10-minute window holds 3 of them."""
    dep = w.workload(min_replicas=2)
    pod = w.rng.choice(dep.pods)
    times = [t0]
    for _ in range(w.rng.choice((2, 3))):
        times.append(times[-1] + CRASH_WINDOW / 2 + w.jitter(15, 60))
    restart_series(w, pod, times, w.rng.choice(CRASH_EXIT_CODES), 99)
    end = times[-1] + w.jitter(20, 60)
    w.emit.pod_updated(end, pod)
    w.guard([pod.node], [pod], t0, end)
    return end


def pressure_late(w: World, t0: float) -> float:
    """A pressure condition; pods on the node are evicted only after 10 minutes."""
    node, _ = w.node_with_workloads(w.rng.choice((1, 2)))
    spread_out(w, node)
    condition = w.rng.choice(list(CONDITIONS))
    w.emit.node_condition(t0, node, condition, "True")
    t = t0 + _late(w, PRESSURE_WINDOW)
    victims = w.cluster.pods_on(node)[:2]
    for pod in victims:
        w.emit.pod_evicted(t, pod, CONDITIONS[condition])
        t += w.jitter(2, 30)
    w.kill(victims)
    w.guard([node], w.cluster.pods_on(node), t0, t)
    return t


def deploy_late(w: World, t0: float) -> float:
    """A rollout that completes; its new pods turn unhealthy only after 10 minutes."""
    dep = w.workload(min_replicas=2, max_replicas=3)
    _, rs = rollout_start(w, t0, dep)
    t = t0 + w.jitter(1, 5)
    fresh = []
    for old in list(dep.pods):
        pod = w.cluster.new_pod(dep, rs, old.node)
        fresh.append(pod)
        w.emit.pod_created(t, pod)
        t += w.jitter(2, 12)
        w.emit.pod_ready(t, pod)
        w.emit.pod_deleted(t + w.jitter(1, 4), old)
        t += w.jitter(4, 8)
    w.emit.deployment_status(t, dep, dep.replicas, "NewReplicaSetAvailable")
    w.kill(dep.pods)
    t = t0 + _late(w, DEPLOY_WINDOW)
    for pod in fresh[: w.rng.randint(1, len(fresh))]:
        w.emit.pod_unhealthy(t, pod)
        t += w.jitter(5, 40)
    w.guard(dep.nodes, [*dep.pods, *fresh], t0, t)
    w.kill(fresh)
    return t


def perf_spread(w: World, t0: float) -> float:
    """Three slow connects (>= 200 ms) more than a minute apart: never 3 within 2 minutes."""
    dep = w.workload(min_replicas=2, max_replicas=4)
    times = [t0, t0 + LATENCY_WINDOW / 2 + w.jitter(3, 20)]
    times.append(times[-1] + LATENCY_WINDOW / 2 + w.jitter(3, 20))
    for t in times:
        w.emit.latency(t, w.rng.choice(dep.pods), w.jitter(LATENCY_THRESHOLD_MS + 20, 2000))
    sick = unhealthy_after(w, times[-1] + w.jitter(5, 40), dep, False, 60.0)
    end = w.at(sick[-1])
    w.guard(dep.nodes, dep.pods, t0, end)
    return end


def perf_late(w: World, t0: float) -> float:
    """Three or more slow connects in 2 minutes; the pods turn unhealthy only after 5 minutes."""
    dep = w.workload(min_replicas=2, max_replicas=4)
    slow = latencies(w, t0, dep, w.rng.randint(3, 5), 90.0, (LATENCY_THRESHOLD_MS + 20, 2500))
    sick = unhealthy_after(w, w.at(slow[-1]) + _late(w, PERF_WINDOW), dep, False, 30.0)
    end = w.at(sick[-1])
    w.guard(dep.nodes, dep.pods, t0, end)
    return end


VARIANTS: dict[str, Builder] = {
    "cascade_late": cascade_late,
    "cascade_late_failures": cascade_late_failures,
    "network_late": network_late,
    "node_late": node_late,
    "crash_slow": crash_slow,
    "pressure_late": pressure_late,
    "deploy_late": deploy_late,
    "perf_spread": perf_spread,
    "perf_late": perf_late,
}

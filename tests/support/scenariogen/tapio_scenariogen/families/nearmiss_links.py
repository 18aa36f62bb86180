"""Near-misses by topology or threshold: look like incidents but must give no medium/high correlation."""

from __future__ import annotations

from tapio_scenariogen.cluster import Deployment
from tapio_scenariogen.families.common import (
    CRASH_EXIT_CODES,
    Builder,
    oom_chain,
    pod_failure,
    restart_series,
    restart_times,
    service_impact,
)
from tapio_scenariogen.families.deploy import rollout_start
from tapio_scenariogen.families.network import cni_event, retransmits
from tapio_scenariogen.families.perf import latencies, unhealthy_after
from tapio_scenariogen.world import LATENCY_THRESHOLD_MS, NETWORK_WINDOW, RETRANSMIT_THRESHOLD, World


def cross_namespace(w: World, t0: float) -> float:
    """An OOM in one namespace, then pods of two workloads in another namespace (other nodes) fail.

    The second namespace may even reuse the first workload's name: names are no link.
    """
    first = w.workload(min_replicas=2)
    others = [ns for ns in w.cluster.namespaces if ns != first.namespace]
    ns = w.rng.choice(others)
    victim = w.rng.choice(first.pods)
    oom_chain(w, t0, victim, kernel=w.rng.random() < 0.5)
    broken: list[Deployment] = []
    for i in range(2):
        name = first.name if i == 0 and w.rng.random() < 0.5 and _name_free(w, ns, first.name) else None
        dep = w.cluster.fresh_deployment(namespace=ns, app=name, service=True)
        w.cluster.reserve_workload(dep)
        broken.append(dep)
    t = t0 + w.jitter(20, 60)
    for dep in broken:
        t += w.jitter(5, 60)
        pod_failure(w, t, w.rng.choice(dep.pods), ("unhealthy", "restarted"))
    pods = [p for d in [first, *broken] for p in d.pods]
    w.guard({p.node for p in pods}, pods, t0, t)
    return t


def _name_free(w: World, namespace: str, name: str) -> bool:
    return all(not (d.namespace == namespace and d.name == name) for d in w.cluster.deployments)


def _restarts(w: World, t0: float, count: int) -> float:
    dep = w.workload(min_replicas=2)
    pod = w.rng.choice(dep.pods)
    times = restart_times(w, t0, count, 500.0, gap=(20.0, 200.0))
    restart_series(w, pod, times, w.rng.choice(CRASH_EXIT_CODES), 99)
    end = times[-1] + w.jitter(20, 90)
    w.emit.pod_updated(end, pod)
    w.guard([pod.node], [pod], t0, end)
    return end


def single_restart(w: World, t0: float) -> float:
    return _restarts(w, t0, 1)


def two_restarts(w: World, t0: float) -> float:
    return _restarts(w, t0, 2)


def retransmits_below(w: World, t0: float) -> float:
    """CNI loss on a node; its pods retransmit, but fewer than 50 in total within 2 minutes."""
    node, _ = w.node_with_workloads(w.rng.choice((1, 2)))
    cni_event(w, t0, node, errors=w.rng.random() < 0.3)
    found = retransmits(
        w,
        t0 + w.jitter(2, 15),
        NETWORK_WINDOW - 30,
        w.cluster.pods_on(node),
        w.rng.randint(8, RETRANSMIT_THRESHOLD - 6),
    )
    end = w.at(found[-1])
    w.guard([node], w.cluster.pods_on(node), t0, end + NETWORK_WINDOW)
    return end


def network_unlinked(w: World, t0: float) -> float:
    """CNI loss on one node, >= 50 retransmits from pods on another node (no shared workload)."""
    lossy, _ = w.node_with_workloads(1)
    other, _ = w.node_with_workloads(1)
    cni_event(w, t0, lossy, errors=w.rng.random() < 0.3)
    pods = [p for p in w.cluster.pods_on(other) if lossy not in w.cluster.deployment_of(p).nodes]
    if not pods:
        dep = w.cluster.add_deployment(replicas=1, on_nodes=[other])
        w.cluster.reserve_node(other)
        pods = dep.pods
    found = retransmits(w, t0 + w.jitter(2, 15), NETWORK_WINDOW - 30, pods, w.rng.randint(60, 300))
    end = w.at(found[-1])
    w.guard([lossy, other], [], t0, end + NETWORK_WINDOW)
    return end


def single_oom(w: World, t0: float) -> float:
    """One OOM kill (kernel + pod + restart) of one pod; the workload keeps serving."""
    dep = w.workload(min_replicas=2)
    pod = w.rng.choice(dep.pods)
    chain = oom_chain(w, t0, pod, kernel=w.rng.random() < 0.6)
    end = w.at(chain[-1]) + w.jitter(10, 60)
    w.emit.pod_updated(end, pod)
    w.guard([pod.node], [pod], t0, end)
    return end


def perf_low_latency(w: World, t0: float) -> float:
    """Several slow connects below 200 ms, then readiness failures: no performance_degradation."""
    dep = w.workload(min_replicas=2, max_replicas=4)
    slow = latencies(w, t0, dep, w.rng.randint(3, 6), 90.0, (90.0, LATENCY_THRESHOLD_MS - 10))
    sick = unhealthy_after(w, w.at(slow[-1]) + w.jitter(5, 40), dep, False, 90.0)
    end = w.at(sick[-1])
    w.guard(dep.nodes, dep.pods, t0, end)
    return end


def normal_lifecycle(w: World, t0: float) -> float:
    """A successful rollout, a scale-up, a node joining, unit reloads: nothing but normal lifecycle."""
    dep = w.workload(min_replicas=1, max_replicas=3)
    _, rs = rollout_start(w, t0, dep)
    t = t0 + w.jitter(1, 5)
    for old in list(dep.pods):
        pod = w.cluster.new_pod(dep, rs, w.rng.choice(sorted(dep.nodes)))
        w.emit.pod_created(t, pod)
        t += w.jitter(2, 15)
        w.emit.pod_ready(t, pod)
        t += w.jitter(1, 5)
        w.emit.pod_deleted(t, old)
        w.kill([old])
        t += w.jitter(1, 5)
    w.emit.deployment_status(t, dep, dep.replicas, "NewReplicaSetAvailable")
    if dep.service is not None:
        w.emit.endpoints_updated(t + w.jitter(0.1, 2), dep.service, dep.replicas)
    node = w.cluster.add_node()
    w.cluster.reserve_node(node)
    t += w.jitter(10, 60)
    w.emit.node_created(t, node)
    w.emit.node_ready(t + w.jitter(5, 30), node)
    w.emit.unit_state(t + w.jitter(30, 60), node, "kubelet", "active", previous="activating")
    w.guard(dep.nodes | {node}, dep.pods, t0, t + 60)
    return t + 60


def service_only(w: World, t0: float) -> float:
    """A Service loses its endpoints during a scale-to-zero: the only event is the Service impact."""
    dep = w.workload(min_replicas=1, max_replicas=2, service=True)
    w.emit.deployment_scaled(t0, dep, 0, dep.replicas)
    t = t0
    for pod in dep.pods:
        t += w.jitter(1, 8)
        w.emit.pod_deleted(t, pod)
    w.kill(dep.pods)
    t += w.jitter(1, 5)
    service_impact(w, t, dep)
    w.guard(dep.nodes, dep.pods, t0, t)
    return t


VARIANTS: dict[str, Builder] = {
    "cross_namespace": cross_namespace,
    "single_restart": single_restart,
    "two_restarts": two_restarts,
    "retransmits_below": retransmits_below,
    "network_unlinked": network_unlinked,
    "single_oom": single_oom,
    "perf_low_latency": perf_low_latency,
    "normal_lifecycle": normal_lifecycle,
    "service_only": service_only,
}

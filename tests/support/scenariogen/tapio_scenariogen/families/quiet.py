"""potential_issue: one error/critical event that joins nothing (low at most; costs nothing)."""

from __future__ import annotations

from tapio_scenariogen import names
from tapio_scenariogen.families.common import Builder
from tapio_scenariogen.families.network import cni_event
from tapio_scenariogen.families.pressure import CONDITIONS
from tapio_scenariogen.world import World


def unit_failed(w: World, t0: float) -> float:
    """A plain host unit (nginx, cron, ...) fails on a node; nothing on the node follows."""
    node = w.cluster.pick_free_node()
    w.cluster.reserve_node(node)
    unit = w.rng.choice(names.PLAIN_UNITS)
    w.emit.unit_failed(t0, node, unit, critical=False)
    end = t0
    if w.rng.random() < 0.5:
        end = t0 + w.jitter(30, 200)
        w.emit.unit_state(end, node, unit, "active", previous="activating")
    w.guard([node], w.cluster.pods_on(node), t0, end)
    return end


def pod_unhealthy(w: World, t0: float) -> float:
    """One readiness failure of one pod, which is ready again soon after."""
    dep = w.workload(min_replicas=2)
    pod = w.rng.choice(dep.pods)
    w.emit.pod_unhealthy(t0, pod)
    end = t0 + w.jitter(10, 60)
    w.emit.pod_updated(end, pod)
    w.guard([pod.node], [pod], t0, end)
    return end


def cni_loss(w: World, t0: float) -> float:
    """Packet loss on a node's interface with no retransmits from its pods (low on its own)."""
    node, _ = w.node_with_workloads(1)
    cni_event(w, t0, node, errors=w.rng.random() < 0.3)
    end = t0 + w.jitter(20, 60)
    w.emit.cni_stats(end, node, "eth0")
    w.guard([node], w.cluster.pods_on(node), t0, end + 120)
    return end


def failed_scheduling(w: World, t0: float) -> float:
    """A scale-up whose new pod cannot be scheduled (Pending, FailedScheduling)."""
    dep = w.workload(min_replicas=1)
    w.emit.deployment_scaled(t0, dep, dep.replicas + 1, dep.replicas)
    pod = w.cluster.new_pod(dep, dep.rs, "", started=False)
    w.emit.pod_created(t0 + w.jitter(0.1, 1), pod)
    w.emit.pod_failed_scheduling(t0 + w.jitter(1.5, 5), pod)
    w.guard(dep.nodes, dep.pods, t0, t0 + 5)
    return t0 + 5


def node_pressure(w: World, t0: float) -> float:
    """A pressure condition that clears again without any eviction."""
    node = w.cluster.pick_free_node()
    w.cluster.reserve_node(node)
    condition = w.rng.choice(list(CONDITIONS))
    w.emit.node_condition(t0, node, condition, "True")
    end = t0 + w.jitter(60, 400)
    w.emit.node_condition(end, node, condition, "False")
    w.guard([node], w.cluster.pods_on(node), t0, end)
    return end


VARIANTS: dict[str, Builder] = {
    "unit_failed": unit_failed,
    "pod_unhealthy": pod_unhealthy,
    "cni_loss": cni_loss,
    "failed_scheduling": failed_scheduling,
    "node_pressure": node_pressure,
}

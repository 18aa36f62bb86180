"""node_failure: a node-critical unit fails -> the node goes not ready -> its pods are lost."""

from __future__ import annotations

from tapio_common.model import Event
from tapio_scenariogen.families.cascade import node_down
from tapio_scenariogen.families.common import Builder, replacement, spread_out
from tapio_scenariogen.world import World


def critical_unit(w: World) -> tuple[str, str]:
    """A node-critical unit and the Ready condition status its failure leads to."""
    runtime = {"containerd": "containerd", "crio": "crio", "docker": "docker"}[w.cluster.runtime]
    if w.rng.random() < 0.5:
        return "kubelet", "Unknown"
    return runtime, w.rng.choice(("False", "Unknown"))


def node_lost(
    w: World, t0: float, evict: bool, replace: bool, workloads: int = 1
) -> tuple[list[Event], float]:
    """Unit failed, node not ready, pods lost (and maybe evicted, replaced elsewhere)."""
    node, _ = w.node_with_workloads(w.rng.randint(workloads, 3))
    spread_out(w, node)
    unit, ready = critical_unit(w)
    root = w.emit.unit_failed(t0, node, unit)
    nr = w.emit.node_not_ready(t0 + w.jitter(20, 200), node, ready)
    lost = node_down(w, w.at(nr), node, span=120.0)
    events = [root, nr, *lost]
    end = w.at(lost[-1])
    if evict:
        t = end + w.jitter(10, 40)
        for pod in w.cluster.pods_on(node):
            t += w.jitter(1, 10)
            events.append(w.emit.pod_evicted(t, pod, "node lost"))
        end = t
    pods = w.cluster.pods_on(node)
    if replace:
        t = end
        for pod in pods:
            t = replacement(w, t + w.jitter(1, 8), pod, node)
        end = max(end, t)
    w.kill(pods)
    w.guard([node], pods, t0, end)
    return events, end


def with_pods(w: World, t0: float) -> float:
    """kubelet/runtime fails -> node not ready -> its pods not ready (high)."""
    events, end = node_lost(w, t0, evict=False, replace=False)
    w.expect("node_failure", events[0], events, "high")
    return end


def evictions(w: World, t0: float) -> float:
    """The pods are marked not ready, then evicted and recreated on other nodes."""
    events, end = node_lost(w, t0, evict=True, replace=w.rng.random() < 0.7)
    w.expect("node_failure", events[0], events, "high")
    return end


def no_pods(w: World, t0: float) -> float:
    """A node without pods (fresh, or drained) loses its kubelet/runtime: no pod effects."""
    node = w.empty_node()
    unit, ready = critical_unit(w)
    root = w.emit.unit_failed(t0, node, unit)
    nr = w.emit.node_not_ready(t0 + w.jitter(20, 200), node, ready)
    end = w.at(nr)
    if w.rng.random() < 0.5:
        back = end + w.jitter(60, 200)
        w.emit.unit_state(back, node, unit, "active", previous="activating")
        w.emit.node_ready(back + w.jitter(5, 30), node)
        end = back + 30
    w.guard([node], [], t0, end)
    w.expect("node_failure", root, [root, nr], "medium")
    return end


VARIANTS: dict[str, Builder] = {"with_pods": with_pods, "evictions": evictions, "no_pods": no_pods}

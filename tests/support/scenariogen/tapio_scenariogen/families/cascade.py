"""cascading_failure: a cause (OOM, failed unit, node not ready) -> linked pod failures -> Service impact."""

from __future__ import annotations

from tapio_common.model import Event
from tapio_scenariogen import names
from tapio_scenariogen.families.common import (
    Builder,
    oom_chain,
    pod_failure,
    restart_times,
    service_impact,
    sole_workload_on,
    spread_out,
)
from tapio_scenariogen.world import World


def _oom_high(w: World, t0: float, kernel: bool) -> float:
    """OOM of one pod -> the workload's other pods fail -> its Service has no ready endpoints."""
    dep = w.workload(min_replicas=1, max_replicas=3, service=True)
    victim = w.rng.choice(dep.pods)
    chain = oom_chain(w, t0, victim, kernel)
    failures: list[Event] = []
    t = t0 + w.jitter(15, 40)
    for pod in dep.pods:
        if pod is not victim:
            t += w.jitter(5, 60)
            failures.append(pod_failure(w, t, pod, ("unhealthy", "not_ready")))
    impact_t = max(t, t0 + 20) + w.jitter(20, 120)
    impact = service_impact(w, impact_t, dep)
    if w.rng.random() < 0.5:
        w.emit.pod_updated(impact_t + w.jitter(40, 120), victim)
    w.guard(dep.nodes, dep.pods, t0, impact_t)
    w.expect("cascading_failure", chain[0], [*chain, *failures, impact], "high")
    return impact_t


def _oom_medium(w: World, t0: float, kernel: bool) -> float:
    """OOM of a pod on a node -> pods of two other workloads on that node fail; no Service impact."""
    node, pods = w.node_with_workloads(3)
    spread_out(w, node)
    victim, others = pods[0], pods[1:3]
    chain = oom_chain(w, t0, victim, kernel)
    t = t0 + w.jitter(10, 40)
    failures: list[Event] = []
    for pod in others:
        t += w.jitter(5, 90)
        failures.append(pod_failure(w, t, pod))
    w.guard([node], w.cluster.pods_on(node), t0, t)
    w.expect("cascading_failure", chain[0], [*chain, *failures], "medium")
    return t


def kernel_oom(w: World, t0: float) -> float:
    """Kernel OOM kill of a pod -> its workload fails -> its Service has no ready endpoints (high)."""
    return _oom_high(w, t0, kernel=True)


def kernel_oom_no_service(w: World, t0: float) -> float:
    """Kernel OOM kill on a node -> pods of two other workloads there fail; no Service impact (medium)."""
    return _oom_medium(w, t0, kernel=True)


def pod_oom(w: World, t0: float) -> float:
    """Pod OOMKilled (no kernel event) -> its workload fails -> its Service dies (high)."""
    return _oom_high(w, t0, kernel=False)


def pod_oom_no_service(w: World, t0: float) -> float:
    """Pod OOMKilled on a node -> pods of two other workloads there fail; no Service impact (medium)."""
    return _oom_medium(w, t0, kernel=False)


def _runtime_unit(w: World) -> str:
    return {"containerd": "containerd", "crio": "crio", "docker": "docker"}[w.cluster.runtime]


def node_down(
    w: World, t: float, node: str, kinds: tuple[str, ...] = ("not_ready",), span: float = 90.0
) -> list[Event]:
    """Every pod on a lost node goes not ready (or is evicted) within `span` seconds after `t`."""
    pods = w.cluster.pods_on(node)
    w.rng.shuffle(pods)
    times = restart_times(w, t + w.jitter(3, 20), len(pods), span, gap=(2.0, 25.0))
    out: list[Event] = []
    for pod, when in zip(pods, times, strict=True):
        if w.rng.choice(kinds) == "evicted":
            out.append(w.emit.pod_evicted(when, pod, "node lost"))
        else:
            out.append(w.emit.pod_not_ready(when, pod))
    return out


def _pods_break(w: World, t0: float, node: str, span: float) -> list[Event]:
    """Every pod on the node fails (readiness lost or a restart) within `span` seconds of `t0`."""
    pods = w.cluster.pods_on(node)
    w.rng.shuffle(pods)
    times = restart_times(w, t0 + w.jitter(10, 40), len(pods), span - 40, gap=(3.0, 40.0))
    return [
        pod_failure(w, when, pod, ("unhealthy", "restarted")) for pod, when in zip(pods, times, strict=True)
    ]


def unit_failed(w: World, t0: float) -> float:
    """A unit on a node fails -> (node not ready ->) its pods fail -> a Service selecting them dies."""
    node = w.cluster.pick_free_node()
    spread_out(w, node)
    dep = sole_workload_on(w, node, w.rng.choice((1, 1, 2)))
    events: list[Event] = []
    if w.rng.random() < 0.5:
        root = w.emit.unit_failed(t0, node, w.rng.choice(("kubelet", _runtime_unit(w))))
        nr = w.emit.node_not_ready(t0 + w.jitter(20, 100), node, w.rng.choice(("Unknown", "False")))
        events = [nr, *node_down(w, w.at(nr), node)]
    else:
        root = w.emit.unit_failed(t0, node, w.rng.choice(names.POD_BREAKING_UNITS), critical=False)
        events = _pods_break(w, t0, node, 120.0)
    last = w.at(events[-1])
    impact_t = last + w.jitter(10, 60)
    impact = service_impact(w, impact_t, dep)
    w.guard([node], w.cluster.pods_on(node), t0, impact_t)
    w.expect("cascading_failure", root, [*events, impact], "high")
    return impact_t


def unit_failed_no_service(w: World, t0: float) -> float:
    """A non-critical unit breaks the pods of >= 2 workloads on its node; no Service loses them all."""
    node, _ = w.node_with_workloads(w.rng.choice((2, 3)))
    spread_out(w, node)
    root = w.emit.unit_failed(t0, node, w.rng.choice(names.POD_BREAKING_UNITS), critical=False)
    failures = _pods_break(w, t0, node, 200.0)
    t = w.at(failures[-1])
    w.guard([node], w.cluster.pods_on(node), t0, t)
    w.expect("cascading_failure", root, failures, "medium")
    return t


def node_not_ready(w: World, t0: float) -> float:
    """A node goes not ready (no unit event) -> its pods fail -> a Service selecting only them dies."""
    node = w.cluster.pick_free_node()
    spread_out(w, node)
    dep = sole_workload_on(w, node, w.rng.choice((1, 2)))
    root = w.emit.node_not_ready(t0, node, w.rng.choice(("Unknown", "False")))
    lost = node_down(w, t0 + w.jitter(5, 30), node, ("not_ready", "not_ready", "evicted"))
    impact_t = w.at(lost[-1]) + w.jitter(10, 80)
    impact = service_impact(w, impact_t, dep)
    w.guard([node], w.cluster.pods_on(node), t0, impact_t)
    w.expect("cascading_failure", root, [*lost, impact], "high")
    return impact_t


def node_not_ready_no_service(w: World, t0: float) -> float:
    """A node goes not ready (no unit event) -> pods of >= 2 workloads lost; every Service keeps endpoints."""
    node, _ = w.node_with_workloads(w.rng.choice((2, 3)))
    spread_out(w, node)
    root = w.emit.node_not_ready(t0, node, w.rng.choice(("Unknown", "False")))
    lost = node_down(w, t0 + w.jitter(5, 30), node)
    end = w.at(lost[-1])
    w.guard([node], w.cluster.pods_on(node), t0, end)
    w.expect("cascading_failure", root, lost, "medium")
    return end


VARIANTS: dict[str, Builder] = {
    "kernel_oom": kernel_oom,
    "kernel_oom_no_service": kernel_oom_no_service,
    "pod_oom": pod_oom,
    "pod_oom_no_service": pod_oom_no_service,
    "unit_failed": unit_failed,
    "unit_failed_no_service": unit_failed_no_service,
    "node_not_ready": node_not_ready,
    "node_not_ready_no_service": node_not_ready_no_service,
}

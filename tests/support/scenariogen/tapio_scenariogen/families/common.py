"""Building blocks shared by the incident families (OOM chains, restart series, Service impact)."""

from __future__ import annotations

from collections.abc import Callable

from tapio_common.model import Event, Severity
from tapio_scenariogen.cluster import Deployment, Pod
from tapio_scenariogen.world import World

# A family variant: adds its incident(s) starting at `t0` seconds and returns when the last one ends.
Builder = Callable[[World, float], float]

CRASH_EXIT_CODES = (1, 1, 2, 3, 127, 139, 255)


def oom_chain(w: World, t: float, pod: Pod, kernel: bool, restart_count: int = 1) -> list[Event]:
    """[kernel oom_kill], pod oom_killed, restarted (OOMKilled): one kill seen by both collectors."""
    out: list[Event] = []
    if kernel:
        out.append(w.emit.oom_kill(t, pod))
        t += w.jitter(0.3, 3.0)
    out.append(w.emit.pod_oom_killed(t, pod, restart_count - 1))
    out.append(w.emit.pod_restarted_after_oom(t + w.jitter(4.0, 20.0), pod, restart_count))
    return out


def service_impact(w: World, t: float, dep: Deployment) -> Event:
    """The Service of `dep` loses every endpoint: `services unhealthy` or `endpoints` with 0 ready."""
    if dep.service is None:
        raise ValueError(f"deployment {dep.key} has no Service")
    if w.rng.random() < 0.7:
        return w.emit.service_unhealthy(t, dep.service)
    return w.emit.endpoints_updated(t, dep.service, 0)


def pod_failure(
    w: World, t: float, pod: Pod, kinds: tuple[str, ...] = ("unhealthy", "restarted", "not_ready")
) -> Event:
    """One failure of a pod caused by something else (readiness lost, a restart, not ready)."""
    kind = w.rng.choice(kinds)
    if kind == "unhealthy":
        return w.emit.pod_unhealthy(t, pod)
    if kind == "restarted":
        return w.emit.pod_restarted(t, pod, 1, w.rng.choice(CRASH_EXIT_CODES), crash_loop=False)
    return w.emit.pod_not_ready(t, pod, "pod not ready: containers with unready status")


def restart_times(
    w: World, t0: float, count: int, span_max: float, gap: tuple[float, float] = (15.0, 80.0)
) -> list[float]:
    """`count` restart times from `t0` with back-off-like gaps, squeezed into `span_max` seconds."""
    times = [t0]
    for _ in range(count - 1):
        times.append(times[-1] + w.jitter(*gap))
    span = times[-1] - t0
    if span > span_max:
        times = [t0 + (x - t0) * span_max / span for x in times]
    return times


def restart_series(
    w: World,
    pod: Pod,
    times: list[float],
    exit_code: int,
    crash_from: int,
    sev: Severity = Severity.WARNING,
    verbose: bool = True,
) -> list[Event]:
    """Restarts 1..n of a pod; from restart number `crash_from` on they are `crash_loop` events."""
    return [
        w.emit.pod_restarted(
            t, pod, i + 1, exit_code, crash_loop=i + 1 >= crash_from, sev=sev, verbose=verbose
        )
        for i, t in enumerate(times)
    ]


def spread_out(w: World, node: str) -> None:
    """Gives every workload living only on `node` one more replica elsewhere.

    So that losing the node does not empty a Service (which would make the incident a cascade).
    """
    for dep in w.cluster.workloads_on(node):
        if dep.nodes == {node}:
            others = [n for n in w.cluster.nodes if n != node and w.cluster.node_is_free(n)]
            dep.pods.append(
                w.cluster.new_pod(dep, dep.rs, w.rng.choice(others) if others else w.cluster.add_node())
            )
            dep.replicas += 1


def sole_workload_on(w: World, node: str, replicas: int) -> Deployment:
    """A fresh Deployment with a Service whose pods all run on `node` (its Service dies with them)."""
    dep = w.cluster.add_deployment(replicas=replicas, on_nodes=[node] * replicas, service=True)
    w.cluster.reserve_node(node)
    return dep


def replacement(w: World, t: float, dead: Pod, avoid: str) -> float:
    """The ReplicaSet replaces a lost pod on another node: created, then ready. Returns the ready time."""
    dep = w.cluster.deployment_of(dead)
    nodes = [n for n in w.cluster.nodes if n != avoid and w.cluster.node_is_free(n)] or [
        n for n in w.cluster.nodes if n != avoid
    ]
    if not nodes:
        return t
    pod = w.cluster.new_pod(dep, dead.rs, w.rng.choice(nodes))
    w.emit.pod_created(t, pod)
    ready = t + w.jitter(2.0, 9.0)
    w.emit.pod_ready(ready, pod)
    w.kill([pod])  # not part of the background afterwards: keeps noise simple
    return ready

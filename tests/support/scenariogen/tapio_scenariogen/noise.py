"""Background noise of a healthy cluster: unit heartbeats, execs, small retransmits, CNI samples, ...

Noise never touches the nodes and pods an incident guards, and its rare failures (a single restart)
only hit workloads and nodes no incident uses, so it can never complete a correlation pattern.
"""

from __future__ import annotations

from tapio_scenariogen import names
from tapio_scenariogen.cluster import Deployment, Pod
from tapio_scenariogen.world import World

_KINDS = ("unit", "exec", "retransmit", "cni", "pod_updated", "endpoints", "unit_cycle")
_WEIGHTS = (25, 25, 14, 15, 15, 3, 3)


def add_noise(world: World, start: float, end: float, scale: float) -> None:
    """Fills [start, end] with noise; `scale` 1.0 is about one event every 6 seconds."""
    rng = world.rng
    host_units = [*rng.sample(names.PLAIN_UNITS, 3), "kubelet", _runtime_unit(world)]
    ifaces = {n: rng.choice(names.INTERFACES) for n in world.cluster.nodes}
    t = start
    mean_gap = 6.0 / max(scale, 0.05)
    while True:
        t += rng.expovariate(1.0 / mean_gap)
        if t >= end:
            break
        kind = rng.choices(_KINDS, weights=_WEIGHTS)[0]
        _one(world, t, kind, host_units, ifaces)
    if rng.random() < 0.45:
        _single_restart(world, rng.uniform(start, end - 60))
    if rng.random() < 0.3:
        _scale_up(world, rng.uniform(start, end - 30))


def _runtime_unit(world: World) -> str:
    return {"containerd": "containerd", "crio": "crio", "docker": "docker"}[world.cluster.runtime]


def _live_pods(world: World, t: float) -> list[Pod]:
    return [p for p in world.cluster.pods() if not world.pod_guarded(p, t)]


def _one(world: World, t: float, kind: str, units: list[str], ifaces: dict[str, str]) -> None:
    rng = world.rng
    emit = world.emit
    nodes = [n for n in world.cluster.nodes if not world.node_guarded(n, t)]
    pods = _live_pods(world, t)
    if kind in ("unit", "unit_cycle", "cni") and not nodes:
        return
    if kind in ("exec", "retransmit", "pod_updated") and not pods:
        return
    if kind == "unit":
        emit.unit_state(t, rng.choice(nodes), rng.choice(units), "active")
    elif kind == "unit_cycle":
        node, unit = rng.choice(nodes), rng.choice(units[:3])
        emit.unit_state(t, node, unit, rng.choice(("reloading", "activating")), previous="active")
        emit.unit_state(t + rng.uniform(0.2, 3.0), node, unit, "active", previous="activating")
    elif kind == "cni":
        node = rng.choice(nodes)
        emit.cni_stats(t, node, ifaces.get(node, "eth0"))
    elif kind == "exec":
        emit.exec_(t, rng.choice(pods))
    elif kind == "retransmit":
        emit.retransmit_small(t, rng.choice(pods), rng.randint(1, 8))
    elif kind == "pod_updated":
        emit.pod_updated(t, rng.choice(pods))
    elif kind == "endpoints":
        deps = [d for d in world.cluster.deployments if d.service is not None and _untouched(world, d, t)]
        if deps:
            dep = rng.choice(deps)
            assert dep.service is not None
            emit.endpoints_updated(t, dep.service, len(dep.pods))


def _untouched(world: World, dep: Deployment, t: float) -> bool:
    return not any(world.pod_guarded(p, t) for p in dep.pods)


def _quiet_deployments(world: World) -> list[Deployment]:
    """Workloads no incident uses whose pods are on nodes no incident uses."""
    return [
        d for d in world.cluster.free_deployments() if all(world.cluster.node_is_free(n) for n in d.nodes)
    ]


def _services_down(world: World, t: float) -> set[str]:
    """Namespaces where a Service lost its endpoints shortly before (or just after) `t`.

    A restart there would make those pods callers of that Service (service_dependency_failure).
    """
    out: set[str] = set()
    for when, _, ev in world.emit.records:
        down = (ev.type == "services" and ev.action == "unhealthy") or (
            ev.type == "endpoints" and ev.k8s is not None and ev.k8s.ready_endpoints == 0
        )
        if down and when - 30 <= t <= when + 360:
            out.add(ev.context.namespace)
    return out


def _single_restart(world: World, t: float) -> None:
    """One restart of a healthy pod (exit code != 0) that recovers: joins nothing."""
    busy = _services_down(world, t)
    deps = [d for d in _quiet_deployments(world) if d.namespace not in busy]
    if not deps:
        return
    dep = world.rng.choice(deps)
    pod = world.rng.choice(dep.pods)
    world.emit.pod_restarted(t, pod, 1, world.rng.choice((1, 1, 2, 143)), crash_loop=False)
    world.emit.pod_updated(t + world.rng.uniform(8, 40), pod)
    world.cluster.reserve_workload(dep)


def _scale_up(world: World, t: float) -> None:
    """A quiet Deployment scaled up by one: scaled, pod created, pod ready."""
    deps = _quiet_deployments(world)
    if not deps:
        return
    dep = world.rng.choice(deps)
    node = world.rng.choice(
        [n for n in world.cluster.nodes if world.cluster.node_is_free(n)] or list(dep.nodes)
    )
    world.emit.deployment_scaled(t, dep, dep.replicas + 1, dep.replicas)
    pod = world.cluster.new_pod(dep, dep.rs, node)
    world.emit.pod_created(t + world.rng.uniform(0.1, 1.0), pod)
    world.emit.pod_ready(t + world.rng.uniform(1.5, 6.0), pod)
    dep.pods.append(pod)
    dep.replicas += 1
    world.cluster.reserve_workload(dep)

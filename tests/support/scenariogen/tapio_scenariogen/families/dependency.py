"""service_dependency_failure: a Service goes down -> within 5 min pods of OTHER workloads calling it fail.

The callers are linked to the Service by kernel connection evidence (TCP resets or slow connects
from their pods toward its cluster IP or one of its pods' IPs: high), or only by timing inside the
Service's namespace (medium). When the Service's loss is itself part of a cascade (an OOM of its
pods), the callers belong to that cascade. Near-misses: callers failing after the window, and
failures elsewhere with no link to the Service.
"""

from __future__ import annotations

from tapio_common.model import Event
from tapio_scenariogen.cluster import Deployment, Pod
from tapio_scenariogen.families.common import Builder, oom_chain, pod_failure, service_impact
from tapio_scenariogen.world import CASCADE_WINDOW, World

CALLER_FAILURES = ("unhealthy", "restarted")


def _callee(w: World, t0: float, scale_to_zero: bool) -> tuple[Deployment, Event]:
    """The Service that goes down (sometimes because its Deployment was scaled to zero)."""
    dep = w.workload(min_replicas=1, max_replicas=3, service=True)
    if scale_to_zero:
        w.emit.deployment_scaled(t0 - w.jitter(8, 20), dep, 0, len(dep.pods))
        for pod in dep.pods:
            w.emit.pod_deleted(t0 - w.jitter(1, 6), pod)
        w.kill(dep.pods)
    return dep, service_impact(w, t0, dep)


def _caller_workload(w: World, callee: Deployment, same_namespace: bool) -> Deployment:
    others = [ns for ns in w.cluster.namespaces if ns != callee.namespace]
    ns = callee.namespace if same_namespace or not others else w.rng.choice(others)
    dep = w.cluster.fresh_deployment(namespace=ns, service=w.rng.random() < 0.5)
    w.cluster.reserve_workload(dep)
    return dep


def _evidence(w: World, t: float, caller: Pod, callee: Deployment) -> Event:
    """One kernel finding that `caller` connects to the callee (its cluster IP or a pod IP)."""
    assert callee.service is not None
    live = [p.ip for p in callee.pods if p.uid not in w.dead_pods]  # scaled to zero: the Service IP only
    target = w.rng.choice([callee.service.cluster_ip, *live])
    port = 80 if target == callee.service.cluster_ip else 8080
    return w.emit.connection_trouble(t, caller, target, port, w.rng.choice(("reset", "reset", "slow")))


def callers_fail(
    w: World,
    t_down: float,
    callee: Deployment,
    count: int,
    same_namespace: bool,
    evidence: bool,
    delay: tuple[float, float],
) -> tuple[list[Event], list[Pod], float]:
    """`count` caller workloads whose pods fail `delay` seconds after the Service went down."""
    failures: list[Event] = []
    pods: list[Pod] = []
    end = t_down
    for _ in range(count):
        dep = _caller_workload(w, callee, same_namespace)
        pods += dep.pods
        first = t_down + w.jitter(*delay)
        if evidence:  # at least one finding before the first failure, maybe more around it
            _evidence(w, max(t_down - 60, first - w.jitter(5, 90)), w.rng.choice(dep.pods), callee)
            for _ in range(w.rng.randint(0, 2)):
                _evidence(w, first + w.jitter(-30, 30), w.rng.choice(dep.pods), callee)
        sick = w.rng.sample(dep.pods, w.rng.randint(1, min(2, len(dep.pods))))
        for i, pod in enumerate(sick):
            t = first + i * w.jitter(3, 25)
            failures.append(pod_failure(w, t, pod, CALLER_FAILURES))
            end = max(end, t)
    return failures, pods, end


def _dependency(w: World, t0: float, evidence: bool) -> float:
    callee, impact = _callee(w, t0, scale_to_zero=w.rng.random() < 0.4)
    same_ns = not evidence or w.rng.random() < 0.4
    failures, pods, end = callers_fail(
        w, t0, callee, w.rng.choice((1, 1, 2)), same_ns, evidence, (5.0, CASCADE_WINDOW - 80)
    )
    w.guard({p.node for p in [*callee.pods, *pods]}, [*callee.pods, *pods], t0 - 60, end)
    w.expect("service_dependency_failure", impact, [impact, *failures], "high" if evidence else "medium")
    return end


def connected(w: World, t0: float) -> float:
    """A Service goes down; pods of workloads that connect to it (resets, slow connects) fail (high)."""
    return _dependency(w, t0, evidence=True)


def namespace_timing(w: World, t0: float) -> float:
    """A Service goes down; pods of other workloads in its namespace fail soon after (timing only: medium)."""
    return _dependency(w, t0, evidence=False)


def in_cascade(w: World, t0: float) -> float:
    """An OOM takes a workload's Service down; its callers then fail: they join the cascade (high)."""
    callee = w.workload(min_replicas=1, max_replicas=2, service=True)
    victim = w.rng.choice(callee.pods)
    chain = oom_chain(w, t0, victim, kernel=w.rng.random() < 0.6)
    failures: list[Event] = []
    t = t0 + w.jitter(10, 30)
    for pod in callee.pods:
        if pod is not victim:
            t += w.jitter(5, 40)
            failures.append(pod_failure(w, t, pod, ("unhealthy", "not_ready")))
    impact_t = t + w.jitter(10, 60)
    impact = service_impact(w, impact_t, callee)
    budget = t0 + CASCADE_WINDOW - 20 - impact_t  # the whole chain stays within 5 min of the OOM
    callers, pods, end = callers_fail(
        w, impact_t, callee, 1, w.rng.random() < 0.5, True, (3.0, max(budget, 6.0))
    )
    w.guard({p.node for p in [*callee.pods, *pods]}, [*callee.pods, *pods], t0, end)
    w.expect("cascading_failure", chain[0], [*chain, *failures, impact, *callers], "high")
    return end


def callers_too_late(w: World, t0: float) -> float:
    """A Service goes down; its callers fail only after the 5 minute window (no dependency failure)."""
    callee, _ = _callee(w, t0, scale_to_zero=True)
    delay = (CASCADE_WINDOW * 1.1, CASCADE_WINDOW * 1.4)
    _, pods, end = callers_fail(w, t0, callee, 1, w.rng.random() < 0.5, True, delay)
    w.guard({p.node for p in [*callee.pods, *pods]}, [*callee.pods, *pods], t0 - 60, end)
    return end


def no_link(w: World, t0: float) -> float:
    """A Service goes down; pods in another namespace that never connect to it fail (no link)."""
    callee, _ = _callee(w, t0, scale_to_zero=True)
    _, pods, end = callers_fail(w, t0, callee, 1, False, False, (5.0, CASCADE_WINDOW - 80))
    w.guard({p.node for p in [*callee.pods, *pods]}, [*callee.pods, *pods], t0 - 60, end)
    return end


VARIANTS: dict[str, Builder] = {
    "connected": connected,
    "namespace_timing": namespace_timing,
    "in_cascade": in_cascade,
}
NEAR_MISSES: dict[str, Builder] = {"dependency_too_late": callers_too_late, "dependency_no_link": no_link}

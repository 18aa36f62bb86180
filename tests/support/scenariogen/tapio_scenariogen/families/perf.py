"""performance_degradation: >= 3 slow connects (>= 200 ms) in 2 min from a workload -> its pods unhealthy."""

from __future__ import annotations

from tapio_common.model import Event
from tapio_scenariogen.cluster import Deployment
from tapio_scenariogen.families.common import Builder, service_impact
from tapio_scenariogen.world import LATENCY_THRESHOLD_MS, LATENCY_WINDOW, World


def latencies(
    w: World, t0: float, dep: Deployment, count: int, span: float, ms: tuple[float, float]
) -> list[Event]:
    """`count` slow-connect findings from the workload's pods, spread over `span` seconds from `t0`."""
    times = [t0, *sorted(t0 + w.jitter(1, span) for _ in range(count - 1))]
    return [w.emit.latency(t, w.rng.choice(dep.pods), w.jitter(*ms)) for t in times]


def unhealthy_after(w: World, start: float, dep: Deployment, all_pods: bool, span: float) -> list[Event]:
    """Readiness failures of the workload's pods (all of them, or all but one) within `span` s."""
    pods = list(dep.pods)
    w.rng.shuffle(pods)
    if not all_pods:
        pods = pods[: w.rng.randint(1, len(pods) - 1)]
    times = sorted(start + w.jitter(0, span) for _ in pods)
    return [w.emit.pod_unhealthy(t, p) for p, t in zip(pods, times, strict=True)]


def _degradation(w: World, t0: float, with_service: bool) -> float:
    dep = w.workload(min_replicas=2, max_replicas=4, service=True if with_service else None)
    slow = latencies(w, t0, dep, w.rng.randint(3, 6), LATENCY_WINDOW - 30, (LATENCY_THRESHOLD_MS + 15, 3000))
    sick = unhealthy_after(w, w.at(slow[-1]) + w.jitter(5, 40), dep, with_service, 90.0)
    events = [*slow, *sick]
    end = w.at(sick[-1])
    if with_service:
        end += w.jitter(5, 40)
        events.append(service_impact(w, end, dep))
    w.guard(dep.nodes, dep.pods, t0, end)
    w.expect("performance_degradation", slow[0], events, "high" if with_service else "medium")
    return end


def unhealthy(w: World, t0: float) -> float:
    """>= 3 slow connects from a workload in 2 minutes -> some of its pods unhealthy (medium)."""
    return _degradation(w, t0, with_service=False)


def service(w: World, t0: float) -> float:
    """>= 3 slow connects from a workload -> all its pods unhealthy -> its Service dies (high)."""
    return _degradation(w, t0, with_service=True)


VARIANTS: dict[str, Builder] = {"unhealthy": unhealthy, "service": service}

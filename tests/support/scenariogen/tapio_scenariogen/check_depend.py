"""The checker's reading of service_dependency_failure (CORRELATION.md), from a scenario's events alone.

A caller of a Service that went down (a `services` `unhealthy`, or `endpoints` with 0 ready) is a
pod of a workload the Service does not select that turns `unhealthy` or restarts (exit code != 0)
within 5 min after it. It is linked by evidence when a pod of its workload had a TCP reset, a
failed or a slow connect toward the Service's cluster IP or one of its pods' IPs (from 5 min
before the loss to 5 min after), else by timing alone when it runs in the Service's namespace.
"""

from __future__ import annotations

from tapio_common.model import Event
from tapio_scenariogen.check_index import Index, is_service_impact

WINDOW = 300.0
CALLER_ACTIONS = frozenset({"unhealthy", "restarted", "crash_loop"})


def _callee_ips(idx: Index, impact: Event) -> set[str]:
    ns, name = impact.context.namespace, impact.context.service
    selector = idx.services.get((ns, name), {})
    ips = {ip for ip, (pns, pod) in idx.pod_ips.items() if pns == ns and _selects(idx, selector, ns, pod)}
    if (ns, name) in idx.cluster_ips:
        ips.add(idx.cluster_ips[(ns, name)])
    return ips


def _selects(idx: Index, selector: dict[str, str] | object, ns: str, pod: str) -> bool:
    info = idx.pods.get((ns, pod))
    if info is None or not isinstance(selector, dict) or not selector:
        return False
    return all(info.labels.get(k) == v for k, v in selector.items())


def link(idx: Index, impact: Event, failure: Event) -> str:
    """How `failure` is a caller of the Service of `impact`: "evidence", "namespace" or "" (none)."""
    k = failure.k8s
    if failure.type != "pods" or failure.action not in CALLER_ACTIONS:
        return ""
    if failure.action == "restarted" and (
        k is None or k.exit_code == 0 or k.termination_reason == "OOMKilled"
    ):
        return ""
    if not 0 <= idx.t(failure) - idx.t(impact) <= WINDOW:
        return ""
    ns = impact.context.namespace
    selector = idx.services.get((ns, impact.context.service), {})
    if failure.context.namespace == ns and _selects(idx, dict(selector), ns, failure.context.pod):
        return ""  # one of the Service's own pods
    workload = idx.workload(failure)
    ips = _callee_ips(idx, impact)
    t0 = idx.t(impact)
    for e in idx.connections:
        kernel = e.kernel
        if (
            idx.workload(e) == workload
            and kernel is not None
            and kernel.daddr in ips
            and -WINDOW <= idx.t(e) - t0 <= WINDOW
        ):
            return "evidence"
    return "namespace" if failure.context.namespace == ns else ""


def dependency_shape(idx: Index, root: Event, rest: list[Event], level: str) -> list[str]:
    """Problems of an expected service_dependency_failure rooted at `root`."""
    if not is_service_impact(root):
        return ["root is no Service impact"]
    callers = [e for e in rest if e.type == "pods"]
    links = [link(idx, root, e) for e in callers]
    if not callers or "" in links:
        return ["callers missing, or not linked to the Service by evidence or namespace within 5 min"]
    want = "high" if "evidence" in links else "medium"
    return [] if want == level else [f"expected says {level}, pattern says {want}"]


def stray_dependencies(idx: Index, evs: list[Event]) -> list[str]:
    """Dependency patterns among events no expectation claims."""
    out: list[str] = []
    for impact in (e for e in evs if is_service_impact(e)):
        if any(link(idx, impact, e) for e in evs):
            out.append(
                f"stray pattern: callers of Service {impact.context.namespace}/{impact.context.service}"
            )
    return out


def is_evidence(idx: Index, e: Event, impacts: list[Event]) -> bool:
    """Whether `e` is connection evidence toward the Service of one of `impacts` (not a failure)."""
    k = e.kernel
    return bool(k is not None and k.daddr) and any(k.daddr in _callee_ips(idx, i) for i in impacts if k)

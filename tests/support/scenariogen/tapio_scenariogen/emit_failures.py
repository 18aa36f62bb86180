"""Builds and records the Kubernetes failure events (restarts, OOM, evictions, lost nodes, Services)."""

from __future__ import annotations

import attrs

from tapio_common.model import Context, Event, K8sEvent, Severity
from tapio_scenariogen.cluster import Pod, Service
from tapio_scenariogen.emit_k8s import CLUSTER_NS, K8sEmitter

_PRESSURE_REASONS = {
    "MemoryPressure": ("NodeHasInsufficientMemory", "NodeHasSufficientMemory"),
    "DiskPressure": ("NodeHasDiskPressure", "NodeHasNoDiskPressure"),
    "PIDPressure": ("NodeHasInsufficientPID", "NodeHasSufficientPID"),
}


@attrs.define
class K8sFailures(K8sEmitter):
    """Semantic failure actions of pods, Services and nodes."""

    def pod_restarted(
        self,
        t: float,
        pod: Pod,
        count: int,
        exit_code: int,
        crash_loop: bool,
        sev: Severity = Severity.WARNING,
        verbose: bool = True,
    ) -> Event:
        msg = (
            f"back-off restarting failed container (exit {exit_code}), restart {count}"
            if verbose
            else "back-off restarting failed container"
        )
        if crash_loop:
            return self._pod(
                t,
                pod,
                "crash_loop",
                Severity.ERROR,
                msg,
                restart_count=count,
                exit_code=exit_code,
                reason="CrashLoopBackOff",
                ready=False,
            )
        return self._pod(
            t,
            pod,
            "restarted",
            sev,
            msg,
            restart_count=count,
            exit_code=exit_code,
            reason="Error",
            ready=False,
        )

    def pod_oom_killed(self, t: float, pod: Pod, restart_count: int) -> Event:
        return self._pod(
            t,
            pod,
            "oom_killed",
            Severity.ERROR,
            f"container {pod.app} OOMKilled",
            termination_reason="OOMKilled",
            exit_code=137,
            restart_count=restart_count,
            ready=False,
        )

    def pod_restarted_after_oom(self, t: float, pod: Pod, count: int) -> Event:
        return self._pod(
            t,
            pod,
            "restarted",
            Severity.WARNING,
            "container restarted",
            restart_count=count,
            exit_code=137,
            termination_reason="OOMKilled",
        )

    def pod_not_ready(self, t: float, pod: Pod, msg: str = "pod not ready: node lost") -> Event:
        return self._pod(t, pod, "not_ready", Severity.WARNING, msg, ready=False)

    def pod_unhealthy(self, t: float, pod: Pod, reason: str = "Unhealthy", msg: str = "") -> Event:
        text = msg or self.rng.choice(
            (
                "Readiness probe failed: HTTP probe failed with statuscode: 503",
                'Readiness probe failed: Get "http://10.0.0.1:8080/healthz": context deadline exceeded',
                "Readiness probe failed: connection refused",
            )
        )
        return self._pod(t, pod, "unhealthy", Severity.WARNING, text, ready=False, reason=reason)

    def pod_evicted(self, t: float, pod: Pod, why: str) -> Event:
        """An eviction; `why` is "memory", "ephemeral-storage", "pids" (node pressure) or "node lost"."""
        msg = (
            f"The node was low on resource: {why}."
            if why != "node lost"
            else "Marking for deletion: node is unreachable (taint-based eviction)"
        )
        return self._pod(
            t, pod, "evicted", Severity.WARNING, msg, phase="Failed", reason="Evicted", ready=False
        )

    def pod_failed_scheduling(self, t: float, pod: Pod) -> Event:
        return self._pod(
            t,
            pod,
            "failed_scheduling",
            Severity.WARNING,
            "0/5 nodes are available: insufficient cpu",
            phase="Pending",
            reason="FailedScheduling",
        )

    def service_unhealthy(self, t: float, svc: Service) -> Event:
        ctx = Context(cluster=self.cluster, namespace=svc.namespace, service=svc.name)
        k8s = K8sEvent(kind="Service", name=svc.name, ready_endpoints=0, selector=svc.selector)
        return self._k8s(
            t,
            "services",
            "unhealthy",
            Severity.ERROR,
            f"service {svc.namespace}/{svc.name} has no ready endpoints",
            ctx,
            k8s,
        )

    def node_not_ready(self, t: float, node: str, ready: str = "Unknown") -> Event:
        ctx = Context(cluster=self.cluster, namespace=CLUSTER_NS, node=node)
        k8s = K8sEvent(kind="Node", name=node, conditions={"Ready": ready})
        return self._k8s(t, "nodes", "not_ready", Severity.CRITICAL, f"node {node} not_ready", ctx, k8s)

    def node_condition(self, t: float, node: str, condition: str, status: str) -> Event:
        """A node condition change (MemoryPressure/DiskPressure/PIDPressure True or False)."""
        conditions = {
            "Ready": "True",
            "MemoryPressure": "False",
            "DiskPressure": "False",
            "PIDPressure": "False",
        }
        conditions[condition] = status
        reason = _PRESSURE_REASONS[condition][0 if status == "True" else 1]
        ctx = Context(cluster=self.cluster, namespace=CLUSTER_NS, node=node)
        k8s = K8sEvent(kind="Node", name=node, conditions=conditions, reason=reason)
        sev = Severity.WARNING if status == "True" else Severity.INFO
        text = f"node {node} {condition} is {status}"
        return self._k8s(t, "nodes", "updated", sev, text, ctx, k8s)

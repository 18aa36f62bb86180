"""Topology and event classes rebuilt from a scenario's events alone (what an engine could know)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from tapio_common.model import Event, Source

CRITICAL_UNITS = frozenset({"kubelet", "containerd", "crio", "docker"})
POD_FAILURES = frozenset({"restarted", "crash_loop", "unhealthy", "oom_killed", "evicted", "not_ready"})
PRESSURES = ("MemoryPressure", "DiskPressure", "PIDPressure")
CONNECTIONS = frozenset({"tcp_reset", "tcp_connect_latency", "tcp_connect"})


@attrs.frozen
class PodInfo:
    node: str
    workload: str  # namespace/name of the top owner
    rs: str
    labels: Mapping[str, str] = attrs.field(hash=False)


@attrs.define
class Index:
    """Pods, Services and ReplicaSets as announced by k8s events, plus time helpers."""

    base: int
    pods: dict[tuple[str, str], PodInfo] = attrs.field(factory=dict)
    services: dict[tuple[str, str], Mapping[str, str]] = attrs.field(factory=dict)
    pod_ips: dict[str, tuple[str, str]] = attrs.field(factory=dict)  # IP -> (namespace, pod)
    cluster_ips: dict[tuple[str, str], str] = attrs.field(factory=dict)  # Service -> its cluster IP
    connections: list[Event] = attrs.field(factory=list)  # kernel events naming a destination

    @classmethod
    def build(cls, events: Sequence[Event]) -> Index:
        idx = cls(base=events[0].time if events else 0)
        for e in events:
            c = e.context
            if e.source is Source.K8S and e.type == "pods" and c.pod and c.workload is not None:
                rs = c.owners[0].name if c.owners else ""
                idx.pods[(c.namespace, c.pod)] = PodInfo(
                    c.node, f"{c.namespace}/{c.workload.name}", rs, c.labels
                )
                for ip in e.k8s.pod_ips if e.k8s is not None else ():
                    idx.pod_ips[ip] = (c.namespace, c.pod)
            if (
                e.source is Source.K8S
                and e.type == "services"
                and e.action == "created"
                and e.k8s is not None
            ):
                idx.services[(c.namespace, c.service)] = e.k8s.selector
                if e.k8s.cluster_ips:
                    idx.cluster_ips[(c.namespace, c.service)] = e.k8s.cluster_ips[0]
            if e.source is Source.EBPF and e.kernel is not None and e.kernel.daddr and e.type in CONNECTIONS:
                idx.connections.append(e)
        return idx

    def t(self, e: Event) -> float:
        return (e.time - self.base) / 1e9

    def pod(self, e: Event) -> PodInfo | None:
        return self.pods.get((e.context.namespace, e.context.pod)) if e.context.pod else None

    def node(self, e: Event) -> str:
        info = self.pod(e)
        return e.context.node or (info.node if info else "")

    def workload(self, e: Event) -> str:
        info = self.pod(e)
        return info.workload if info else ""

    def service_selects(self, svc_event: Event, workload: str) -> bool:
        """Whether the Service of `svc_event` selects a pod of `workload` (labels contain the selector)."""
        ns = svc_event.context.namespace
        selector = self.services.get((ns, svc_event.context.service), {})
        if not selector:
            return False
        return any(
            info.workload == workload and all(info.labels.get(k) == v for k, v in selector.items())
            for (pns, _), info in self.pods.items()
            if pns == ns
        )


def is_restart(e: Event) -> bool:
    """A termination counted by crash_loop: restarted/crash_loop, exit code != 0, not OOMKilled."""
    k = e.k8s
    return (
        e.type == "pods"
        and e.action in ("restarted", "crash_loop")
        and k is not None
        and k.exit_code != 0
        and k.termination_reason != "OOMKilled"
    )


def is_oom_kill(e: Event) -> bool:
    """A kill as seen by k8s (`oom_killed`); kernel `oom_kill` events duplicate these."""
    return e.type == "pods" and e.action == "oom_killed"


def is_cause(e: Event) -> bool:
    return (
        (e.source is Source.EBPF and e.type == "oom_kill")
        or (e.type == "pods" and e.action == "oom_killed")
        or (e.source is Source.SYSTEMD and e.action == "failed")
        or (e.type == "nodes" and e.action == "not_ready")
    )


def is_pod_failure(e: Event) -> bool:
    return e.source is Source.K8S and e.type == "pods" and e.action in POD_FAILURES


def is_service_impact(e: Event) -> bool:
    if e.type == "services" and e.action == "unhealthy":
        return True
    return e.type == "endpoints" and e.k8s is not None and e.k8s.ready_endpoints == 0


def is_critical_unit_failure(e: Event) -> bool:
    return e.source is Source.SYSTEMD and e.action == "failed" and e.context.service in CRITICAL_UNITS


def is_pressure(e: Event) -> bool:
    return (
        e.type == "nodes" and e.k8s is not None and any(e.k8s.conditions.get(p) == "True" for p in PRESSURES)
    )


def is_cni_problem(e: Event) -> bool:
    n = e.network
    if e.source is not Source.CNI or e.action not in ("packet_loss", "errors") or n is None:
        return False
    return n.loss_ratio >= 0.01 or n.drops >= 100 or n.errors >= 100


def retransmit_count(e: Event) -> int:
    if e.source is Source.EBPF and e.type in ("tcp_retransmit", "tcp_reset") and e.kernel is not None:
        return e.kernel.count
    return 0


def is_slow_connect(e: Event) -> bool:
    return (
        e.source is Source.EBPF
        and e.type == "tcp_connect_latency"
        and e.kernel is not None
        and e.kernel.latency_ns >= 200_000_000
    )


def is_failure(e: Event) -> bool:
    """Anything an engine could treat as a problem (used to find stray failures)."""
    return (
        is_cause(e)
        or is_pod_failure(e)
        or is_service_impact(e)
        or is_pressure(e)
        or is_cni_problem(e)
        or is_slow_connect(e)
        or retransmit_count(e) >= 10
        or e.action == "failed_scheduling"
    )

"""Correlator test support: event builders of a tiny cluster, shaped like the public scenarios, and
helpers that run them through the engine (`run`, `final`). Runtime code never imports this package."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from tapio_common.model import (
    Context,
    Correlation,
    Event,
    K8sEvent,
    KernelEvent,
    NetworkEvent,
    OwnerRef,
    Severity,
    Source,
    SystemdEvent,
    Workload,
)
from tapio_correlator.engine import Engine, EngineConfig
from tapio_correlator.replay import final_revisions

BASE = 1_795_176_000 * 1_000_000_000
S = 1_000_000_000


def at(seconds: float) -> int:
    return BASE + round(seconds * S)


@attrs.define
class Pod:
    ns: str
    name: str
    uid: str
    node: str
    app: str
    rs: str
    rs_uid: str
    dep_uid: str

    def context(self) -> Context:
        owners: Any = (
            OwnerRef("ReplicaSet", self.rs, self.rs_uid),
            OwnerRef("Deployment", self.app, self.dep_uid),
        )
        return Context(
            cluster="test",
            namespace=self.ns,
            pod=self.name,
            pod_uid=self.uid,
            node=self.node,
            container=self.app,
            container_id=f"containerd://{self.uid}",
            labels={"app": self.app, "tier": "backend"},
            workload=Workload("Deployment", self.app),
            owners=owners,
        )


class Cluster:
    """Builds events; every event gets a fresh id."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pods = itertools.count(1)

    def id(self) -> str:
        return f"e-{next(self._ids):06d}"

    def pod(self, ns: str, app: str, node: str, rs: str = "") -> Pod:
        n = next(self._pods)
        rs = rs or f"{app}-rs1"
        return Pod(ns, f"{rs}-p{n}", f"uid-{app}-{n}", node, app, rs, f"rsuid-{rs}", f"depuid-{ns}-{app}")

    def _ev(
        self, t: float, source: Source, type_: str, action: str, sev: Severity, ctx: Context, **kw: Any
    ) -> Event:
        return Event(self.id(), at(t), source, type_, action, sev, f"{type_} {action}", ctx, **kw)

    def pod_event(self, t: float, pod: Pod, action: str, sev: Severity = Severity.INFO, **k8s: Any) -> Event:
        payload = K8sEvent(kind="Pod", name=pod.name, uid=pod.uid, **k8s)
        return self._ev(t, Source.K8S, "pods", action, sev, pod.context(), k8s=payload)

    def created(self, t: float, pod: Pod, ip: str = "") -> Event:
        return self.pod_event(t, pod, "created", phase="Pending", pod_ips=(ip,) if ip else ())

    def restart(self, t: float, pod: Pod, count: int, exit_code: int = 1, crash: bool = False) -> Event:
        action = "crash_loop" if crash else "restarted"
        sev = Severity.ERROR if crash else Severity.WARNING
        reason = "CrashLoopBackOff" if crash else "Error"
        return self.pod_event(t, pod, action, sev, restart_count=count, exit_code=exit_code, reason=reason)

    def oom_kill(self, t: float, pod: Pod) -> Event:
        kernel = KernelEvent(pid=99, comm=pod.app, oom_victim_pid=99, oom_pages=500_000)
        return self._ev(t, Source.EBPF, "oom_kill", "killed", Severity.CRITICAL, pod.context(), kernel=kernel)

    def oom_killed(self, t: float, pod: Pod, restarts: int = 0) -> Event:
        return self.pod_event(
            t,
            pod,
            "oom_killed",
            Severity.ERROR,
            termination_reason="OOMKilled",
            exit_code=137,
            restart_count=restarts,
        )

    def oom_restart(self, t: float, pod: Pod, count: int = 1) -> Event:
        return self.pod_event(
            t,
            pod,
            "restarted",
            Severity.WARNING,
            termination_reason="OOMKilled",
            exit_code=137,
            restart_count=count,
        )

    def fail(self, t: float, pod: Pod, action: str, reason: str = "") -> Event:
        return self.pod_event(t, pod, action, Severity.WARNING, ready=False, reason=reason)

    def service(self, t: float, ns: str, name: str, app: str, ready: int = 2, cluster_ip: str = "") -> Event:
        ctx = Context(cluster="test", namespace=ns, service=name)
        k8s = K8sEvent(
            kind="Service",
            name=name,
            selector={"app": app},
            ready_endpoints=ready,
            cluster_ips=(cluster_ip,) if cluster_ip else (),
        )
        return self._ev(t, Source.K8S, "services", "created", Severity.INFO, ctx, k8s=k8s)

    def service_down(self, t: float, ns: str, name: str, app: str) -> Event:
        ctx = Context(cluster="test", namespace=ns, service=name)
        k8s = K8sEvent(kind="Service", name=name, selector={"app": app}, ready_endpoints=0)
        return self._ev(t, Source.K8S, "services", "unhealthy", Severity.ERROR, ctx, k8s=k8s)

    def endpoints(self, t: float, ns: str, name: str, ready: int) -> Event:
        ctx = Context(cluster="test", namespace=ns, service=name)
        k8s = K8sEvent(kind="Endpoints", name=name, ready_endpoints=ready)
        sev = Severity.WARNING if ready == 0 else Severity.INFO
        return self._ev(t, Source.K8S, "endpoints", "updated", sev, ctx, k8s=k8s)

    def unit(
        self, t: float, node: str, unit: str, state: str = "failed", sev: Severity | None = None
    ) -> Event:
        sd = SystemdEvent(
            unit=f"{unit}.service", active_state=state, result="exit-code" if state == "failed" else "success"
        )
        if sev is None:
            sev = Severity.CRITICAL if state == "failed" else Severity.INFO
        return self._ev(
            t,
            Source.SYSTEMD,
            "unit",
            state,
            sev,
            Context(cluster="test", node=node, service=unit),
            systemd=sd,
        )

    def node_not_ready(self, t: float, node: str) -> Event:
        k8s = K8sEvent(kind="Node", name=node, conditions={"Ready": "Unknown"})
        ctx = Context(cluster="test", namespace="_cluster", node=node)
        return self._ev(t, Source.K8S, "nodes", "not_ready", Severity.CRITICAL, ctx, k8s=k8s)

    def node_condition(self, t: float, node: str, condition: str, status: str) -> Event:
        conditions = {
            "Ready": "True",
            "MemoryPressure": "False",
            "DiskPressure": "False",
            "PIDPressure": "False",
        }
        conditions[condition] = status
        k8s = K8sEvent(kind="Node", name=node, conditions=conditions)
        ctx = Context(cluster="test", namespace="_cluster", node=node)
        sev = Severity.WARNING if status == "True" else Severity.INFO
        return self._ev(t, Source.K8S, "nodes", "updated", sev, ctx, k8s=k8s)

    def cni_loss(self, t: float, node: str, loss: float = 0.035, drops: int = 3500) -> Event:
        net = NetworkEvent(
            interface="eth0", direction="ingress", packets=100_000, drops=drops, loss_ratio=loss
        )
        ctx = Context(cluster="test", node=node)
        return self._ev(t, Source.CNI, "interface", "packet_loss", Severity.WARNING, ctx, network=net)

    def retransmit(self, t: float, pod: Pod, count: int) -> Event:
        ctx = Context(cluster="test", namespace=pod.ns, pod=pod.name, node=pod.node)
        return self._ev(
            t,
            Source.EBPF,
            "tcp_retransmit",
            "retransmit",
            Severity.WARNING,
            ctx,
            kernel=KernelEvent(count=count),
        )

    def reset(self, t: float, pod: Pod, daddr: str, count: int = 3) -> Event:
        """TCP resets seen by the pod's sockets toward `daddr` (kernel connection evidence)."""
        kernel = KernelEvent(daddr=daddr, dport=8080, count=count)
        return self._ev(t, Source.EBPF, "tcp_reset", "reset", Severity.WARNING, pod.context(), kernel=kernel)

    def core_event(self, t: float, pod: Pod, reason: str, sev: Severity = Severity.ERROR) -> Event:
        """A core Kubernetes Event (`events`) about a pod."""
        k8s = K8sEvent(kind="Event", name=f"{pod.name}.1", reason=reason)
        return self._ev(t, Source.K8S, "events", "created", sev, pod.context(), k8s=k8s)

    def process_exit(self, t: float, pod: Pod, signal: int) -> Event:
        kernel = KernelEvent(pid=4242, comm=pod.app, signal=signal)
        sev = Severity.ERROR if signal else Severity.INFO
        return self._ev(t, Source.EBPF, "process_exit", "killed", sev, pod.context(), kernel=kernel)

    def latency(self, t: float, pod: Pod, ms: float, daddr: str = "") -> Event:
        kernel = KernelEvent(latency_ns=round(ms * 1_000_000), dport=5432, daddr=daddr)
        sev = Severity.WARNING if ms >= 200 else Severity.INFO
        return self._ev(
            t, Source.EBPF, "tcp_connect_latency", "high_latency", sev, pod.context(), kernel=kernel
        )

    def deployment(
        self, t: float, ns: str, app: str, action: str, reason: str = "", desired: int = 2, available: int = 2
    ) -> Event:
        ctx = Context(cluster="test", namespace=ns, workload=Workload("Deployment", app))
        k8s = K8sEvent(
            kind="Deployment",
            name=app,
            uid=f"depuid-{ns}-{app}",
            reason=reason,
            desired_replicas=desired,
            available_replicas=available,
        )
        sev = Severity.WARNING if available < desired else Severity.INFO
        attributes = {"image": f"registry.local/{app}:v2"} if reason == "TemplateChanged" else {}
        return self._ev(t, Source.K8S, "deployments", action, sev, ctx, k8s=k8s, attributes=attributes)


def run(events: Iterable[Event], config: EngineConfig | None = None) -> list[Correlation]:
    """Every revision the engine emits for the events, then finish()."""
    engine = Engine(config)
    out: list[Correlation] = []
    for ev in sorted(events, key=lambda e: e.time):
        out += engine.process(ev)
    out += engine.finish()
    return out


def final(events: Iterable[Event], config: EngineConfig | None = None) -> list[Correlation]:
    return final_revisions(run(events, config))


def significant(correlations: Sequence[Correlation]) -> list[Correlation]:
    """The medium and high ones (what precision is judged on)."""
    return [c for c in correlations if c.score >= 0.5]


def one(correlations: Sequence[Correlation], type_: str) -> Correlation:
    found = [c for c in significant(correlations) if c.type == type_]
    assert len(found) == 1, f"expected one {type_}, got {[(c.type, c.confidence) for c in correlations]}"
    return found[0]

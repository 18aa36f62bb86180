"""Builds and records host events (systemd units, eBPF kernel findings, CNI interface samples)."""

from __future__ import annotations

import attrs

from tapio_common.model import Context, Event, KernelEvent, NetworkEvent, Severity, Source, SystemdEvent
from tapio_scenariogen import names
from tapio_scenariogen.cluster import Pod
from tapio_scenariogen.emit_failures import K8sFailures
from tapio_scenariogen.emit_k8s import pod_context

_SUB_STATES = {
    "active": "running",
    "activating": "start",
    "reloading": "reload",
    "deactivating": "stop-sigterm",
    "inactive": "dead",
}


@attrs.define
class Emitter(K8sFailures):
    """Every event kind a scenario needs (k8s ones come from K8sEmitter and K8sFailures)."""

    # --- systemd --------------------------------------------------------------------------

    def unit_state(self, t: float, node: str, unit: str, state: str, previous: str = "") -> Event:
        """A unit reaching `state` normally (active, activating, reloading, inactive, ...)."""
        ctx = Context(cluster=self.cluster, node=node, service=unit)
        sd = SystemdEvent(
            unit=f"{unit}.service",
            active_state=state,
            sub_state=_SUB_STATES.get(state, "running"),
            result="success",
            exit_code=0,
            previous_state=previous,
        )
        return self.record(
            t,
            Source.SYSTEMD,
            "unit",
            state,
            Severity.INFO,
            f"{unit}.service on {node} is {state}",
            ctx,
            systemd=sd,
        )

    def unit_failed(self, t: float, node: str, unit: str, critical: bool = True) -> Event:
        ctx = Context(cluster=self.cluster, node=node, service=unit)
        result, code, status = self.rng.choice(
            (
                ("exit-code", 1, 1),
                ("signal", 0, 9),
                ("core-dump", 0, 6),
                ("exit-code", 1, 1),
                ("timeout", 0, 0),
            )
        )
        sd = SystemdEvent(
            unit=f"{unit}.service",
            active_state="failed",
            sub_state=self.rng.choice(("dead", "failed")),
            result=result,
            exit_code=code,
            exit_status=status,
            previous_state="active",
            restarts=self.rng.randrange(0, 6),
        )
        sev = Severity.CRITICAL if critical else Severity.ERROR
        return self.record(
            t, Source.SYSTEMD, "unit", "failed", sev, f"{unit}.service on {node} is failed", ctx, systemd=sd
        )

    # --- eBPF -----------------------------------------------------------------------------

    def _pod_ctx(self, pod: Pod, full: bool) -> Context:
        if full:
            return pod_context(self.cluster, pod)
        return Context(cluster=self.cluster, namespace=pod.namespace, pod=pod.name, node=pod.node)

    def oom_kill(self, t: float, pod: Pod) -> Event:
        pid = self.rng.randrange(300, 65000)
        comm = self.rng.choice((pod.app, pod.app, "java", "python3", "node", "envoy"))[:15]
        base = pod_context(self.cluster, pod)
        ctx = Context(
            cluster=base.cluster,
            namespace=base.namespace,
            pod=base.pod,
            pod_uid=base.pod_uid,
            node=base.node,
            container=base.container,
            container_id=base.container_id,
            pid=pid,
            comm=comm,
        )
        kernel = KernelEvent(
            pid=pid, comm=comm, oom_victim_pid=pid, oom_pages=self.rng.randrange(120_000, 2_500_000)
        )
        return self.record(
            t,
            Source.EBPF,
            "oom_kill",
            "killed",
            Severity.CRITICAL,
            f"kernel OOM killer killed pid {pid} ({comm})",
            ctx,
            kernel=kernel,
        )

    def exec_(self, t: float, pod: Pod) -> Event:
        comm, filename = self.rng.choice(names.COMMANDS)
        kernel = KernelEvent(pid=self.rng.randrange(100, 32768), comm=comm, filename=filename)
        return self.record(
            t,
            Source.EBPF,
            "process_exec",
            "exec",
            Severity.DEBUG,
            "exec",
            self._pod_ctx(pod, False),
            kernel=kernel,
        )

    def retransmit_small(self, t: float, pod: Pod, count: int) -> Event:
        """Background retransmits (far below any threshold)."""
        kernel = KernelEvent(count=count, dport=self.rng.choice(names.DPORTS))
        return self.record(
            t,
            Source.EBPF,
            "tcp_retransmit",
            "retransmit",
            Severity.INFO,
            "tcp retransmits",
            self._pod_ctx(pod, False),
            kernel=kernel,
        )

    def retransmit(self, t: float, pod: Pod, count: int, reset: bool = False) -> Event:
        """An aggregated retransmit (or reset) finding from a pod's sockets over a 10 s window."""
        kernel = KernelEvent(
            saddr=names.pod_ip(self.rng),
            daddr=names.pod_ip(self.rng),
            sport=self.rng.randrange(32768, 61000),
            dport=self.rng.choice(names.DPORTS),
            count=count,
            window_ns=10_000_000_000,
        )
        if reset:
            return self.record(
                t,
                Source.EBPF,
                "tcp_reset",
                "reset",
                Severity.WARNING,
                "tcp resets",
                self._pod_ctx(pod, True),
                kernel=kernel,
            )
        return self.record(
            t,
            Source.EBPF,
            "tcp_retransmit",
            "retransmit",
            Severity.WARNING,
            "tcp retransmits",
            self._pod_ctx(pod, True),
            kernel=kernel,
        )

    def latency(self, t: float, pod: Pod, latency_ms: float) -> Event:
        """A slow TCP connect from the pod (a `high_latency` finding of the eBPF collector)."""
        kernel = KernelEvent(
            saddr=names.pod_ip(self.rng),
            daddr=names.pod_ip(self.rng),
            sport=self.rng.randrange(32768, 61000),
            dport=self.rng.choice(names.DPORTS),
            latency_ns=round(latency_ms * 1_000_000),
            pid=self.rng.randrange(100, 32768),
        )
        sev = Severity.WARNING if latency_ms >= 200 else Severity.INFO
        return self.record(
            t,
            Source.EBPF,
            "tcp_connect_latency",
            "high_latency",
            sev,
            f"tcp connect took {latency_ms:.0f} ms",
            self._pod_ctx(pod, True),
            kernel=kernel,
        )

    def connection_trouble(self, t: float, pod: Pod, daddr: str, dport: int, kind: str) -> Event:
        """Kernel evidence that `pod` connects to `daddr`: resets ("reset") or a slow connect ("slow")."""
        if kind == "reset":
            kernel = KernelEvent(
                saddr=pod.ip,
                daddr=daddr,
                sport=self.rng.randrange(32768, 61000),
                dport=dport,
                count=self.rng.randint(1, 12),
                window_ns=10_000_000_000,
            )
            return self.record(
                t,
                Source.EBPF,
                "tcp_reset",
                "reset",
                Severity.WARNING,
                "tcp resets",
                self._pod_ctx(pod, True),
                kernel=kernel,
            )
        latency_ms = self.rng.uniform(250, 3000)
        kernel = KernelEvent(
            saddr=pod.ip,
            daddr=daddr,
            sport=self.rng.randrange(32768, 61000),
            dport=dport,
            latency_ns=round(latency_ms * 1_000_000),
            pid=self.rng.randrange(100, 32768),
        )
        return self.record(
            t,
            Source.EBPF,
            "tcp_connect_latency",
            "high_latency",
            Severity.WARNING,
            f"tcp connect took {latency_ms:.0f} ms",
            self._pod_ctx(pod, True),
            kernel=kernel,
        )

    # --- CNI ------------------------------------------------------------------------------

    def cni_stats(self, t: float, node: str, iface: str) -> Event:
        packets = self.rng.randrange(2000, 90000)
        drops = self.rng.choice((0, 0, 0, 0, 0, 1, 2, 3))
        net = NetworkEvent(
            interface=iface,
            direction=self.rng.choice(("egress", "ingress")),
            packets=packets,
            bytes=packets * self.rng.randrange(200, 1400),
            drops=drops,
            loss_ratio=round(drops / packets, 6),
            window_seconds=self.rng.choice((0.0, 10.0)),
        )
        return self.record(
            t,
            Source.CNI,
            "interface",
            "stats",
            Severity.DEBUG,
            "interface counters",
            Context(cluster=self.cluster, node=node),
            network=net,
        )

    def cni_loss(self, t: float, node: str, iface: str, loss_ratio: float, errors: bool = False) -> Event:
        """Packet loss (drops) or interface errors on a node's interface over a 10 s window."""
        packets = self.rng.randrange(20_000, 200_000)
        bad = max(round(packets * loss_ratio), 1)
        direction = self.rng.choice(("ingress", "ingress", "egress"))
        net = NetworkEvent(
            interface=iface,
            direction=direction,
            packets=packets,
            errors=bad if errors else 0,
            drops=0 if errors else bad,
            loss_ratio=round(bad / packets, 6),
            window_seconds=10.0,
        )
        action, summary = (
            ("errors", f"reporting {bad} errors") if errors else ("packet_loss", "dropping packets")
        )
        return self.record(
            t,
            Source.CNI,
            "interface",
            action,
            Severity.WARNING,
            f"{iface} on {node} {summary}",
            Context(cluster=self.cluster, node=node),
            network=net,
        )

"""Kernel records -> `tapio.events.v1.Event`: type, action, severity, message, context, payload.

Pure: the node name, the clock offset (wall minus monotonic) and the container lookup are passed
in. Event ids are deterministic (a hash of what identifies the observation), so a re-emit of the
same record is dropped by JetStream dedup.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import attrs

from tapio.events.v1 import events_pb2
from tapio_collector_ebpf.domain import records as r
from tapio_collector_ebpf.domain.severity import SeverityRules

ContainerLookup = Callable[[int], tuple[str, str]]
"""cgroup id -> (container id as Kubernetes writes it, pod uid); ("", "") for the host or unknown."""

_FLOW_TYPES: dict[int, tuple[str, str]] = {
    r.KIND_RETRANSMIT: ("tcp_retransmit", "retransmit"),
    r.KIND_RESET_SENT: ("tcp_reset", "sent"),
    r.KIND_RESET_RECEIVED: ("tcp_reset", "received"),
    r.KIND_CONNECT: ("tcp_connect", "connected"),
    r.KIND_CONNECT_FAILED: ("tcp_connect", "failed"),
}


@attrs.frozen
class EventFactory:
    node: str
    rules: SeverityRules
    containers: ContainerLookup
    wall_offset_ns: int
    """Add to a CLOCK_MONOTONIC time (bpf_ktime_get_ns) to get Unix nanoseconds."""
    cluster: str = ""

    def _event(
        self, ident: bytes, ts_ns: int, type_: str, action: str, severity: int, message: str
    ) -> events_pb2.Event:
        ev = events_pb2.Event(
            id=hashlib.blake2b(self.node.encode() + b"\0" + ident, digest_size=16).hexdigest(),
            source=events_pb2.SOURCE_EBPF,
            type=type_,
            action=action,
            severity=severity,  # type: ignore[arg-type]
            message=message,
        )
        ev.time.FromNanoseconds(ts_ns + self.wall_offset_ns)
        return ev

    def _context(self, ev: events_pb2.Event, cgroup_id: int, pid: int, comm: str) -> None:
        ctx = ev.context
        ctx.node = self.node
        if self.cluster:
            ctx.cluster = self.cluster
        ctx.cgroup_id = cgroup_id
        ctx.pid = pid
        ctx.comm = comm
        if cgroup_id:
            container_id, pod_uid = self.containers(cgroup_id)
            if container_id:
                ctx.container_id = container_id
            if pod_uid:
                ctx.pod_uid = pod_uid

    def proc(self, a: r.ProcAggregate, window_ns: int, key: bytes) -> events_pb2.Event:
        ident = key + a.first_ns.to_bytes(8, "little") + a.count.to_bytes(8, "little")
        if a.kind == r.KIND_EXEC:
            sev = self.rules.exec()
            what = (
                f"{a.count} exec of {a.filename or a.comm}"
                if a.count > 1
                else f"exec of {a.filename or a.comm}"
            )
            ev = self._event(ident, a.last_ns, "process_exec", "exec", sev, f"{what} (last pid {a.pid})")
        else:
            sev = self.rules.exit(a.exit_code, a.signal)
            if a.status < 0:
                how = "exited"
            elif a.signal:
                how = f"killed by signal {a.signal}" + (" (core dumped)" if a.core_dumped else "")
            else:
                how = f"exited with code {a.exit_code}"
            many = f"{a.count} processes {a.comm}" if a.count > 1 else f"process {a.comm}"
            action = "killed" if a.signal else ("failed" if a.exit_code > 0 else "exited")
            ev = self._event(
                ident, a.last_ns, "process_exit", action, sev, f"{many} {how} (last pid {a.pid})"
            )
        self._context(ev, a.cgroup_id, a.pid, a.comm)
        k = ev.kernel
        k.pid, k.comm, k.count, k.window_ns, k.ppid = a.pid, a.comm, a.count, window_ns, a.ppid
        if a.kind == r.KIND_EXEC:
            k.filename = a.filename
        else:
            k.exit_code, k.signal = a.exit_code, a.signal
        return ev

    def flow(self, a: r.FlowAggregate, window_ns: int, key: bytes) -> events_pb2.Event:
        type_, action = _FLOW_TYPES[a.kind]
        ident = key + a.first_ns.to_bytes(8, "little") + a.count.to_bytes(8, "little")
        peer = f"{a.laddr}:{a.lport or '*'} -> {a.raddr}:{a.rport or '*'}"
        if a.kind == r.KIND_RETRANSMIT:
            sev, what = self.rules.retransmit(a.count, window_ns), f"{a.count} TCP retransmits"
        elif a.kind in (r.KIND_RESET_SENT, r.KIND_RESET_RECEIVED):
            sev, what = self.rules.reset(a.count, window_ns), f"{a.count} TCP resets {action}"
        elif a.kind == r.KIND_CONNECT_FAILED:
            sev, what = self.rules.connect_failed(a.count, window_ns), f"{a.count} TCP connects failed"
        else:
            sev = self.rules.latency(a.latency_max_ns)
            what = f"{a.count} TCP connects, max {a.latency_max_ns / 1e6:.3f} ms"
        ev = self._event(ident, a.last_ns, type_, action, sev, f"{what} on {peer}")
        self._context(ev, a.cgroup_id, a.pid, a.comm)
        k = ev.kernel
        k.pid, k.comm, k.count, k.window_ns = a.pid, a.comm, a.count, window_ns
        k.saddr, k.daddr, k.sport, k.dport = a.laddr, a.raddr, a.lport, a.rport
        if a.kind == r.KIND_CONNECT:
            k.latency_ns = a.latency_max_ns
            ev.attributes["latency_avg_ns"] = str(a.latency_sum_ns // a.count if a.count else 0)
        return ev

    def sample(self, s: r.Sample, raw: bytes) -> events_pb2.Event:
        if isinstance(s, r.OomSample):
            comm = s.comm or "?"
            ev = self._event(
                raw, s.ts_ns, "oom_kill", "killed", self.rules.oom(),
                f"OOM killer killed {comm} (pid {s.pid}), rss {s.rss_pages} pages",
            )  # fmt: skip
            self._context(ev, s.cgroup_id, s.pid, s.comm)
            k = ev.kernel
            k.pid, k.comm, k.oom_victim_pid, k.oom_pages, k.count = s.pid, s.comm, s.pid, s.rss_pages, 1
            a = ev.attributes
            a["total_vm_pages"] = str(s.total_vm)
            a["anon_rss_pages"], a["file_rss_pages"], a["shmem_rss_pages"] = (
                str(s.anon_rss),
                str(s.file_rss),
                str(s.shmem_rss),
            )
            a["oom_score_adj"], a["uid"] = str(s.oom_score_adj), str(s.uid)
            a["trigger_pid"], a["trigger_comm"] = str(s.trigger_pid), s.trigger_comm
            return ev
        peer = f"{s.laddr}:{s.lport} -> {s.raddr}:{s.rport}"
        ev = self._event(
            raw, s.ts_ns, "tcp_connect_latency", "high_latency", self.rules.latency(s.latency_ns),
            f"TCP connect took {s.latency_ns / 1e6:.3f} ms on {peer}",
        )  # fmt: skip
        self._context(ev, s.cgroup_id, s.pid, s.comm)
        k = ev.kernel
        k.pid, k.comm, k.latency_ns, k.count = s.pid, s.comm, s.latency_ns, 1
        k.saddr, k.daddr, k.sport, k.dport = s.laddr, s.raddr, s.lport, s.rport
        return ev

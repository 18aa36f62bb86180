"""Synthetic load for benchmarks: a cluster of N pods and its event stream, like the public scenarios.

Mostly lifecycle and noise (pod status updates, small TCP retransmit counts, execs, unit
heartbeats, CNI samples, endpoint updates, pod churn) plus a few incidents (OOM cascade, crash
loop, node failure, network degradation, failed rollout) at random. `Mix(pods, seed).setup()` is
the initial list, `.chunk(n)` the next n events in time order; `to_pb(event)` the protobuf a
collector would publish. Deterministic for a seed.
"""

from __future__ import annotations

import heapq
import random
from typing import Any

from tapio.events.v1 import events_pb2
from tapio_common.model import (
    Context,
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

SECOND = 1_000_000_000
EVENT_RATE = 10_000  # events per second of event time: a busy cluster of 100,000 pods
PODS_PER_DEPLOYMENT = 10
INCIDENT_EVERY = 5_000  # events between two incidents, on average
BASE_NS = 1_795_176_000 * SECOND
UNITS = ("sshd", "cron", "nginx", "chronyd", "rsyslog")
NOISE = {
    "updated": 30,
    "ready": 5,
    "churn": 2,
    "retransmit": 15,
    "exec": 20,
    "unit": 15,
    "cni": 8,
    "endpoints": 3,
}
INCIDENTS = ("oom_cascade", "crash_loop", "node_failure", "network", "rollout")
_MESSAGES: dict[tuple[str, str], str] = {}
_SHARED: dict[object, Any] = {}  # frozen payloads shared by many events (like a collector's interning)


def shared(key: object, make: Any) -> Any:
    value = _SHARED.get(key)
    if value is None:
        value = _SHARED[key] = make()
    return value


K8S, EBPF, SYSTEMD, CNI = Source.K8S, Source.EBPF, Source.SYSTEMD, Source.CNI
INFO, WARNING, ERROR, CRITICAL = Severity.INFO, Severity.WARNING, Severity.ERROR, Severity.CRITICAL


class Deployment:
    __slots__ = ("labels", "name", "ns", "owners", "pods", "rs", "uid", "workload")

    def __init__(self, ns: str, name: str, rng: random.Random) -> None:
        self.ns, self.name = ns, name
        self.uid = f"{rng.getrandbits(128):032x}"
        self.labels = {"app": name, "tier": rng.choice(("frontend", "backend"))}
        self.workload = Workload("Deployment", name)
        self.pods: list[Pod] = []
        self.new_rs(f"{name}-{rng.getrandbits(32):08x}")

    def new_rs(self, rs: str) -> None:
        self.rs = rs
        self.owners: Any = (
            OwnerRef("ReplicaSet", rs, f"uid-{rs}"),
            OwnerRef("Deployment", self.name, self.uid),
        )


class Pod:
    __slots__ = ("ctx", "dep", "host", "name", "node", "uid")

    def __init__(self, dep: Deployment, uid: str, node: str) -> None:
        self.dep, self.uid, self.node = dep, uid, node
        self.name = f"{dep.rs}-{uid[:5]}"
        self.ctx = Context(
            cluster="bench",
            namespace=dep.ns,
            pod=self.name,
            pod_uid=uid,
            node=node,
            container=dep.name,
            container_id=f"containerd://{uid}{uid}",
            labels=dep.labels,
            workload=dep.workload,
            owners=dep.owners,
        )
        # What kernel findings carry (namespace, pod, node), made when first needed.
        self.host: Context | None = None

    def host_ctx(self) -> Context:
        if self.host is None:
            self.host = Context(cluster="bench", namespace=self.dep.ns, pod=self.name, node=self.node)
        return self.host


class Mix:
    """The cluster and its event stream (attrs Events, in time order)."""

    def __init__(self, pods: int, seed: int, rate: int = EVENT_RATE) -> None:
        self.rng = random.Random(seed)
        self.step = SECOND // rate  # event time between two events
        self.seq = 0
        self.t = BASE_NS
        self.nodes = [f"node-{i:05d}" for i in range(max(10, pods // 50))]
        self.deployments = [
            Deployment(f"ns-{i % 200:03d}", f"app-{i:05d}", self.rng)
            for i in range(max(1, pods // PODS_PER_DEPLOYMENT))
        ]
        self.pods = [self._new_pod(d) for d in self.deployments for _ in range(PODS_PER_DEPLOYMENT)]
        self.scheduled: list[tuple[int, int, Event]] = []  # incident steps to come
        self.incidents = 0
        self._kinds, self._weights = list(NOISE), list(NOISE.values())

    def _new_pod(self, dep: Deployment) -> Pod:
        pod = Pod(dep, f"{self.rng.getrandbits(128):032x}", self.rng.choice(self.nodes))
        dep.pods.append(pod)
        return pod

    def ev(self, t: int, src: Source, typ: str, action: str, sev: Severity, ctx: Context, **kw: Any) -> Event:
        self.seq += 1
        message = _MESSAGES.get((typ, action)) or _MESSAGES.setdefault((typ, action), f"{typ} {action}")
        return Event(f"ev-{self.seq:012d}", t, src, typ, action, sev, message, ctx, **kw)

    def pod_ev(self, t: int, pod: Pod, action: str, sev: Severity = INFO, **k8s: Any) -> Event:
        return self.ev(
            t, K8S, "pods", action, sev, pod.ctx, k8s=K8sEvent(kind="Pod", name=pod.name, uid=pod.uid, **k8s)
        )

    def later(self, t: int, ev: Event) -> None:
        heapq.heappush(self.scheduled, (t, self.seq, ev))

    def setup(self) -> list[Event]:
        """The initial list: each Deployment, its pods, its Service."""
        out: list[Event] = []
        for d in self.deployments:
            k8s = K8sEvent(
                kind="Deployment", name=d.name, uid=d.uid, desired_replicas=10, available_replicas=10
            )
            ctx = Context(cluster="bench", namespace=d.ns, workload=d.workload)
            out.append(self.ev(self.t, K8S, "deployments", "created", INFO, ctx, k8s=k8s))
            out += [self.pod_ev(self.t, p, "created", phase="Pending") for p in d.pods]
            k8s = K8sEvent(kind="Service", name=d.name, selector={"app": d.name}, ready_endpoints=10)
            svc = Context(cluster="bench", namespace=d.ns, service=d.name)
            out.append(self.ev(self.t, K8S, "services", "created", INFO, svc, k8s=k8s))
            self.t += self.step
        return out

    def chunk(self, n: int) -> list[Event]:
        out: list[Event] = []
        rng = self.rng
        while len(out) < n:
            self.t += self.step
            while self.scheduled and self.scheduled[0][0] <= self.t:
                out.append(heapq.heappop(self.scheduled)[2])
            if rng.random() < 1 / INCIDENT_EVERY:
                self.incidents += 1
                getattr(self, f"_{rng.choice(INCIDENTS)}")(self.t, rng.choice(self.deployments))
            out.append(self._noise(self.t, rng.choices(self._kinds, self._weights)[0]))
        return out

    def _noise(self, t: int, kind: str) -> Event:
        rng = self.rng
        pod = self.pods[rng.randrange(len(self.pods))]
        if kind == "updated":
            return self.pod_ev(t, pod, "updated", ready=True, phase="Running")
        if kind == "ready":
            return self.pod_ev(t, pod, "ready", ready=True, phase="Running")
        if kind == "churn":  # replaced by a new pod of its Deployment
            i = rng.randrange(len(self.pods))
            old = self.pods[i]
            old.dep.pods.remove(old)
            fresh = self.pods[i] = self._new_pod(old.dep)
            self.later(t + 2 * SECOND, self.pod_ev(t + 2 * SECOND, fresh, "created", phase="Pending"))
            return self.pod_ev(t, old, "deleted", phase="Succeeded")
        if kind == "retransmit":
            count = rng.randint(1, 8)
            k = shared(("retransmit", count), lambda: KernelEvent(count=count, dport=443))
            return self.ev(t, EBPF, "tcp_retransmit", "retransmit", INFO, pod.host_ctx(), kernel=k)
        if kind == "exec":
            k = shared("exec", lambda: KernelEvent(pid=4100, comm="sh", filename="/bin/sh"))
            return self.ev(t, EBPF, "process_exec", "exec", Severity.DEBUG, pod.host_ctx(), kernel=k)
        node = self.nodes[rng.randrange(len(self.nodes))]
        if kind == "unit":
            unit = UNITS[rng.randrange(len(UNITS))]
            sd = shared(
                ("unit", unit), lambda: SystemdEvent(f"{unit}.service", "active", "running", "success")
            )
            ctx = shared(("unit", node, unit), lambda: Context(cluster="bench", node=node, service=unit))
            return self.ev(t, SYSTEMD, "unit", "active", INFO, ctx, systemd=sd)
        if kind == "cni":
            net = shared("cni", lambda: NetworkEvent(interface="eth0", direction="egress", packets=5000))
            ctx = shared(("node", node), lambda: Context(cluster="bench", node=node))
            return self.ev(t, CNI, "interface", "stats", Severity.DEBUG, ctx, network=net)
        d = pod.dep
        ctx = shared(("svc", d.ns, d.name), lambda: Context(cluster="bench", namespace=d.ns, service=d.name))
        k8s = K8sEvent(kind="Endpoints", name=d.name, ready_endpoints=len(d.pods))
        return self.ev(t, K8S, "endpoints", "updated", INFO, ctx, k8s=k8s)

    def _oom_cascade(self, t: int, d: Deployment) -> None:
        victim, *others = d.pods
        k = KernelEvent(pid=4242, comm=d.name, oom_victim_pid=4242, oom_pages=700_000)
        self.later(t, self.ev(t, EBPF, "oom_kill", "killed", CRITICAL, victim.ctx, kernel=k))
        t2 = t + 2 * SECOND
        self.later(
            t2, self.pod_ev(t2, victim, "oom_killed", ERROR, termination_reason="OOMKilled", exit_code=137)
        )
        for i, pod in enumerate(others):
            self.later(t + (10 + i) * SECOND, self.pod_ev(t + (10 + i) * SECOND, pod, "unhealthy", WARNING))
        k8s = K8sEvent(kind="Service", name=d.name, ready_endpoints=0, selector={"app": d.name})
        svc = Context(cluster="bench", namespace=d.ns, service=d.name)
        self.later(
            t + 60 * SECOND, self.ev(t + 60 * SECOND, K8S, "services", "unhealthy", ERROR, svc, k8s=k8s)
        )

    def _crash_loop(self, t: int, d: Deployment) -> None:
        for i in range(6):
            at = t + 30 * i * SECOND
            action = "crash_loop" if i else "restarted"
            self.later(
                at,
                self.pod_ev(at, d.pods[0], action, WARNING, restart_count=i + 1, exit_code=1, reason="Error"),
            )

    def _node_failure(self, t: int, d: Deployment) -> None:
        node = d.pods[0].node
        sd = SystemdEvent(unit="kubelet.service", active_state="failed", sub_state="dead", result="exit-code")
        self.later(
            t,
            self.ev(t, SYSTEMD, "unit", "failed", CRITICAL, Context(cluster="bench", node=node), systemd=sd),
        )
        k8s = K8sEvent(kind="Node", name=node, conditions={"Ready": "Unknown"})
        ctx = Context(cluster="bench", namespace="_cluster", node=node)
        self.later(
            t + 40 * SECOND, self.ev(t + 40 * SECOND, K8S, "nodes", "not_ready", CRITICAL, ctx, k8s=k8s)
        )
        for i, pod in enumerate([p for p in d.pods if p.node == node]):
            self.later(t + (50 + i) * SECOND, self.pod_ev(t + (50 + i) * SECOND, pod, "not_ready", WARNING))

    def _network(self, t: int, d: Deployment) -> None:
        pod = d.pods[0]
        net = NetworkEvent(
            interface="eth0", direction="ingress", packets=100_000, drops=3500, loss_ratio=0.035
        )
        ctx = Context(cluster="bench", node=pod.node)
        self.later(t, self.ev(t, CNI, "interface", "packet_loss", WARNING, ctx, network=net))
        host = Context(cluster="bench", namespace=d.ns, pod=pod.name, node=pod.node)
        for i in range(3):
            at = t + (5 + 10 * i) * SECOND
            self.later(
                at,
                self.ev(
                    at, EBPF, "tcp_retransmit", "retransmit", WARNING, host, kernel=KernelEvent(count=30)
                ),
            )

    def _rollout(self, t: int, d: Deployment) -> None:
        k8s = K8sEvent(
            kind="Deployment", name=d.name, uid=d.uid, desired_replicas=10, reason="TemplateChanged"
        )
        ctx = Context(cluster="bench", namespace=d.ns, workload=d.workload)
        self.later(
            t, self.ev(t, K8S, "deployments", "updated", INFO, ctx, k8s=k8s, attributes={"image": "v2"})
        )
        d.new_rs(f"{d.name}-{self.rng.getrandbits(32):08x}")
        new = Pod(d, f"{self.rng.getrandbits(128):032x}", d.pods[0].node)
        self.later(t + 5 * SECOND, self.pod_ev(t + 5 * SECOND, new, "created", phase="Pending"))
        for i in range(3):
            at = t + (20 + 20 * i) * SECOND
            self.later(at, self.pod_ev(at, new, "crash_loop", ERROR, restart_count=i + 1, exit_code=2))
        stalled = K8sEvent(
            kind="Deployment",
            name=d.name,
            uid=d.uid,
            desired_replicas=10,
            available_replicas=9,
            reason="ProgressDeadlineExceeded",
        )
        at = t + 65 * SECOND  # the rollout stalls: available < desired
        self.later(at, self.ev(at, K8S, "deployments", "updated", WARNING, ctx, k8s=stalled))


def to_pb(ev: Event) -> events_pb2.Event:
    """Model -> protobuf for the fields the mix uses (a collector's encoder, hand-written for speed)."""
    m = events_pb2.Event(id=ev.id, type=ev.type, action=ev.action, message=ev.message)
    m.source, m.severity = ev.source.value, ev.severity.value  # type: ignore[assignment]
    m.time.seconds, m.time.nanos = divmod(ev.time, SECOND)
    c, mc = ev.context, m.context
    mc.cluster, mc.node, mc.namespace, mc.pod, mc.pod_uid = c.cluster, c.node, c.namespace, c.pod, c.pod_uid
    mc.container, mc.container_id, mc.service = c.container, c.container_id, c.service
    if c.workload is not None:
        mc.workload.kind, mc.workload.name = c.workload.kind, c.workload.name
    for o in c.owners:
        mc.owners.add(kind=o.kind, name=o.name, uid=o.uid)
    mc.labels.update(c.labels)
    if ev.k8s is not None:
        k, mk = ev.k8s, m.k8s
        mk.SetInParent()
        mk.kind, mk.name, mk.uid, mk.reason, mk.phase, mk.ready = (
            k.kind,
            k.name,
            k.uid,
            k.reason,
            k.phase,
            k.ready,
        )
        mk.restart_count, mk.exit_code, mk.termination_reason = (
            k.restart_count,
            k.exit_code,
            k.termination_reason,
        )
        mk.ready_endpoints, mk.desired_replicas, mk.available_replicas = (
            k.ready_endpoints,
            k.desired_replicas,
            k.available_replicas,
        )
        mk.conditions.update(k.conditions)
        mk.selector.update(k.selector)
    elif ev.systemd is not None:
        s, ms = ev.systemd, m.systemd
        ms.unit, ms.active_state, ms.sub_state, ms.result = s.unit, s.active_state, s.sub_state, s.result
    elif ev.kernel is not None:
        kk, mk2 = ev.kernel, m.kernel
        mk2.SetInParent()
        mk2.pid, mk2.comm, mk2.filename, mk2.count, mk2.dport = (
            kk.pid,
            kk.comm,
            kk.filename,
            kk.count,
            kk.dport,
        )
        mk2.oom_victim_pid, mk2.oom_pages = kk.oom_victim_pid, kk.oom_pages
    elif ev.network is not None:
        n, mn = ev.network, m.network
        mn.interface, mn.direction, mn.packets, mn.drops, mn.loss_ratio = (
            n.interface,
            n.direction,
            n.packets,
            n.drops,
            n.loss_ratio,
        )
    m.attributes.update(ev.attributes)
    return m

"""One scenario under construction: cluster, recorded events, expectations, and the noise guards."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import TypedDict

import attrs

from tapio_common.model import Event
from tapio_scenariogen.cluster import Cluster, Deployment, Pod
from tapio_scenariogen.emit_host import Emitter

# Windows of CORRELATION.md (seconds). Positive scenarios stay well inside, near-misses just outside.
CASCADE_WINDOW = 300.0
NODE_WINDOW = 300.0
CRASH_WINDOW = 600.0
PRESSURE_WINDOW = 600.0
OOM_REPEAT_WINDOW = 300.0
NETWORK_WINDOW = 120.0
LATENCY_WINDOW = 120.0
PERF_WINDOW = 300.0
DEPLOY_WINDOW = 600.0
RETRANSMIT_THRESHOLD = 50
LATENCY_THRESHOLD_MS = 200.0


class Expected(TypedDict):
    """One line of expected.jsonl (the public scenarios' format)."""

    type: str
    rootCauseEventId: str
    keyEventIds: list[str]
    confidence: str


@attrs.frozen
class Guard:
    """Nodes and pods an incident uses between `start` and `end`: background noise keeps off them."""

    nodes: frozenset[str]
    pods: frozenset[str]
    start: float
    end: float


@attrs.define
class World:
    rng: random.Random
    cluster: Cluster
    emit: Emitter
    expected: list[Expected] = attrs.field(factory=list)
    guards: list[Guard] = attrs.field(factory=list)
    dead_pods: set[str] = attrs.field(factory=set)
    incident_starts: list[float] = attrs.field(factory=list)
    noise_scale: float = 1.0
    notes: list[str] = attrs.field(factory=list)

    @classmethod
    def create(
        cls, rng: random.Random, base_ns: int, n_nodes: int, n_namespaces: int, n_deployments: int
    ) -> World:
        cluster = Cluster.random(rng, n_nodes, n_namespaces)
        for _ in range(n_deployments):
            cluster.add_deployment()
        return cls(rng=rng, cluster=cluster, emit=Emitter(rng=rng, cluster=cluster.name, base_ns=base_ns))

    def jitter(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high)

    def at(self, event: Event) -> float:
        """The time of a recorded event in seconds after the scenario start."""
        return (event.time - self.emit.base_ns) / 1e9

    def expect(self, type_: str, root: Event, keys: Sequence[Event], confidence: str) -> None:
        rest = sorted((e for e in keys if e.id != root.id), key=lambda e: e.time)
        ids = [root.id, *dict.fromkeys(e.id for e in rest)]
        self.expected.append(
            Expected(type=type_, rootCauseEventId=root.id, keyEventIds=ids, confidence=confidence)
        )

    def guard(self, nodes: Iterable[str], pods: Iterable[Pod], start: float, end: float) -> None:
        """Keeps noise off these nodes and pods during the incident (and a margin around it)."""
        pod_list = list(pods)
        self.guards.append(Guard(frozenset(nodes), frozenset(p.uid for p in pod_list), start - 30, end + 240))
        self.incident_starts.append(start)

    def kill(self, pods: Iterable[Pod]) -> None:
        """Pods that are gone (evicted, replaced): no background event mentions them any more."""
        self.dead_pods.update(p.uid for p in pods)

    def node_guarded(self, node: str, t: float) -> bool:
        return any(node in g.nodes and g.start <= t <= g.end for g in self.guards)

    def pod_guarded(self, pod: Pod, t: float) -> bool:
        if pod.uid in self.dead_pods:
            return True
        return any((pod.uid in g.pods or pod.node in g.nodes) and g.start <= t <= g.end for g in self.guards)

    # --- picking topology for incidents --------------------------------------------------

    def workload(
        self, min_replicas: int = 1, max_replicas: int = 9, service: bool | None = None
    ) -> Deployment:
        """A free workload (reserved afterwards); a fresh one is added when none fits."""
        fits = [
            d
            for d in self.cluster.free_deployments()
            if min_replicas <= d.replicas <= max_replicas
            and (service is None or (d.service is not None) == service)
        ]
        if fits:
            dep = self.rng.choice(fits)
        else:
            replicas = self.rng.randint(min_replicas, min(max_replicas, min_replicas + 2))
            dep = self.cluster.fresh_deployment(replicas=replicas, service=service)
        self.cluster.reserve_workload(dep)
        return dep

    def node_with_workloads(self, count: int) -> tuple[str, list[Pod]]:
        """A free node hosting pods of at least `count` workloads (fresh ones are added if needed).

        Returns the node and one pod per workload on it; the node is reserved afterwards.
        """
        node = self.cluster.pick_free_node()
        while len(self.cluster.workloads_on(node)) < count:
            self.cluster.fresh_deployment(on_nodes=[node])
        pods: list[Pod] = []
        for dep in self.cluster.workloads_on(node):
            pods.append(self.rng.choice([p for p in dep.pods if p.node == node]))
        self.cluster.reserve_node(node)
        self.rng.shuffle(pods)
        return node, pods

    def empty_node(self) -> str:
        """A fresh node without pods (reserved)."""
        node = self.cluster.add_node()
        self.cluster.reserve_node(node)
        return node

    # --- setup ---------------------------------------------------------------------------

    def emit_setup(self, limit: float) -> float:
        """Introduces nodes, Deployments, pods and Services like a collector's initial list.

        Everything is squeezed before `limit` seconds; returns when the setup ends.
        """
        rng = self.rng
        steps: list[tuple[float, str, object]] = []
        t = 0.0
        if rng.random() < 0.4:
            for node in self.cluster.nodes:
                steps.append((t, "node", node))
                t += rng.uniform(0.01, 0.3)
        order = list(self.cluster.deployments)
        rng.shuffle(order)
        for dep in order:
            steps.append((t, "deployment", dep))
            for pod in dep.pods:
                t += rng.uniform(0.05, 0.5)
                steps.append((t, "pod_created", pod))
                t += rng.uniform(0.5, 3.0)
                steps.append((t, "pod_ready", pod))
            if dep.service is not None:
                steps.append((t, "service", dep))
        scale = min(1.0, max(limit, 20.0) / t) if t > 0 else 1.0
        for when, kind, obj in steps:
            self._setup_step(when * scale, kind, obj)
        return t * scale

    def _setup_step(self, t: float, kind: str, obj: object) -> None:
        if kind == "node" and isinstance(obj, str):
            self.emit.node_created(t, obj)
        elif kind == "deployment" and isinstance(obj, Deployment):
            self.emit.deployment_created(t, obj)
        elif kind == "pod_created" and isinstance(obj, Pod):
            self.emit.pod_created(t, obj)
        elif kind == "pod_ready" and isinstance(obj, Pod):
            self.emit.pod_ready(t, obj)
        elif kind == "service" and isinstance(obj, Deployment) and obj.service is not None:
            self.emit.service_created(t, obj.service, len(obj.pods))

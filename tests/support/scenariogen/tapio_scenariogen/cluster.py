"""The simulated cluster: nodes, Deployments with ReplicaSets and pods, Services, and reservations.

Incidents reserve the nodes and workloads they break so that two incidents (or an incident and a
noise restart) in one scenario never share a topology link by accident.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import attrs

from tapio_scenariogen import names
from tapio_scenariogen.errors import ScenarioError


@attrs.frozen
class ReplicaSet:
    name: str
    uid: str


@attrs.frozen
class Pod:
    name: str
    uid: str
    namespace: str
    node: str
    app: str
    deployment_uid: str
    rs: ReplicaSet
    labels: dict[str, str] = attrs.field(hash=False)
    container_id: str = ""

    @property
    def key(self) -> str:
        """`namespace/deployment`, the workload this pod belongs to."""
        return f"{self.namespace}/{self.app}"

    @property
    def ip(self) -> str:
        """The pod's IP (status.podIPs), derived from its uid."""
        return names.address_of(self.uid)


@attrs.frozen
class Service:
    namespace: str
    name: str
    uid: str
    selector: dict[str, str] = attrs.field(hash=False)

    @property
    def cluster_ip(self) -> str:
        """The Service's cluster IP, derived from its uid."""
        return names.address_of(self.uid, service=True)


@attrs.define
class Deployment:
    namespace: str
    name: str
    uid: str
    labels: dict[str, str]
    replicas: int
    rs: ReplicaSet
    image: str
    pods: list[Pod] = attrs.field(factory=list)
    service: Service | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def nodes(self) -> set[str]:
        return {p.node for p in self.pods}


@attrs.define
class Cluster:
    """Topology plus the reservations of the incidents placed in it."""

    rng: random.Random
    name: str
    runtime: str
    nodes: list[str]
    namespaces: list[str]
    deployments: list[Deployment] = attrs.field(factory=list)
    reserved_nodes: set[str] = attrs.field(factory=set)
    reserved_workloads: set[str] = attrs.field(factory=set)

    @classmethod
    def random(cls, rng: random.Random, n_nodes: int, n_namespaces: int) -> Cluster:
        runtime = rng.choices(("containerd", "crio", "docker"), weights=(8, 2, 1))[0]
        return cls(
            rng=rng,
            name=rng.choice(names.CLUSTERS),
            runtime=runtime,
            nodes=names.node_names(rng, n_nodes),
            namespaces=rng.sample(names.NAMESPACES, n_namespaces),
        )

    # --- building -------------------------------------------------------------------------

    def add_node(self) -> str:
        """A new node named like the others (e.g. a fresh, still empty node)."""
        while True:
            candidate = names.node_names(self.rng, len(self.nodes) + 1)
            fresh = [n for n in candidate if n not in self.nodes]
            if fresh and _same_style(fresh[0], self.nodes[0]):
                self.nodes.append(fresh[0])
                return fresh[0]

    def unused_app(self, namespace: str) -> str:
        used = {d.name for d in self.deployments if d.namespace == namespace}
        free = [a for a in names.APPS if a not in used]
        if not free:
            raise ScenarioError(f"no free application name left in namespace {namespace}")
        return self.rng.choice(free)

    def add_deployment(
        self,
        namespace: str | None = None,
        app: str | None = None,
        replicas: int | None = None,
        on_nodes: Iterable[str] | None = None,
        service: bool | None = None,
    ) -> Deployment:
        """A Deployment with its ReplicaSet, pods (placed on `on_nodes` in order, else randomly)."""
        rng = self.rng
        ns = namespace or rng.choice(self.namespaces)
        name = app or self.unused_app(ns)
        placement = list(on_nodes or [])
        count = replicas if replicas is not None else max(len(placement), rng.choice((1, 2, 2, 3, 3, 4)))
        tier = rng.choice(names.TIERS)
        dep = Deployment(
            namespace=ns,
            name=name,
            uid=names.uuid_like(rng),
            labels={"app": name, "tier": tier},
            replicas=count,
            rs=ReplicaSet(f"{name}-{names.template_hash(rng)}", names.uuid_like(rng)),
            image=names.image(rng, name),
        )
        for i in range(count):
            node = placement[i] if i < len(placement) else rng.choice(self.nodes)
            dep.pods.append(self.new_pod(dep, dep.rs, node))
        if service if service is not None else rng.random() < 0.85:
            svc_name = name if rng.random() < 0.5 else f"{name}-svc"
            selector = {"app": name} if rng.random() < 0.75 else dict(dep.labels)
            dep.service = Service(ns, svc_name, names.uuid_like(rng), selector)
        self.deployments.append(dep)
        return dep

    def new_pod(self, dep: Deployment, rs: ReplicaSet, node: str, started: bool = True) -> Pod:
        taken = {p.name for p in dep.pods}
        while True:
            pod_name = f"{rs.name}-{names.suffix(self.rng)}"
            if pod_name not in taken:
                break
        return Pod(
            name=pod_name,
            uid=names.uuid_like(self.rng),
            namespace=dep.namespace,
            node=node,
            app=dep.name,
            deployment_uid=dep.uid,
            rs=rs,
            labels=dict(dep.labels),
            container_id=names.container_id(self.rng, self.runtime) if started else "",
        )

    # --- queries --------------------------------------------------------------------------

    def pods(self) -> list[Pod]:
        return [p for d in self.deployments for p in d.pods]

    def pods_on(self, node: str) -> list[Pod]:
        return [p for p in self.pods() if p.node == node]

    def deployment_of(self, pod: Pod) -> Deployment:
        for d in self.deployments:
            if d.key == pod.key:
                return d
        raise ScenarioError(f"pod {pod.name} has no deployment")

    def workloads_on(self, node: str) -> list[Deployment]:
        return [d for d in self.deployments if node in d.nodes]

    # --- reservations ---------------------------------------------------------------------

    def node_is_free(self, node: str) -> bool:
        """Not reserved and hosting no pod of a reserved workload."""
        if node in self.reserved_nodes:
            return False
        return not any(d.key in self.reserved_workloads for d in self.workloads_on(node))

    def workload_is_free(self, dep: Deployment) -> bool:
        """Not reserved and with no pod on a reserved node."""
        return dep.key not in self.reserved_workloads and not (dep.nodes & self.reserved_nodes)

    def free_nodes(self) -> list[str]:
        return [n for n in self.nodes if self.node_is_free(n)]

    def free_deployments(self) -> list[Deployment]:
        return [d for d in self.deployments if self.workload_is_free(d)]

    def reserve_node(self, node: str) -> None:
        """A node-level incident: the node and every workload with a pod on it."""
        self.reserved_nodes.add(node)
        self.reserved_workloads.update(d.key for d in self.workloads_on(node))

    def reserve_workload(self, dep: Deployment) -> None:
        """A workload-level incident: the workload and the nodes of its pods."""
        self.reserved_workloads.add(dep.key)
        self.reserved_nodes.update(dep.nodes)

    def pick_free_node(self) -> str:
        """A free node; a fresh one is added when every node is taken."""
        free = self.free_nodes()
        return self.rng.choice(free) if free else self.add_node()

    def fresh_deployment(
        self,
        on_nodes: Iterable[str] = (),
        replicas: int | None = None,
        service: bool | None = None,
        namespace: str | None = None,
        app: str | None = None,
    ) -> Deployment:
        """A new Deployment whose pods beyond `on_nodes` go to free nodes only (never reserved ones)."""
        placement = list(on_nodes)
        count = replicas if replicas is not None else max(len(placement), self.rng.choice((2, 2, 3)))
        pool = [n for n in self.free_nodes() if n not in placement] or [self.add_node()]
        while len(placement) < count:
            placement.append(self.rng.choice(pool))
        return self.add_deployment(
            namespace=namespace, app=app, replicas=count, on_nodes=placement, service=service
        )


def _same_style(a: str, b: str) -> bool:
    """Whether two node names come from the same naming style (first 3 characters agree)."""
    return a[:3] == b[:3]

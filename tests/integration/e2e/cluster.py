"""What the test API server holds in the real-collector scenarios, and the writes the kubelet and the
node lifecycle controller make when a container is OOM-killed or a node stops reporting.

Fed by the scenarios with the identity of something real they made (the pod uid and container id
of a cgroup laid out like containerd's, a node name); built from the recorded objects of
`tapio_testing.k8s_api.objects`, created now (no recorded creation time), so the events the
Kubernetes collector derives carry today's times like the kernel's and systemd's."""

from __future__ import annotations

import copy
import time

import attrs

from tapio_testing.k8s_api import K8sApiServer
from tapio_testing.k8s_api import objects as o

Obj = o.Obj


def rfc3339(t: float | None = None) -> str:
    """A time as the API server writes it (seconds precision, UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def _fresh(obj: Obj) -> Obj:
    obj["metadata"].pop("creationTimestamp", None)  # the store stamps it now
    return obj


@attrs.define
class App:
    """A Deployment of one replica behind a Service, its pod on `node` (all in the API server)."""

    api: K8sApiServer
    name: str
    namespace: str
    node: str
    pod: Obj
    replicaset: Obj
    ip: str

    @classmethod
    def create(
        cls, api: K8sApiServer, name: str, *, namespace: str, node: str, pod_uid: str = "",
        container_id: str = "", ip: str = "10.244.7.21", cluster_ip: str = "172.20.77.10",
        service: bool = True,
    ) -> App:  # fmt: skip
        """The app's objects, its pod with the given uid and app container id (bare hex) when given;
        with `service`, a Service selecting it and its EndpointSlice (the pod's endpoint ready)."""
        rs = o.replicaset(name, namespace, replicas=1)
        p = o.pod(name, 0, ns=namespace, node=node, rs=rs)
        if pod_uid:
            p["metadata"]["uid"] = pod_uid
        if container_id:
            p["status"]["containerStatuses"][0]["containerID"] = f"containerd://{container_id}"
        p["status"]["podIP"], p["status"]["podIPs"] = ip, [{"ip": ip}]
        api.store.apply(_fresh(o.deployment(name, namespace, replicas=1)))
        api.store.apply(_fresh(rs))
        api.store.apply(_fresh(p))
        if service:
            api.store.apply(_fresh(o.service(name, namespace, cluster_ip=cluster_ip)))
            api.store.apply(_fresh(o.endpointslice(name, [p], namespace)))
        return cls(api, name, namespace, node, p, rs, ip)

    def set_pod(self, p: Obj) -> None:
        self.pod = p
        self.api.store.apply(copy.deepcopy(p))

    def endpoints_ready(self, ready: bool) -> None:
        """The EndpointSlice controller's write: the pod's endpoint ready (or not)."""
        self.api.store.apply(o.endpointslice(self.name, [self.pod], self.namespace, ready=ready))

    def oom_killed(self, at: float) -> None:
        """The kubelet's status after the app container was OOM-killed at `at` and restarted: last
        state terminated OOMKilled (exit 137), restart count + 1, the new container not ready yet."""
        when = rfc3339(at)
        p = o.terminated(self.pod, reason="OOMKilled", exit_code=137, at=when, container=self.name)
        self.set_pod(o.readiness(p, False, at=when, container=self.name))

    def marked_not_ready(self, at: float) -> None:
        """The node lifecycle controller's write when the pod's node stops reporting: the pod's Ready
        condition False; the container statuses stay as the kubelet last wrote them."""
        self.set_pod(o.node_lost(self.pod, at=rfc3339(at)))


def node(api: K8sApiServer, name: str) -> Obj:
    n = _fresh(o.node(name, 7))
    api.store.apply(n)
    return n


def node_not_ready(api: K8sApiServer, n: Obj, at: float) -> Obj:
    """The node lifecycle controller's write once the kubelet stopped posting status: Ready Unknown."""
    n = o.node_condition(n, "Ready", "Unknown", at=rfc3339(at))
    for c in n["status"]["conditions"]:
        if c["type"] == "Ready":
            c["reason"], c["message"] = "NodeStatusUnknown", "Kubelet stopped posting node status."
    api.store.apply(n)
    return n

"""What the topology keeps per pod and per Deployment (pure records), and the label helpers.

Filled by `engine.topology.Topology` from k8s events; read by the rules through it.
"""

from __future__ import annotations

from collections.abc import Mapping

_MAX_REPLICASETS = 32


class PodInfo:
    """What the engine knows about one pod."""

    __slots__ = (
        "cgroup",
        "cid",
        "deleted",
        "deployment",
        "ips",
        "labels",
        "name",
        "namespace",
        "node",
        "rs",
        "seen",
        "uid",
        "updated",
        "workload",
    )

    def __init__(self, uid: str, namespace: str, name: str, t: int) -> None:
        self.uid = uid
        self.namespace = namespace
        self.name = name
        self.node = ""
        self.labels: dict[str, str] = {}
        self.rs = ""  # nearest ReplicaSet (uid, else name)
        self.deployment = ""  # "namespace/name" of its Deployment, if any
        self.workload = ""  # "namespace/Kind/name" of its top owner (the pod itself without one)
        self.cid = ""
        self.cgroup = 0  # cgroup id (eBPF events may carry only that)
        self.ips: tuple[str, ...] = ()  # pod IPs (status.podIPs)
        self.seen = t  # first seen (event time)
        self.updated = t  # time of the latest event applied (older ones do not overwrite)
        self.deleted = 0  # deletion time, while it is a tombstone


class DeploymentInfo:
    """A Deployment's replica counts and the ReplicaSets seen for it (with when first seen)."""

    __slots__ = ("available", "desired", "replicasets")

    def __init__(self) -> None:
        self.desired = 0
        self.available = 0
        self.replicasets: dict[str, int] = {}

    def rs_seen(self, rs: str, t: int) -> None:
        known = self.replicasets.get(rs)
        if known is None:
            if len(self.replicasets) >= _MAX_REPLICASETS:
                del self.replicasets[min(self.replicasets, key=self.replicasets.__getitem__)]
            self.replicasets[rs] = t
        elif t < known:
            self.replicasets[rs] = t


def applied_state(rec: PodInfo) -> tuple[object, ...]:
    """What applying a pod's context and k8s sets in its record (to tell whether it changed since)."""
    return (rec.node, rec.labels, rec.cid, rec.cgroup, rec.ips, rec.workload, rec.rs, rec.deployment)


def same_labels(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    return len(a) == len(b) and all(b.get(k) == v for k, v in a.items())

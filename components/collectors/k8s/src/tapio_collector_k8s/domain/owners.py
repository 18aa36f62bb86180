"""Owner chains up to the top workload: pod -> ReplicaSet -> Deployment, pod -> Job -> CronJob,
DaemonSet, StatefulSet. Pure: the owners' own controller references come from a lookup."""

from __future__ import annotations

from collections.abc import Callable

from tapio_collector_k8s.domain.digest import Pairs, Ref

Lookup = Callable[[str, str, str], "Ref | None"]
"""(kind, namespace, name) -> that object's controller reference, or None when unknown."""

CHAINED = ("ReplicaSet", "Job")  # kinds whose own controller is looked up


def owner_chain(owner: Ref | None, namespace: str, labels: Pairs, lookup: Lookup) -> tuple[Ref, ...]:
    """Nearest first. A ReplicaSet not known yet is followed by its Deployment when the pod carries
    the `pod-template-hash` the Deployment controller names it with (the Deployment's uid is then
    unknown, "")."""
    if owner is None:
        return ()
    chain = [owner]
    kind, name, _ = owner
    if kind in CHAINED:
        parent = lookup(kind, namespace, name)
        if parent is not None:
            chain.append(parent)
        elif kind == "ReplicaSet":
            h = dict(labels).get("pod-template-hash", "")
            if h and name.endswith("-" + h):
                chain.append(("Deployment", name[: -len(h) - 1], ""))
    return tuple(chain)


def workload(chain: tuple[Ref, ...]) -> tuple[str, str]:
    """The top owner (kind, name), or ("", "") for a bare pod."""
    if not chain:
        return ("", "")
    kind, name, _ = chain[-1]
    return (kind, name)

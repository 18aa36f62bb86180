"""The live topology built from k8s events: pods (owners, labels, node, container), services, deployments.

Pod events are read field by field from either the attrs Event or the protobuf Event (the field
names are the same), so the protobuf entry point can keep the hot path free of model objects. The
correlator's decode (`engine.views`) goes further: a pod's last created/updated applied whole is
remembered as its wire bytes, so a later event repeating them is applied by a bytes compare
(`pod_unchanged`) without parsing anything. Records: `engine.records`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tapio_correlator.engine.inputs import ContextIn, EventIn, K8sIn
from tapio_correlator.engine.records import DeploymentInfo, PodInfo, applied_state, same_labels
from tapio_correlator.engine.views import k8s_of_bytes, pod_ips_of

_INTERN_MAX = 200_000


class Topology:
    """Pods, services, deployments and nodes; deleted objects leave it, and it has a size cap."""

    def __init__(self, max_pods: int) -> None:
        self.max_pods = max_pods
        self.pods: dict[str, PodInfo] = {}
        self.pod_names: dict[str, str] = {}  # "namespace/name" -> uid
        self.containers: dict[str, str] = {}  # container id -> uid
        self.services: dict[str, dict[str, str]] = {}  # "namespace/name" -> selector
        self.cgroups: dict[int, str] = {}  # cgroup id -> uid
        self.pod_ips: dict[str, str] = {}  # pod IP -> uid
        self.service_ips: dict[str, str] = {}  # cluster IP -> "namespace/name"
        self.cluster_ips: dict[str, tuple[str, ...]] = {}  # "namespace/name" -> its cluster IPs
        self.service_workloads: dict[str, str] = {}  # "namespace/name" -> workload of its pods (cache)
        self.deployments: dict[str, DeploymentInfo] = {}  # "namespace/name"
        # Deleted pods, kept a little while: events up to the reorder slack late still resolve.
        self.graveyard: dict[str, PodInfo] = {}
        self.nodes: dict[str, dict[str, str]] = {}  # node -> conditions (type -> status)
        self.evicted_over_cap = 0
        self._interned: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        # A created/updated applied whole, as it was on the wire: raw context -> (pod, raw k8s, what
        # the record held after it), and uid -> raw context. A cache: not in snapshots.
        self._applied: dict[bytes, list[Any]] = {}  # [PodInfo, bytes, tuple]: updated in place
        self._applied_key: dict[str, bytes] = {}

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_applied"], state["_applied_key"] = {}, {}
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)

    def size(self) -> dict[str, int]:
        return {
            "pods": len(self.pods),
            "pod_names": len(self.pod_names),
            "containers": len(self.containers),
            "cgroups": len(self.cgroups),
            "pod_ips": len(self.pod_ips),
            "service_ips": len(self.service_ips),
            "services": len(self.services),
            "deployments": len(self.deployments),
            "nodes": len(self.nodes),
            "deleted_pods": len(self.graveyard),
            "label_sets": len(self._interned),
        }

    def _intern(self, labels: Mapping[str, str]) -> dict[str, str]:
        key = tuple(sorted(labels.items()))
        known = self._interned.get(key)
        if known is None:
            if len(self._interned) >= _INTERN_MAX:
                self._interned.clear()
            known = self._interned[key] = dict(key)
        return known

    # --- pods ------------------------------------------------------------------------------

    def pod_unchanged(self, t: int, context: bytes, k8s: bytes, action: str) -> bool:
        """Applies a lifecycle `pods` event given as its raw context and k8s bytes when `pod_event`
        would change nothing but the pod's latest time: its context bytes are those of a
        created/updated applied whole to a live pod (its uid in the context), what the pod's
        record holds has not changed since, and the k8s bytes are the same or (an update) carry
        no other pod IPs. Then that time is set here and True returned; False (nothing changed):
        the caller applies the event with `pod_event`."""
        if action == "created":
            return False
        known = self._applied.get(context)
        if known is None or action == "deleted":
            return False
        rec, raw_k8s = known[0], known[1]
        if t < rec.seen:
            return False
        if t >= rec.updated:
            if raw_k8s != k8s and action == "updated":
                # Same context, new status (phase, restarts, ...): of k8s an update applies only
                # the pod IPs (the uid is the context's), so only those are read.
                ips = pod_ips_of(k8s)
                if ips and ips != rec.ips:
                    return False
                known[1] = k8s  # in place: the context bytes are not hashed again
            rec.updated = t
        return True

    def pod_event(
        self, t: int, ev: EventIn, action: str, raw: tuple[bytes, bytes] | None = None
    ) -> PodInfo | None:
        """Applies a `pods` event (attrs or protobuf Event); returns the pod (None if unidentifiable).

        Order-tolerant: the first-seen time is the earliest event's, an event older than the last
        applied one changes nothing, and events of a deleted pod only find its tombstone. `raw`: the
        event's context and k8s as wire bytes, remembered for `pod_unchanged` when a created or
        updated is applied whole.
        """
        rec = self._pod_event(t, ev, action)
        if rec is None or rec.deleted:
            return rec
        uid = rec.uid
        state = applied_state(rec)
        key = self._applied_key.get(uid)
        if key is not None and self._applied[key][2] != state:
            del (
                self._applied_key[uid],
                self._applied[key],
            )  # the record changed: those bytes would change it back
            key = None
        if (
            raw is not None
            and (action == "created" or action == "updated")
            and rec.updated == t
            and ev.context.pod_uid == uid
        ):
            if key is not None:
                del self._applied[key]
            self._applied[raw[0]] = [rec, raw[1], state]
            self._applied_key[uid] = raw[0]
        return rec

    def _pod_event(self, t: int, ev: EventIn, action: str) -> PodInfo | None:
        ctx = ev.context
        uid = ctx.pod_uid
        k8s: K8sIn | None = None
        if not uid:
            k8s = ev.k8s
            uid = k8s.uid if k8s is not None else ""
            if not uid:
                name = ctx.pod or (k8s.name if k8s is not None else "")
                if not name:
                    return None
                ns = ctx.namespace
                uid = self.pod_names.get(f"{ns}/{name}") or f"{ns}/{name}"
        rec = self.pods.get(uid)
        if rec is None:
            dead = self.graveyard.get(uid)
            if dead is not None or action == "deleted":
                return dead
            return self._create(t, uid, ev, ctx, ev.k8s if k8s is None else k8s)
        if action == "deleted":
            self._delete(t, rec)
            return rec
        if t < rec.seen:
            self._seen_earlier(t, rec)
        if t < rec.updated:
            return rec
        rec.updated = t
        node = ctx.node
        if node and node != rec.node:
            rec.node = node
        if action == "created" or action == "updated":
            # A relabel keeping the number of labels is seen at the next `created`; failures
            # carry their pod's labels themselves, so Service matching never depends on this.
            labels = ctx.labels
            if len(labels) != len(rec.labels) or (
                action == "created" and not same_labels(labels, rec.labels)
            ):
                rec.labels = self._intern(labels)
            cid = ctx.container_id
            if cid and cid != rec.cid:
                self._set_container(rec, cid)
            cg = ctx.cgroup_id
            if cg and cg != rec.cgroup:
                self._set_cgroup(rec, cg)
            k = ev.k8s if k8s is None else k8s
            if k is not None:
                ips = k.pod_ips
                if ips and tuple(ips) != rec.ips:
                    self._set_ips(rec, tuple(ips))
            if not rec.workload:
                self._owners(rec, ctx, t)
        return rec

    def pod_gone(self, t: int, context: bytes, k8s: bytes) -> bool:
        """Applies a `deleted` pod event given as its raw context and k8s bytes when the context
        bytes are those of a created/updated applied whole to a live pod (its uid in the context):
        that pod is deleted as `pod_event` would, without parsing the context (the k8s bytes are
        checked, DecodeError if they are not a K8sEvent). False: the caller applies it with `pod_event`."""
        known = self._applied.get(context)
        if known is None:
            return False
        k8s_of_bytes(k8s)
        self._delete(t, known[0])
        return True

    def _delete(self, t: int, rec: PodInfo) -> None:
        if t < rec.seen:
            self._seen_earlier(t, rec)
        self._remove(rec)
        rec.deleted = t
        self.graveyard[rec.uid] = rec

    def _seen_earlier(self, t: int, rec: PodInfo) -> None:
        rec.seen = t
        if rec.rs and rec.deployment:
            self.deployment(rec.deployment).rs_seen(rec.rs, t)

    def bury(self, before: int) -> None:
        """Forgets tombstones of pods deleted before `before`."""
        old = []
        for uid, p in self.graveyard.items():  # roughly in deletion order: stop at the first recent one
            if p.deleted >= before:
                break
            old.append(uid)
        for uid in old:
            del self.graveyard[uid]

    def _create(self, t: int, uid: str, ev: EventIn, ctx: ContextIn, k8s: K8sIn | None) -> PodInfo:
        if len(self.pods) >= self.max_pods:
            self._remove(self.pods[next(iter(self.pods))])
            self.evicted_over_cap += 1
        name = ctx.pod or (k8s.name if k8s is not None else "")
        rec = PodInfo(uid, ctx.namespace, name, t)
        rec.node = ctx.node
        if ctx.labels:
            rec.labels = self._intern(ctx.labels)
        self.pods[uid] = rec
        if name:
            self.pod_names[f"{rec.namespace}/{name}"] = uid
        if ctx.container_id:
            self._set_container(rec, ctx.container_id)
        if ctx.cgroup_id:
            self._set_cgroup(rec, ctx.cgroup_id)
        if k8s is not None and k8s.pod_ips:
            self._set_ips(rec, tuple(k8s.pod_ips))
        self._owners(rec, ctx, t)
        return rec

    def _owners(self, rec: PodInfo, ctx: ContextIn, t: int) -> None:
        ns = rec.namespace
        rs = deployment = top_kind = top_name = ""
        for o in ctx.owners:
            kind = o.kind
            if kind == "ReplicaSet" and not rs:
                rs = o.uid or o.name
            elif kind == "Deployment":
                deployment = o.name
            top_kind, top_name = kind, o.name
        if not top_kind:
            w = ctx.workload
            if w is not None and w.name:
                top_kind, top_name = w.kind, w.name
                if top_kind == "Deployment":
                    deployment = top_name
        if deployment:
            rec.workload = f"{ns}/Deployment/{deployment}"
            rec.deployment = f"{ns}/{deployment}"
        elif top_kind:
            rec.workload = f"{ns}/{top_kind}/{top_name}"
        elif rec.name:
            rec.workload = f"{ns}/Pod/{rec.name}"
        rec.rs = rs
        if rs and rec.deployment:
            self.deployment(rec.deployment).rs_seen(rs, t)

    def _set_container(self, rec: PodInfo, cid: str) -> None:
        if rec.cid:
            self.containers.pop(rec.cid, None)
        rec.cid = cid
        self.containers[cid] = rec.uid

    def _set_cgroup(self, rec: PodInfo, cgroup: int) -> None:
        if rec.cgroup and self.cgroups.get(rec.cgroup) == rec.uid:
            del self.cgroups[rec.cgroup]
        rec.cgroup = cgroup
        self.cgroups[cgroup] = rec.uid

    def _set_ips(self, rec: PodInfo, ips: tuple[str, ...]) -> None:
        for ip in rec.ips:
            if self.pod_ips.get(ip) == rec.uid:
                del self.pod_ips[ip]
        rec.ips = ips
        for ip in ips:
            self.pod_ips[ip] = rec.uid

    def _remove(self, rec: PodInfo) -> None:
        self.pods.pop(rec.uid, None)
        raw = self._applied_key.pop(rec.uid, None)
        if raw is not None:
            del self._applied[raw]
        key = f"{rec.namespace}/{rec.name}"
        if self.pod_names.get(key) == rec.uid:
            del self.pod_names[key]
        if rec.cid and self.containers.get(rec.cid) == rec.uid:
            del self.containers[rec.cid]
        if rec.cgroup and self.cgroups.get(rec.cgroup) == rec.uid:
            del self.cgroups[rec.cgroup]
        for ip in rec.ips:
            if self.pod_ips.get(ip) == rec.uid:
                del self.pod_ips[ip]

    def resolve_pod(self, ctx: ContextIn) -> PodInfo | None:
        """The pod an event's context points at: by uid, namespace/name, container id or cgroup id."""
        uid = ctx.pod_uid
        if uid:
            rec = self.pods.get(uid) or self.graveyard.get(uid)
            if rec is not None:
                return rec
        known: str | None = None
        if ctx.pod:
            known = self.pod_names.get(f"{ctx.namespace}/{ctx.pod}")
            if known is not None:
                return self.pods.get(known)
        if ctx.container_id:
            known = self.containers.get(ctx.container_id)
            if known is not None:
                return self.pods.get(known)
        if ctx.cgroup_id:
            known = self.cgroups.get(ctx.cgroup_id)
            if known is not None:
                return self.pods.get(known)
        return None

    def pod_at(self, ip: str) -> PodInfo | None:
        """The live pod with this IP."""
        uid = self.pod_ips.get(ip)
        return self.pods.get(uid) if uid is not None else None

    def has_addresses(self) -> bool:
        """Whether any pod or Service IP is known (else connection events cannot be placed)."""
        return bool(self.pod_ips or self.service_ips)

    def workload_at(self, ip: str) -> str:
        """The workload behind an address: the pod with that IP, or the pods of the Service."""
        p = self.pod_at(ip)
        if p is not None:
            return p.workload
        key = self.service_ips.get(ip)
        if key is None:
            return ""
        known = self.service_workloads.get(key)
        if known is None:
            ns = key.partition("/")[0]
            pods = self.pods_selected(ns, self.services.get(key) or {})
            known = self.service_workloads[key] = pods[0].workload if pods else ""
        return known

    def pods_selected(self, namespace: str, selector: Mapping[str, str]) -> list[PodInfo]:
        """The known pods a Service selector picks (a scan: for rare events only)."""
        if not selector:
            return []
        return [
            p
            for p in self.pods.values()
            if p.namespace == namespace and all(p.labels.get(k) == v for k, v in selector.items())
        ]

    # --- services, deployments, nodes ---------------------------------------------------------

    def service_event(self, ev: EventIn) -> None:
        ctx = ev.context
        k8s = ev.k8s
        name = ctx.service or (k8s.name if k8s is not None else "")
        if not name:
            return
        key = f"{ctx.namespace}/{name}"
        self.service_workloads.pop(key, None)
        if ev.action == "deleted":
            self.services.pop(key, None)
            for ip in self.cluster_ips.pop(key, ()):
                if self.service_ips.get(ip) == key:
                    del self.service_ips[ip]
            return
        ips = tuple(ip for ip in k8s.cluster_ips if ip and ip != "None") if k8s is not None else ()
        if ips and ips != self.cluster_ips.get(key):
            for ip in self.cluster_ips.get(key, ()):
                if self.service_ips.get(ip) == key:
                    del self.service_ips[ip]
            self.cluster_ips[key] = ips
            for ip in ips:
                self.service_ips[ip] = key
        selector = k8s.selector if k8s is not None else None
        if selector:
            known = self.services.get(key)
            if known is None or not same_labels(selector, known):
                self.services[key] = self._intern(selector)

    def selector_of(self, namespace: str, name: str) -> dict[str, str]:
        return self.services.get(f"{namespace}/{name}") or {}

    def deployment(self, key: str) -> DeploymentInfo:
        info = self.deployments.get(key)
        if info is None:
            info = self.deployments[key] = DeploymentInfo()
        return info

    def deployment_event(self, key: str, action: str, desired: int, available: int) -> DeploymentInfo | None:
        if action == "deleted":
            self.deployments.pop(key, None)
            return None
        info = self.deployment(key)
        if desired or available:
            info.desired, info.available = desired, available
        return info

    def node_conditions(self, node: str, conditions: Mapping[str, str], deleted: bool) -> dict[str, str]:
        """Stores a node's conditions; returns the previous ones (empty when unknown)."""
        previous = self.nodes.get(node, {})
        if deleted:
            self.nodes.pop(node, None)
        elif conditions:
            self.nodes[node] = {**previous, **conditions}
        return previous

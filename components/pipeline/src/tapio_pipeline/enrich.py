"""What the pipeline knows of pods, learnt from the Kubernetes collector's events, and enrichment.

Fed with every event the pipeline takes (`PodIndex.learn`): pod events teach a pod's context
(namespace, name, uid, node, top workload, owners, labels) and its container ids; kernel and CNI
events that carry both a cgroup id and a container id teach the cgroup. `PodIndex.enrich` fills
the context of an event that names only a container id, a cgroup id, a pod uid or a pod name with
what the index knows (the event's own fields win). Pure and bounded: at most `max_pods` pods, the
least recently seen forgotten first; `state()`/`restore()` give a plain-data snapshot.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from tapio.events.v1 import events_pb2

POD_TYPE = "pods"
SOURCE_K8S = events_pb2.SOURCE_K8S
STATE_VERSION = 1
# Context fields of one container or process, not of the pod: never copied onto other events.
_NOT_OF_THE_POD = ("container", "container_id", "pid", "comm", "cgroup_id", "service")
# Scalar context fields both an event and its pod may carry: the event's own value wins.
_EVENT_WINS = ("cluster", "node", "namespace", "pod", "pod_uid")


def bare_container_id(value: str) -> str:
    """`containerd://<hex>` (the API's form) and `<hex>` (the kernel's) name the same container."""
    return value.split("://", 1)[-1]


class PodIndex:
    def __init__(self, max_pods: int = 200_000, max_cgroups: int = 400_000) -> None:
        self.max_pods = max_pods
        self.max_cgroups = max_cgroups
        self._pods: OrderedDict[str, events_pb2.Context] = OrderedDict()  # pod uid -> its context
        self._containers: dict[str, str] = {}  # container id -> pod uid
        self._pod_containers: dict[str, set[str]] = {}  # pod uid -> its container ids
        self._names: dict[tuple[str, str], str] = {}  # (namespace, pod) -> pod uid
        self._raw: dict[str, bytes] = {}  # pod uid -> the serialized context it was learnt from
        self._cgroups: OrderedDict[int, str] = OrderedDict()  # cgroup id -> container id
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._pods)

    def learn(self, event: events_pb2.Event) -> None:
        if event.source == SOURCE_K8S:
            if event.type == POD_TYPE and event.context.pod_uid:
                self._learn_pod(event)
            return
        ctx = event.context
        if ctx.cgroup_id and ctx.container_id and ctx.cgroup_id not in self._cgroups:
            self._cgroups[ctx.cgroup_id] = bare_container_id(ctx.container_id)
            if len(self._cgroups) > self.max_cgroups:
                self._cgroups.popitem(last=False)

    def _learn_pod(self, event: events_pb2.Event) -> None:
        src = event.context
        uid = src.pod_uid
        raw = src.SerializeToString()
        if self._raw.get(uid) == raw:  # most pod events repeat the context: seen again, nothing new
            self._pods.move_to_end(uid)
            if event.k8s.container_ids:
                self._own(uid, event.k8s.container_ids)
            return
        self._raw[uid] = raw
        known = self._pods.get(uid)
        ctx = events_pb2.Context()
        ctx.CopyFrom(src)  # C-speed copy, then keep only what describes the pod itself
        for name in _NOT_OF_THE_POD:
            ctx.ClearField(name)
        if known is not None and not ctx.node:
            ctx.node = known.node  # a pending pod's later events may not repeat it
        self._pods[uid] = ctx
        self._pods.move_to_end(uid)
        self._names[(src.namespace, src.pod)] = uid
        ids = list(event.k8s.container_ids)
        if src.container_id:
            ids.append(src.container_id)
        self._own(uid, ids)
        while len(self._pods) > self.max_pods:
            self._forget(next(iter(self._pods)))
            self.evicted += 1

    def _own(self, uid: str, ids: Iterable[str]) -> None:
        owned = self._pod_containers.setdefault(uid, set())
        for raw in ids:
            cid = bare_container_id(raw)
            if cid not in owned:
                self._containers[cid] = uid
                owned.add(cid)

    def _forget(self, uid: str) -> None:
        self._raw.pop(uid, None)
        ctx = self._pods.pop(uid)
        if self._names.get((ctx.namespace, ctx.pod)) == uid:
            del self._names[(ctx.namespace, ctx.pod)]
        for cid in self._pod_containers.pop(uid, ()):
            if self._containers.get(cid) == uid:
                del self._containers[cid]

    def pod_of(self, ctx: events_pb2.Context) -> events_pb2.Context | None:
        """The known context of the pod `ctx` points at (uid, container id, cgroup id or name)."""
        uid = ctx.pod_uid
        if not uid and ctx.container_id:
            uid = self._containers.get(bare_container_id(ctx.container_id), "")
        if not uid and ctx.cgroup_id:
            cid = self._cgroups.get(ctx.cgroup_id)
            uid = self._containers.get(cid, "") if cid else ""
        if not uid and ctx.pod:
            uid = self._names.get((ctx.namespace, ctx.pod), "")
        return self._pods.get(uid) if uid else None

    def enrich(self, event: events_pb2.Event) -> bool:
        """Fills the event's missing pod context; True when it added something."""
        ctx = event.context
        if ctx.workload.name and ctx.pod_uid and ctx.labels:
            return False  # already carries what the index would add
        pod = self.pod_of(ctx)
        if pod is None:
            return False
        if ctx.owners:  # rare: the event's own owner chain wins whole, and MergeFrom would append
            merged = events_pb2.Context()
            merged.CopyFrom(pod)
            del merged.owners[:]
            merged.MergeFrom(ctx)
            if merged == ctx:
                return False
            ctx.CopyFrom(merged)
            return True
        # The common case in C: the pod's fields into the event, then the event's own scalars back
        # (MergeFrom lets the source win); labels the event has keep their values.
        own = [(f, getattr(ctx, f)) for f in _EVENT_WINS if getattr(ctx, f)]
        own_labels = dict(ctx.labels) if ctx.labels else None
        ctx.MergeFrom(pod)
        for f, v in own:
            setattr(ctx, f, v)
        if own_labels:
            ctx.labels.update(own_labels)
        return True

    # ------------------------------------------------------------------ snapshot (plain data)

    def state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "pods": [ctx.SerializeToString() for ctx in self._pods.values()],
            "containers": list(self._containers.items()),
            "cgroups": list(self._cgroups.items()),
        }

    @classmethod
    def restore(cls, state: dict[str, Any], max_pods: int = 200_000, max_cgroups: int = 400_000) -> PodIndex:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"pod index snapshot version {state.get('version')!r} is not {STATE_VERSION}")
        index = cls(max_pods, max_cgroups)
        for raw in state["pods"]:
            ctx = events_pb2.Context.FromString(raw)
            index._pods[ctx.pod_uid] = ctx
            index._names[(ctx.namespace, ctx.pod)] = ctx.pod_uid
        for c, u in state["containers"]:
            if u in index._pods:
                index._containers[str(c)] = str(u)
                index._pod_containers.setdefault(str(u), set()).add(str(c))
        index._cgroups = OrderedDict((int(g), str(c)) for g, c in state["cgroups"])
        return index

"""What the pipeline knows of pods, learnt from the Kubernetes collector's events, and enrichment.

Fed with every event the pipeline takes: pod events teach a pod's context (namespace, name, uid,
node, top workload, owners, labels) and its container ids; kernel and CNI events that carry both a
cgroup id and a container id teach the cgroup. Enrichment fills the context of an event that names
only a container id, a cgroup id, a pod uid or a pod name with what the index knows (the event's
own fields win; its own owner chain wins whole). Two forms with one meaning: on whole messages
(`learn`, `enrich`: the reference) and on the wire (`learn_view`, `enrichment`: by the event's
serialized context, cached while what the answer depends on holds; the bytes to put before the
event). Pure and bounded: at most `max_pods` pods, the least recently seen forgotten first, caches
cleared when full; `state()`/`restore()` give a plain-data snapshot.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from tapio.events.v1 import events_pb2
from tapio_pipeline.views import context_field, parse_context

POD_TYPE = "pods"
SOURCE_K8S = events_pb2.SOURCE_K8S
STATE_VERSION = 1
# Context fields of one container or process, not of the pod: never copied onto other events.
_NOT_OF_THE_POD = ("container", "container_id", "pid", "comm", "cgroup_id", "service")


def bare_container_id(value: str) -> str:
    """`containerd://<hex>` (the API's form) and `<hex>` (the kernel's) name the same container."""
    return value.split("://", 1)[-1]


class Entry:
    """What enrichment makes of one serialized context (cached by it): the pod it points at, the
    bytes to put before the event (`views.context_field` of the pod's context; empty: nothing to
    add) and the enriched context (for rules on namespace, node and labels)."""

    __slots__ = ("context", "epoch", "live", "pod", "prefix", "remaps", "uid")

    def __init__(
        self,
        context: events_pb2.Context,
        *,
        uid: str = "",
        pod: events_pb2.Context | None = None,
        prefix: bytes = b"",
        epoch: int = -1,
        remaps: int = 0,
    ) -> None:
        self.context, self.uid, self.pod, self.prefix = context, uid, pod, prefix
        self.epoch = epoch  # no pod: valid while the index learnt nothing new (-1: never enrichable)
        self.remaps = remaps  # a pod: valid while no name/container/cgroup moved to another pod
        # Valid with no check of the epoch: never enrichable, or a pod entry whose pod has not
        # changed since (the index clears it when the pod is learnt again or forgotten).
        self.live = epoch < 0 if pod is None else True


class PodIndex:
    def __init__(
        self, max_pods: int = 200_000, max_cgroups: int = 400_000, max_entries: int = 100_000
    ) -> None:
        self.max_pods = max_pods
        self.max_cgroups = max_cgroups
        self.max_entries = max_entries
        self.pods: OrderedDict[str, events_pb2.Context] = OrderedDict()  # pod uid -> its context
        self._containers: dict[str, str] = {}  # container id -> pod uid
        self.pod_containers: dict[str, set[str]] = {}  # pod uid -> its container ids (both forms)
        self._names: dict[tuple[str, str], str] = {}  # (namespace, pod) -> pod uid
        self._raw: dict[str, bytes] = {}  # pod uid -> the serialized context it was learnt from
        self.by_raw: dict[bytes, str] = {}  # the reverse: a pod event's context seen before
        self._fields: dict[tuple[str, bool], bytes] = {}  # (pod uid, without owners) -> context field
        self._cgroups: OrderedDict[int, str] = OrderedDict()  # cgroup id -> container id
        self.entries: dict[bytes, Entry] = {}  # serialized event context -> its enrichment
        self._entries_of: dict[str, list[Entry]] = {}  # pod uid -> the live entries that found it
        self.own_contexts: dict[bytes, events_pb2.Context] = {}  # k8s events' contexts, parsed
        self.evicted = 0
        self.epoch = 0  # bumped when a pod, a container or a cgroup is learnt
        self.remaps = 0  # bumped when a name, container or cgroup points to another pod than before

    def __len__(self) -> int:
        return len(self.pods)

    # ------------------------------------------------------------------ learning

    def learn(self, event: events_pb2.Event) -> None:
        """Learns from a whole event (the message path; `learn_view` is the hot path's)."""
        if event.source == SOURCE_K8S:
            if event.type == POD_TYPE and event.context.pod_uid:
                self._learn_pod(event.context, event.context.SerializeToString(), event.k8s.container_ids)
            return
        self._learn_cgroup(event.context)

    def learn_view(self, view: Any) -> None:
        """Learns from a pod event's view (`views.RouteEvent`: its context still serialized); a
        context seen before only marks the pod as recently seen. DecodeError for a bad context."""
        raw: bytes = view.context
        uid = self.by_raw.get(raw)
        if uid is not None:
            self.pods.move_to_end(uid)
            ids = view.k8s.container_ids
            if ids:
                owned = self.pod_containers.get(uid)
                if owned is None or not owned.issuperset(ids):
                    self._own(uid, ids)
            return
        ctx = parse_context(raw)
        if ctx.pod_uid:
            self._learn_pod(ctx, raw, view.k8s.container_ids)

    def _learn_cgroup(self, ctx: events_pb2.Context) -> None:
        if ctx.cgroup_id and ctx.container_id and ctx.cgroup_id not in self._cgroups:
            self._cgroups[ctx.cgroup_id] = bare_container_id(ctx.container_id)
            self.epoch += 1
            if len(self._cgroups) > self.max_cgroups:
                self._cgroups.popitem(last=False)

    def _learn_pod(self, src: events_pb2.Context, raw: bytes, container_ids: Iterable[str]) -> None:
        uid = src.pod_uid
        before = self._raw.get(uid)
        if before == raw:  # most pod events repeat the context: seen again, nothing new
            self.pods.move_to_end(uid)
            self._own(uid, container_ids)
            return
        if before is not None:
            self.by_raw.pop(before, None)
        self._raw[uid] = raw
        self.by_raw[raw] = uid
        known = self.pods.get(uid)
        ctx = events_pb2.Context()
        ctx.CopyFrom(src)  # C-speed copy, then keep only what describes the pod itself
        for name in _NOT_OF_THE_POD:
            ctx.ClearField(name)
        if known is not None:
            if not ctx.node:
                ctx.node = known.node  # a pending pod's later events may not repeat it
            self._stale(uid)
        self.pods[uid] = ctx
        self.pods.move_to_end(uid)
        self._fields.pop((uid, False), None)
        self._fields.pop((uid, True), None)
        pod_name = (src.namespace, src.pod)
        if self._names.get(pod_name, uid) != uid:
            self.remaps += 1
        self._names[pod_name] = uid
        self.epoch += 1
        ids = list(container_ids)
        if src.container_id:
            ids.append(src.container_id)
        self._own(uid, ids)
        while len(self.pods) > self.max_pods:
            self._forget(next(iter(self.pods)))
            self.evicted += 1

    def _own(self, uid: str, ids: Iterable[str]) -> None:
        owned = self.pod_containers.setdefault(uid, set())
        for raw in ids:
            if raw in owned:
                continue
            cid = bare_container_id(raw)
            before = self._containers.get(cid)
            if before != uid:
                if before is not None:
                    self.remaps += 1
                self._containers[cid] = uid
                self.epoch += 1
            owned.add(raw)
            owned.add(cid)

    def _forget(self, uid: str) -> None:
        raw = self._raw.pop(uid, None)
        if raw is not None:
            self.by_raw.pop(raw, None)
        self._fields.pop((uid, False), None)
        self._fields.pop((uid, True), None)
        ctx = self.pods.pop(uid)
        self._stale(uid)
        if self._names.get((ctx.namespace, ctx.pod)) == uid:
            del self._names[(ctx.namespace, ctx.pod)]
        for cid in self.pod_containers.pop(uid, ()):
            if self._containers.get(cid) == uid:
                del self._containers[cid]

    def _stale(self, uid: str) -> None:
        """The pod's context changed or it is forgotten: the entries that found it are made again."""
        for entry in self._entries_of.pop(uid, ()):
            entry.live = False

    # ------------------------------------------------------------------ enrichment

    def _uid_of(self, ctx: events_pb2.Context) -> str:
        uid = ctx.pod_uid
        if not uid and ctx.container_id:
            uid = self._containers.get(bare_container_id(ctx.container_id), "")
        if not uid and ctx.cgroup_id:
            cid = self._cgroups.get(ctx.cgroup_id)
            uid = self._containers.get(cid, "") if cid else ""
        if not uid and ctx.pod:
            uid = self._names.get((ctx.namespace, ctx.pod), "")
        return uid

    def pod_of(self, ctx: events_pb2.Context) -> events_pb2.Context | None:
        """The known context of the pod `ctx` points at (uid, container id, cgroup id or name)."""
        uid = self._uid_of(ctx)
        return self.pods.get(uid) if uid else None

    def enrich(self, event: events_pb2.Event) -> bool:
        """Fills the event's missing pod context (its own fields win; its own owner chain, if it has
        one, wins whole); True when it added something. The message path; `enrichment` is the wire's."""
        ctx = event.context
        merged = self._merged(ctx)
        if merged is None:
            return False
        ctx.CopyFrom(merged)
        return True

    def _merged(self, ctx: events_pb2.Context) -> events_pb2.Context | None:
        if ctx.workload.name and ctx.pod_uid and ctx.labels:
            return None  # already carries what the index would add
        pod = self.pod_of(ctx)
        if pod is None:
            return None
        merged = events_pb2.Context()
        merged.CopyFrom(pod)
        if ctx.owners:  # MergeFrom would append them to the pod's
            del merged.owners[:]
        merged.MergeFrom(ctx)
        return None if merged == ctx else merged

    def enrichment(self, raw: bytes) -> Entry:
        """The enrichment of an event (not from the k8s collector) whose serialized context is `raw`;
        made once per distinct context while what it depends on holds. Also learns the cgroup of a
        context naming both a cgroup and a container. DecodeError for a bad context."""
        entry = self.entries.get(raw)
        if entry is not None:
            if entry.pod is None:
                if entry.live or entry.epoch == self.epoch:
                    return entry
            elif entry.live and entry.remaps == self.remaps:
                return entry
        ctx = parse_context(raw)
        self._learn_cgroup(ctx)
        entry = self._entry(ctx)
        if len(self.entries) >= self.max_entries:
            self.entries.clear()
            self._entries_of.clear()
        self.entries[raw] = entry
        if entry.pod is not None:
            self._entries_of.setdefault(entry.uid, []).append(entry)
        return entry

    def _entry(self, ctx: events_pb2.Context) -> Entry:
        if not (ctx.pod_uid or ctx.container_id or ctx.cgroup_id or ctx.pod):
            return Entry(ctx)  # names no pod: never enriched
        if ctx.workload.name and ctx.pod_uid and ctx.labels:
            return Entry(ctx)
        uid = self._uid_of(ctx)
        pod = self.pods.get(uid) if uid else None
        merged = self._merged(ctx) if pod is not None else None
        if pod is None or merged is None:
            return Entry(ctx, uid=uid, pod=pod, epoch=self.epoch, remaps=self.remaps)
        owners = bool(ctx.owners)
        prefix = self._fields.get((uid, owners))
        if prefix is None:
            if owners:
                bare = events_pb2.Context()
                bare.CopyFrom(pod)
                del bare.owners[:]
                prefix = context_field(bare.SerializeToString())
            else:
                prefix = context_field(pod.SerializeToString())
            self._fields[(uid, owners)] = prefix
        return Entry(merged, uid=uid, pod=pod, prefix=prefix, epoch=self.epoch, remaps=self.remaps)

    def own_context(self, raw: bytes) -> events_pb2.Context:
        """A k8s event's serialized context, parsed (cached; k8s events carry their own context)."""
        ctx = self.own_contexts.get(raw)
        if ctx is None:
            ctx = parse_context(raw)
            if len(self.own_contexts) >= self.max_entries:
                self.own_contexts.clear()
            self.own_contexts[raw] = ctx
        return ctx

    # ------------------------------------------------------------------ snapshot (plain data)

    def state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "pods": [ctx.SerializeToString() for ctx in self.pods.values()],
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
            index.pods[ctx.pod_uid] = ctx
            index._names[(ctx.namespace, ctx.pod)] = ctx.pod_uid
        for c, u in state["containers"]:
            if u in index.pods:
                index._containers[str(c)] = str(u)
                index.pod_containers.setdefault(str(u), set()).add(str(c))
        index._cgroups = OrderedDict((int(g), str(c)) for g, c in state["cgroups"])
        return index

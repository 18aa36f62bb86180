"""Turns (old, new) digest pairs from the reflectors into events and emits them: semantic actions
(domain.actions), owner chains (ReplicaSets from the watch when this node leads, else the
pod-template-hash rule or a GET), Service health from its EndpointSlices, event building."""

from __future__ import annotations

import time

import anyio

from tapio.events.v1 import events_pb2
from tapio_collector import Output
from tapio_collector_k8s.adapters.client import Api
from tapio_collector_k8s.domain.actions import Change, changes, service_health
from tapio_collector_k8s.domain.build import build, pod_wire
from tapio_collector_k8s.domain.digest import Digest, Pod, Ref, ReplicaSet, Service, Slice
from tapio_collector_k8s.domain.owners import CHAINED, owner_chain
from tapio_collector_k8s.errors import ApiUnavailableError
from tapio_common.logging import get_logger
from tapio_publisher.subjects import k8s_subject

log = get_logger(__name__)
OWNER_CACHE = 20_000

Pair = tuple[Digest | None, Digest | None]


class Processor:
    def __init__(self, out: Output, api: Api, cluster: str = "") -> None:
        self.out = out
        self.api = api
        self.cluster = cluster
        self.owners: dict[tuple[str, str, str], Ref | None] = {}  # (kind, ns, name) -> its controller
        self.services: dict[tuple[str, str], Service] = {}
        self.slices: dict[tuple[str, str], dict[str, int]] = {}  # (ns, service) -> slice uid -> ready
        self.emitted_by_action: dict[str, int] = {}
        # (owner, namespace, labels, the owner's known controller) -> chain: pods of a workload share it
        self._chains: dict[tuple[object, ...], tuple[Ref, ...]] = {}

    def seed(self, known: dict[str, Digest]) -> None:
        """Learns what a restored watch state already holds (Services, their slices' ready
        endpoints, ReplicaSet owners), so the first change after a restart compares with it."""
        for d in known.values():
            if isinstance(d, Service):
                self.services[(d.namespace, d.name)] = d
            elif isinstance(d, Slice):
                self.slices.setdefault((d.namespace, d.service), {})[d.uid] = d.ready
            elif isinstance(d, ReplicaSet):
                self.owners[("ReplicaSet", d.namespace, d.name)] = d.owner

    async def on_changes(self, resource: str, pairs: list[Pair]) -> None:
        now = time.time_ns()
        if resource == "pods":
            await self._on_pods(pairs, now)
            return
        events: list[events_pb2.Event] = []
        for old, new in pairs:
            d = new if new is not None else old
            assert d is not None
            found = changes(resource, old, new)
            if resource == "endpointslices":
                assert isinstance(d, Slice)
                events += self._slice(d, new is None, found, now)
            else:
                if resource == "services":
                    self._index_service(d, new is None)
                elif resource == "replicasets":
                    assert isinstance(d, ReplicaSet)
                    self.owners[("ReplicaSet", d.namespace, d.name)] = d.owner
                chain = (d.owner,) if isinstance(d, ReplicaSet) and d.owner else ()
                events += [self._build(resource, d, c, now, owners=chain) for c in found]
        if events:
            await self.out.emit_many(events)

    async def _on_pods(self, pairs: list[Pair], now: int) -> None:
        """Pod events, most of all: encoded by hand (build.pod_wire, the same events as `build`)
        and handed to the publisher as serialized events by subject."""
        prefix = self.out.publisher.subjects.prefix
        counts = self.emitted_by_action
        groups: dict[str, list[bytes]] = {}
        for old, new in pairs:
            d = new if new is not None else old
            assert isinstance(d, Pod)
            found = changes("pods", old, new)
            chain = self._known_chain(d)
            if chain is None:
                chain = await self._chain(d)
            for c in found:
                action = c.action
                counts[action] = counts.get(action, 0) + 1
                data = pod_wire(d, c, now, self.cluster, chain)
                subject = k8s_subject(d.namespace, "pods", action, prefix)
                group = groups.get(subject)
                if group is None:
                    groups[subject] = [data]
                else:
                    group.append(data)
        if groups:
            await self.out.emit_encoded(groups)

    def _build(self, resource: str, d: Digest, c: Change, now: int, **kw: object) -> events_pb2.Event:
        self.emitted_by_action[c.action] = self.emitted_by_action.get(c.action, 0) + 1
        return build(resource, d, c, now_ns=now, cluster=self.cluster, **kw)  # type: ignore[arg-type]

    def _lookup(self, kind: str, namespace: str, name: str) -> Ref | None:
        return self.owners.get((kind, namespace, name))

    def _known_chain(self, d: Pod) -> tuple[Ref, ...] | None:
        """The pod's owner chain when it is memoized (most pods: no coroutine to run), else None."""
        owner = d.owner
        if owner is None:
            return ()
        return self._chains.get(
            (owner, d.namespace, d.labels, self.owners.get((owner[0], d.namespace, owner[1])))
        )

    async def _chain(self, d: Pod) -> tuple[Ref, ...]:
        owner = d.owner
        if owner is None:
            return ()
        key = (owner[0], d.namespace, owner[1])
        known = self.owners.get(key)
        memo_key = (owner, d.namespace, d.labels, known)
        chain = self._chains.get(memo_key)
        if chain is not None:
            return chain
        if owner[0] in CHAINED and known is None and key not in self.owners:
            h = dict(d.labels).get("pod-template-hash", "")
            if not (owner[0] == "ReplicaSet" and h and owner[1].endswith("-" + h)):
                await self._fetch_owner(key)
                known = self.owners.get(key)
                memo_key = (owner, d.namespace, d.labels, known)
        chain = owner_chain(owner, d.namespace, d.labels, self._lookup)
        if len(self._chains) >= OWNER_CACHE:
            self._chains.clear()
        self._chains[memo_key] = chain
        return chain

    async def _fetch_owner(self, key: tuple[str, str, str]) -> None:
        kind, ns, name = key
        try:
            obj = await anyio.to_thread.run_sync(self.api.get_owner, kind, ns, name)
        except ApiUnavailableError as e:
            log.debug("owner lookup failed", kind=kind, name=name, error=str(e))
            return
        ref: Ref | None = None
        for r in ((obj or {}).get("metadata") or {}).get("ownerReferences") or ():
            if r.get("controller"):
                ref = (r.get("kind", ""), r.get("name", ""), r.get("uid", ""))
        if len(self.owners) >= OWNER_CACHE:
            self.owners.clear()
        self.owners[key] = ref

    def _index_service(self, d: Digest, deleted: bool) -> None:
        assert isinstance(d, Service)
        if deleted:
            self.services.pop((d.namespace, d.name), None)
        else:
            self.services[(d.namespace, d.name)] = d

    def _slice(self, d: Slice, deleted: bool, found: list[Change], now: int) -> list[events_pb2.Event]:
        key = (d.namespace, d.service)
        per = self.slices.setdefault(key, {})
        before = sum(per.values()) if per else -1  # -1: not known yet (first sight is not a transition)
        if deleted:
            per.pop(d.uid, None)
        else:
            per[d.uid] = d.ready
        after = sum(per.values())
        if not per:
            del self.slices[key]
        svc = self.services.get(key)
        events = [self._build("endpointslices", d, c, now, service=svc, ready_endpoints=after) for c in found]
        health = service_health(d.namespace, d.service, before, after) if before >= 0 and d.service else None
        if health is not None:
            target = svc or Service("", "", d.service, d.namespace, (), (), "", (), (), "")
            # The Service's own resourceVersion does not move when its endpoints do: the slice's does.
            events.append(self._build("services", target._replace(rv=d.rv, uid=target.uid or d.uid), health, now,
                                      ready_endpoints=after))  # fmt: skip
        return events

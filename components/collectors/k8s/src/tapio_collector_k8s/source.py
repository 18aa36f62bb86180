"""The Kubernetes collector's Source: pods of this node always (field selector spec.nodeName),
cluster-scoped and namespace-wide resources only while this node holds the Lease; watch state
saved under the data dir (adapters.state: journal marks every mark_interval, snapshots every
checkpoint_interval) only after the publisher confirmed every event emitted so far, so a restart
neither loses an event nor emits again one that JetStream holds (beyond its duplicate window too),
except the events of the last mark_interval before a crash. The digests of objects emitted as
`created` are noted before they are emitted (domain.recovery), so a crash before their first mark
loses no change either."""

from __future__ import annotations

import functools
import gc
import time

import anyio

from tapio_collector import Output
from tapio_collector_k8s.adapters.client import Api
from tapio_collector_k8s.adapters.elector import Elector
from tapio_collector_k8s.adapters.health import ApiHealth
from tapio_collector_k8s.adapters.reflector import Pair, Reflector
from tapio_collector_k8s.adapters.state import Mark, StateStore
from tapio_collector_k8s.domain.digest import Digest
from tapio_collector_k8s.domain.recovery import to_note
from tapio_collector_k8s.processor import Processor
from tapio_collector_k8s.settings import K8sSettings
from tapio_common.logging import get_logger

log = get_logger(__name__)
FLUSH_TIMEOUT = 5.0
SAVE_SHARE = 20  # wait at least 20x the last snapshot's duration before the next
GC_YOUNG = 50_000  # allocations between collections of the youngest generation (default 700)
JOURNAL_MAX = 16 << 20  # a longer journal is folded into a snapshot at the next mark
SNAPSHOT_DIRTY = 10_000  # more objects changed since the last mark than this (and half of all): a snapshot


class K8sSource:
    def __init__(self, settings: K8sSettings, api: Api, lease_namespace: str) -> None:
        self.settings = settings
        self.api = api
        self.lease_namespace = lease_namespace
        self.reflectors: dict[str, Reflector] = {}
        self.elector: Elector | None = None
        self.processor: Processor | None = None
        self.gate = anyio.Lock()
        self.store: StateStore | None = None
        self._saved: dict[str, int] = {}  # reflector -> changes count at its last snapshot
        self._marked_rv: dict[str, str] = {}  # reflector -> resourceVersion of its last mark
        self._save_seconds = 0.0  # how long the last checkpoint took

    async def run(self, out: Output) -> None:
        s = self.settings
        # The digests of every object are long-lived and acyclic, and each watch event allocates
        # many short-lived objects: with the default thresholds the cyclic collector took ~16% of
        # the CPU (perf, benchmark watch phase). Collect the young generation less often; what the
        # initial lists built is frozen out of the collections (on_synced below).
        gc.set_threshold(GC_YOUNG, 20, 20)
        self.processor = Processor(out, self.api, s.cluster)
        store = self.store = StateStore(out.data_dir / "watch-state")

        def readiness(ok: bool, detail: str) -> None:
            pods = self.reflectors.get("pods")
            out.set_ready(ok and pods is not None and pods.synced, detail)

        health = ApiHealth(readiness, backoff_max=s.backoff_max)

        def synced() -> None:
            gc.freeze()  # the objects listed so far stay: the collector need not scan them
            readiness(not health.down, "watching")

        def make(resource: str, selector: str | None = None) -> Reflector:
            return Reflector(
                resource, self.api, self._on_changes, health, out.metrics, self.gate,
                field_selector=selector, page_size=s.page_size, watch_timeout=s.watch_timeout,
                max_object_bytes=s.max_object_bytes, on_synced=synced,
            )  # fmt: skip

        self.reflectors["pods"] = make("pods", f"spec.nodeName={out.node_name}")
        for r in s.cluster_resources:
            self.reflectors[r] = make(r)
        state = await anyio.to_thread.run_sync(store.load_all, list(self.reflectors))
        for name, refl in self.reflectors.items():
            saved = state.get(name)
            if saved is not None:
                refl.restore(*saved)
                self.processor.seed(saved[1])
                self._marked_rv[name] = saved[0]
                self._saved[name] = -1  # the first snapshot of everything saves it (its marks' journals go)
                log.info("resuming watch", resource=name, rv=saved[0] or "(relist)", objects=len(saved[1]))
            noted = store.pending.get(name)
            if noted:
                refl.pending = noted
                log.info("emitted as created but never saved: derived from what was emitted when seen again",
                         resource=name, objects=len(noted))  # fmt: skip
        self.elector = Elector(
            self.api, self.lease_namespace, s.lease_name, out.node_name,
            lease_duration=s.lease_duration, renew_interval=s.renew_interval, renew_deadline=s.renew_deadline,
        )  # fmt: skip
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.reflectors["pods"].run)
                tg.start_soon(self.elector.run, self._lead)
                tg.start_soon(self._checkpoints, out, store)
        finally:
            with anyio.CancelScope(shield=True):
                await self._checkpoint(out, store)
                await self.elector.release()

    async def _on_changes(self, resource: str, pairs: list[Pair]) -> None:
        """Notes what is about to be emitted as `created`, and later states of those not marked
        since (adapters.state), then emits."""
        assert self.processor is not None
        assert self.store is not None
        fresh = self.reflectors[resource].fresh
        noted = to_note(resource, pairs, fresh)
        if noted:
            fresh.update(uid for uid, _ in noted)
            await anyio.to_thread.run_sync(self.store.note, resource, noted)
        await self.processor.on_changes(resource, pairs)

    async def _lead(self) -> None:
        """While this node holds the Lease: the cluster-scoped watches."""
        log.info(
            "leading: watching cluster-scoped resources", resources=",".join(self.settings.cluster_resources)
        )
        async with anyio.create_task_group() as tg:
            for r in self.settings.cluster_resources:
                tg.start_soon(self.reflectors[r].run)

    async def _checkpoints(self, out: Output, store: StateStore) -> None:
        """Every mark_interval a journal mark; a snapshot of everything every checkpoint_interval
        (or less often when saving is slow: it takes at most ~5% of the time), or when the
        journal has grown past JOURNAL_MAX bytes."""
        last_full = time.monotonic()
        while True:
            await anyio.sleep(self.settings.mark_interval)
            due = max(self.settings.checkpoint_interval, SAVE_SHARE * self._save_seconds)
            dirty = sum(len(r.dirty) for r in self.reflectors.values())
            known = sum(len(r.known) for r in self.reflectors.values())
            # a snapshot rather than a mark as large as one (after a relist, say)
            full = (
                time.monotonic() - last_full >= due
                or store.journal_bytes > JOURNAL_MAX
                or dirty > max(SNAPSHOT_DIRTY, known // 2)
            )
            start = time.monotonic()
            if await self._checkpoint(out, store, full=full) and full:
                last_full = time.monotonic()
                self._save_seconds = last_full - start

    async def _checkpoint(self, out: Output, store: StateStore, *, full: bool = True) -> bool:
        """Saves what the publisher has confirmed: a journal mark of what changed since the last
        one, or (`full`) a snapshot of every resource that moved. False when nothing could be saved
        (NATS down or slow: the state on disk stays older, so a crash replays from there)."""
        moved = [
            (name, r) for name, r in self.reflectors.items()
            if r.dirty or (r.rv or "") != self._marked_rv.get(name, "")
        ]  # fmt: skip
        if not moved and not (
            full and any(r.changes != self._saved.get(n, 0) for n, r in self.reflectors.items())
        ):
            return True
        pub = out.publisher
        async with self.gate:  # no reflector emits meanwhile
            if not pub.connected or pub.spooling:
                return False
            with anyio.move_on_after(FLUSH_TIMEOUT) as scope:
                await pub.flush()
            if scope.cancelled_caught:
                log.warning(
                    "checkpoint skipped: the publisher did not confirm in time", timeout=FLUSH_TIMEOUT
                )
                return False
            marks: list[Mark] = []
            snapshot: list[tuple[str, str, dict[str, Digest], int]] = []
            generation = store.rotate() if full else store.generation
            # notes not seen again yet (a resource this node does not watch now) stay with the snapshot
            carried = [(n, list(r.pending.items())) for n, r in self.reflectors.items() if full and r.pending]
            for name, r in self.reflectors.items():
                rv = r.rv or ""
                if full:
                    if r.changes != self._saved.get(name, 0) or r.dirty:
                        snapshot.append((name, rv, dict(r.known), r.changes))
                elif r.dirty or rv != self._marked_rv.get(name, ""):
                    marks.append((name, rv, [(uid, r.known.get(uid)) for uid in r.dirty]))
                r.dirty = set()
                r.fresh = set()  # marked: no note needed any more
                self._marked_rv[name] = rv
        if marks:
            await anyio.to_thread.run_sync(store.append, marks)
        for name, rv, known, count in snapshot:
            await anyio.to_thread.run_sync(store.save, name, rv, known, generation)
            self._saved[name] = count
        for name, noted in carried:
            await anyio.to_thread.run_sync(functools.partial(store.note, name, noted, sync=True))
        if full:
            await anyio.to_thread.run_sync(store.drop_journals_before, generation)
        return True

"""The systemd Source: follows unit state over D-Bus and emits one Event per transition through the
collector harness' Output. Connects (and reconnects, with backoff) to the bus, lists the followed
units (initial state once; after a reconnect what changed meanwhile), then turns signals into
transitions. The last published state per unit is kept under the state directory, so a restart
neither repeats nor misses a change.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial

import anyio
from prometheus_client import Counter

from tapio_collector import Output
from tapio_collector_systemd.adapters.dbus import SystemdBus
from tapio_collector_systemd.adapters.journal import Journal
from tapio_collector_systemd.adapters.state_store import StateStore
from tapio_collector_systemd.domain.events import build_event, needs_journal
from tapio_collector_systemd.domain.fence import Fence
from tapio_collector_systemd.domain.tracker import Tracker, Transition
from tapio_collector_systemd.domain.units import UnitState
from tapio_collector_systemd.errors import BusError
from tapio_collector_systemd.settings import SystemdSettings
from tapio_common.logging import get_logger

log = get_logger(__name__)
DRAIN = 1024  # signals handled per emit_many at most


class SystemdSource:
    def __init__(self, settings: SystemdSettings) -> None:
        self.settings = settings
        self.filter = settings.filter
        self.journal = Journal(settings.journal_lines, settings.journal_root, settings.journal_delay)
        self.transitions = 0  # transitions emitted (all kinds)
        self.relists = 0
        self._critical = frozenset(settings.critical_units)
        self._saved: dict[str, UnitState] = {}  # states whose events the Output has taken
        self._last_save = 0.0
        self._dirty = False
        self._fence = Fence()  # signals older than a listing's readings are not applied after it

    async def run(self, out: Output) -> None:
        self._signals = Counter(
            f"tapio_{out.metrics.component}_dbus_signals",
            "Signals taken from D-Bus, by kind (props, new, removed, owner; stale = older than a listing).",
            ["kind"],
            registry=out.metrics.registry,
        )
        store = StateStore(out.data_dir)
        self._saved = await anyio.to_thread.run_sync(store.load)
        tracker = Tracker(self._saved)
        pause = self.settings.reconnect_min
        down_since: float | None = None
        out.set_ready(False, f"connecting to {SystemdBus(self.settings.bus_address).where}")
        try:
            while True:
                bus = SystemdBus(self.settings.bus_address, self.settings.queue)
                try:
                    await bus.connect()
                except BusError as e:
                    out.metrics.error("bus_connect")
                    out.set_ready(False, f"systemd unreachable: {e}")
                    if down_since is None:
                        down_since = time.monotonic()
                        log.error(f"systemd unreachable over D-Bus, retrying: {e}")
                    else:
                        log.debug("still unreachable", error=str(e), retry_in=pause)
                    await anyio.sleep(pause)
                    pause = min(pause * 2, self.settings.reconnect_max)
                    continue
                if down_since is not None:
                    log.info(
                        "connected to systemd again", after_seconds=round(time.monotonic() - down_since, 1)
                    )
                    down_since = None
                pause = self.settings.reconnect_min
                try:
                    await self._session(bus, tracker, store, out)
                except BusError as e:
                    out.metrics.error("bus_lost")
                    out.set_ready(False, f"reconnecting: {e}")
                    log.warning("lost systemd over D-Bus, reconnecting", error=str(e))
                    down_since = time.monotonic()
                finally:
                    bus.close()
        finally:
            with anyio.CancelScope(shield=True):
                await store.save(self._saved)

    async def _session(self, bus: SystemdBus, tracker: Tracker, store: StateStore, out: Output) -> None:
        tracker.new_session()
        self._fence.clear()
        await self._relist(bus, tracker, out, initial=True)
        out.set_ready(True, f"following {len(tracker.published)} units on {bus.where}")
        log.info("following systemd", bus=bus.where, units=len(tracker.published))
        lost = anyio.Event()
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                await bus.wait_disconnected()
                lost.set()
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            try:
                await self._follow(bus, tracker, store, out)
            finally:
                tg.cancel_scope.cancel()
        if lost.is_set():
            raise BusError(f"connection to {bus.where} closed")

    async def _follow(self, bus: SystemdBus, tracker: Tracker, store: StateStore, out: Output) -> None:
        while True:
            item = await bus.signals.receive()
            batch = [item]
            while len(batch) < DRAIN:
                try:
                    batch.append(bus.signals.receive_nowait())
                except anyio.WouldBlock:
                    break
            transitions: list[Transition] = []
            relist = False
            for sig in batch:
                kind = sig[0]
                self._signals.labels(kind=kind).inc()
                if kind == "props":
                    if self.filter(sig[1]) and not self._fence.blocks(sig[1]):
                        t = tracker.properties_changed(sig[1], sig[3])
                        if t is not None:
                            transitions.append(t)
                elif kind == "reply":
                    self._fence.release(sig[1])
                elif kind == "removed":
                    tracker.unit_removed(sig[1])
                elif kind == "owner":
                    if sig[1]:
                        log.info("systemd has a new bus name owner (restarted or re-executed): relisting")
                        relist = True
                    else:
                        out.set_ready(False, "systemd left the bus")
                        log.warning("systemd left the bus; waiting for it to come back")
            if self._fence.stale:
                self._signals.labels(kind="stale").inc(self._fence.stale)
                self._fence.stale = 0
            await self._emit(transitions, out)
            lost = bus.take_lost()
            if lost:
                out.metrics.error("signal_overflow")
                log.warning("signal queue full: relisting to catch up", lost_signals=lost)
                relist = True
            if relist:
                await bus.subscribe()  # a new systemd does not know this client
                await self._relist(bus, tracker, out, initial=False)
                out.set_ready(True, f"following {len(tracker.published)} units on {bus.where}")
            await self._maybe_save(store)

    async def _relist(self, bus: SystemdBus, tracker: Tracker, out: Output, *, initial: bool) -> None:
        """Lists the followed units (loading those published before that systemd has unloaded, to
        learn their state) and emits what differs from the last published state."""
        self.relists += 1
        paths = {
            name: path for name, path in await bus.list_units(self.settings.include) if self.filter(name)
        }
        for unit in list(tracker.known()):
            if not self.filter(unit):
                tracker.forget(unit)
                self._saved.pop(unit, None)
            elif unit not in paths:
                paths[unit] = await bus.load_unit(unit)
        states = []
        for unit, path in sorted(paths.items()):
            props = await bus.properties(unit, path, partial(self._fence.hold, unit))
            states.append(UnitState(unit).updated(props))
        transitions = tracker.listed(states)
        log.debug("listed units", units=len(states), changed=len(transitions), initial=initial)
        await self._emit(transitions, out)

    async def _emit(self, transitions: Sequence[Transition], out: Output) -> None:
        if not transitions:
            return
        now_usec = time.time_ns() // 1000
        events = []
        for t in transitions:
            journal = await self.journal.last_lines(t.unit) if needs_journal(t) else ()
            events.append(
                build_event(t, out.node_name, now_usec=now_usec, journal=journal, critical=self._critical)
            )
        await out.emit_many(events)
        self.transitions += len(events)
        for t in transitions:
            self._saved[t.unit] = t.after
        self._dirty = True

    async def _maybe_save(self, store: StateStore) -> None:
        now = time.monotonic()
        if self._dirty and now - self._last_save >= self.settings.state_interval:
            self._last_save = now
            self._dirty = False
            await store.save(self._saved)

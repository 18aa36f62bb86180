"""When and how the runner snapshots its engine: a forked child serializes the state, the parent stores
it in the KV bucket with the events/correlations sequences it covers (`StateStore`).

Mixed into `tapio_correlator.service.runner.Runner`, whose loop calls `_maybe_snapshot()` after each
handled batch and when idle. No snapshot is taken while a message is part-way in the engine or
correlations wait to be confirmed (the state would cover events whose effects are not stored).
"""

from __future__ import annotations

import time

import anyio
from anyio.abc import TaskGroup

from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics
from tapio_common.model import Correlation
from tapio_correlator.engine import Engine
from tapio_correlator.errors import CorrelatorError
from tapio_correlator.service.forksnap import ForkedSnapshot
from tapio_correlator.service.settings import RunnerSettings
from tapio_correlator.service.state_store import StateStore

log = get_logger(__name__)

Forked = tuple[ForkedSnapshot, int, int]  # the child, the events and correlations sequences it covers


class Snapshots:
    """The snapshot half of the runner (state set up by `Runner.__init__`)."""

    engine: Engine
    store: StateStore
    settings: RunnerSettings
    metrics: ComponentMetrics
    last_seq: int
    correlations_seq: int
    partial: dict[int, tuple[int, str]]
    unconfirmed: list[Correlation]
    _tg: TaskGroup | None

    def _init_snapshots(self) -> None:
        self.since_snapshot = 0  # events given to the engine since the last snapshot
        self.last_snapshot = time.monotonic()
        self.snapshotting = False  # a forked snapshot is being taken or saved
        self.snapshots = 0  # stored since start
        self.snapshot_child_mb = 0  # the most memory a snapshot child added (private, at its end)

    def _maybe_snapshot(self) -> None:
        """Starts a snapshot in the background when one is due (after a message, and when idle)."""
        if self._tg is not None and self._snapshot_due() and (forked := self._fork()):
            self._tg.start_soon(self._save, forked)

    def _snapshot_due(self) -> bool:
        if self.since_snapshot == 0 or self.snapshotting or self.partial or self.unconfirmed:
            return False
        return (
            self.since_snapshot >= self.settings.snapshot_events
            or time.monotonic() - self.last_snapshot >= self.settings.snapshot_interval
        )

    async def snapshot(self) -> None:
        """Takes a snapshot now and waits until it is stored (after one in progress, if any)."""
        while self.snapshotting:  # noqa: ASYNC110 - the loop's own snapshot task finishes it
            await anyio.sleep(0.05)
        if self.partial or self.unconfirmed:
            log.warning("no snapshot: a message is part-way in the engine", partial=len(self.partial))
            return
        if forked := self._fork():
            await self._save(forked)

    def _fork(self) -> Forked | None:
        """Forks a child holding the engine as it is now, with the sequences that state covers
        (None when the fork fails: logged, counted, due again after the usual interval)."""
        self.last_snapshot = time.monotonic()
        job = ForkedSnapshot()
        try:
            job.start(self.engine)
        except CorrelatorError as e:
            log.error("engine state not saved", events_seq=self.last_seq, error=str(e))
            self.metrics.error("snapshot")
            return None
        self.snapshotting = True
        self.since_snapshot = 0
        return job, self.last_seq, self.correlations_seq

    async def _save(self, forked: Forked) -> None:
        """Stores what the child wrote. A failed snapshot is logged and counted, and the next one is due
        after the usual interval: restart safety meanwhile rests on the previous one and a longer catch-up."""
        job, events_seq, correlations_seq = forked
        started = time.perf_counter()
        try:
            snap = await job.result()
            size = await self.store.save_compressed(snap.blob, snap.size, events_seq, correlations_seq)
        except CorrelatorError as e:
            log.error("engine state not saved", events_seq=events_seq, error=str(e))
            self.metrics.error("snapshot")
            self.since_snapshot = max(self.since_snapshot, 1)
            return
        finally:
            self.snapshotting = False
        self.snapshots += 1
        self.snapshot_child_mb = max(self.snapshot_child_mb, snap.child_private_mb)
        log.info(
            "engine state saved",
            events_seq=events_seq,
            bytes=size,
            ms=round((time.perf_counter() - started) * 1000, 1),
            child_private_mb=snap.child_private_mb,
            child_rss_mb=snap.child_rss_mb,
        )

"""The publisher's outage path: an ordered queue to the on-disk spool, and in-order replay after reconnect."""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable

import anyio

from tapio_common.logging import get_logger
from tapio_publisher.errors import PublisherError, SpoolError
from tapio_publisher.message import Outgoing
from tapio_publisher.metrics import PublisherMetrics
from tapio_publisher.settings import PublisherSettings
from tapio_publisher.spool import Position, Spool, SpoolRecord

log = get_logger(__name__)

_WRITE_BATCH = 256


class ReplayRound:
    """The spooled messages re-published together; the spool is committed only if all of them land."""

    def __init__(self) -> None:
        self.outstanding = 0
        self.failed = False
        self.done = anyio.Event()

    def sent(self) -> None:
        self.outstanding += 1

    def resolved(self, ok: bool) -> None:
        self.failed = self.failed or not ok
        self.outstanding -= 1
        if self.outstanding <= 0:
            self.done.set()

    def close_sending(self) -> None:
        if self.outstanding <= 0:
            self.done.set()


class Spooler:
    """Owns the spool while the publisher runs. Messages enter with `put` (ordered, bounded: the
    producer waits while `spool_queue` messages wait for the disk) or `put_nowait` (from callbacks);
    a writer task appends them to disk off the event loop; a replay task re-publishes them, oldest
    first, once NATS is reachable. While anything is spooled, new messages are spooled too, so the
    order on the wire stays the order of publishing; `active` tells the publisher which path to use.
    """

    def __init__(
        self,
        settings: PublisherSettings,
        metrics: PublisherMetrics,
        *,
        connected: Callable[[], bool],
        send: Callable[[Outgoing], Awaitable[None]],
        wants_ack: Callable[[str], bool],
        on_drop: Callable[[Outgoing, str, str], None],
        on_progress: Callable[[], None],
    ) -> None:
        self.spool = Spool(
            settings.spool_dir,
            max_bytes=settings.spool_max_bytes,
            segment_bytes=settings.spool_segment_bytes,
            fsync=settings.spool_fsync,
            fsync_interval=settings.spool_fsync_interval,
            on_drop=metrics.drop,  # called from the spool's worker thread: counters are thread-safe
        )
        self.settings = settings
        self.metrics = metrics
        self._connected = connected
        self._send = send
        self._wants_ack = wants_ack
        self._on_drop = on_drop
        self._on_progress = on_progress
        self._limiter = anyio.CapacityLimiter(1)
        self._queue: collections.deque[Outgoing] = collections.deque()
        self._writing = 0
        self._replaying = False
        self._wake_writer = anyio.Event()
        self._wake_replay = anyio.Event()
        self._room: anyio.Event | None = None
        self.active = False  # set when the spool is opened (it may hold a previous run's messages)

    @property
    def queued(self) -> int:
        return len(self._queue) + self._writing

    @property
    def idle(self) -> bool:
        """Nothing queued, being written, replayed or left on disk."""
        return not self._queue and not self._writing and not self._replaying and self.spool.empty

    def put_nowait(self, outs: list[Outgoing], reason: str) -> None:
        """Queues messages for the spool now (order kept); used from ack callbacks and on disconnect."""
        fresh = [o for o in outs if o.replay is None]
        for o in outs:
            if o.replay is not None:  # already on disk: that replay round failed
                o.replay.resolved(False)
        if not fresh:
            return
        self.active = True
        self._queue.extend(fresh)
        self.metrics.error(reason)
        self._wake_writer.set()

    async def put(self, out: Outgoing) -> None:
        """Queues a message for the spool; waits while the queue is full (disk slower than producers)."""
        self.active = True
        self._queue.append(out)
        self._wake_writer.set()
        if len(self._queue) > self.settings.spool_queue:
            start = time.monotonic()
            while len(self._queue) > self.settings.spool_queue:
                if self._room is None:
                    self._room = anyio.Event()
                await self._room.wait()
            self.metrics.backpressure.observe(time.monotonic() - start)

    def wake_replay(self) -> None:
        self._wake_replay.set()

    async def _run(self, fn: Callable[..., object], *args: object) -> object:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def writer_loop(self) -> None:
        while True:
            if not self._queue:
                self._wake_writer = anyio.Event()
                with anyio.move_on_after(self.settings.spool_fsync_interval):
                    await self._wake_writer.wait()
                if not self._queue:
                    await self._run(self.spool.sync)
                    continue
            await self.write_some()

    async def write_some(self) -> None:
        batch = [self._queue.popleft() for _ in range(min(_WRITE_BATCH, len(self._queue)))]
        self._writing = len(batch)
        if self._room is not None:
            self._room.set()
            self._room = None
        records = [SpoolRecord(o.subject, o.msg_id, o.headers, o.payload, o.events) for o in batch]
        try:
            with anyio.CancelScope(shield=True):  # taken off the queue: must reach the disk
                await self._run(self.spool.append, records)
            self.metrics.spooled.inc(sum(o.events for o in batch))
        except SpoolError as e:
            log.error("spool write failed: dropping messages", error=str(e), messages=len(batch))
            for o in batch:
                self._on_drop(o, "spool_error", str(e))
        finally:
            self._writing = 0
        self._wake_replay.set()
        self._on_progress()

    async def flush_to_disk(self) -> None:
        """Writes everything queued (shutdown) and syncs the spool."""
        while self._queue:
            await self.write_some()
        await self._run(self.spool.sync)

    async def replay_loop(self) -> None:
        backoff = self.settings.retry_backoff
        while True:
            if not self._connected() or self.spool.empty:
                self._maybe_deactivate()
                self._wake_replay = anyio.Event()
                with anyio.move_on_after(self.settings.tick * 4):
                    await self._wake_replay.wait()
                continue
            self._replaying = True
            try:
                ok = await self._replay_round()
            finally:
                self._replaying = False
            if ok:
                backoff = self.settings.retry_backoff
                self._maybe_deactivate()
                self._on_progress()
            else:
                await self._run(self.spool.rewind)
                log.info(
                    "spool replay interrupted; retrying", pause_s=backoff, pending=self.spool.pending_events
                )
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.retry_backoff_max)

    async def _replay_round(self) -> bool:
        items = await self._run(self.spool.read, self.settings.replay_chunk)
        assert isinstance(items, list)
        if not items:
            return True
        rnd = ReplayRound()
        last: Position | None = None
        for pos, rec in items:
            if not self._connected():
                rnd.failed = True
                break
            out = Outgoing(
                rec.subject, rec.payload, dict(rec.headers), rec.msg_id, rec.events,
                want_ack=self._wants_ack(rec.msg_id), replay=rnd,
            )  # fmt: skip
            rnd.sent()
            try:
                await self._send(out)
            except PublisherError as e:
                log.info("spool replay publish failed", error=str(e))
                rnd.resolved(False)
                break
            last = pos
        rnd.close_sending()
        await rnd.done.wait()
        if rnd.failed or last is None:
            return False
        await self._run(self.spool.commit, last)
        return True

    def _maybe_deactivate(self) -> None:
        if self.active and self.idle:
            self.active = False
            log.info("spool drained: publishing directly again")

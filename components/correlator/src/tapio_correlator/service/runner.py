"""The NATS runner: pull events, correlate, publish correlations, ack only what is confirmed."""

from __future__ import annotations

import time
from collections.abc import Sequence

import anyio
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.client import JetStreamContext

from tapio.events.v1 import events_pb2
from tapio_common.errors import ContractError
from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics
from tapio_common.model import Correlation
from tapio_common.model.fast import correlation_to_pb
from tapio_correlator.engine import Engine
from tapio_correlator.errors import CorrelatorError
from tapio_correlator.service.catchup import last_seq, read_range
from tapio_correlator.service.forksnap import ForkedSnapshot
from tapio_correlator.service.settings import RunnerSettings
from tapio_correlator.service.state_store import StateStore
from tapio_jetstream import DecodeError, decode_events
from tapio_jetstream.dlq import publish_dead_letter
from tapio_jetstream.layout import CORRELATIONS, CORRELATOR, EVENTS
from tapio_publisher import Publisher, Receipt
from tapio_publisher.subjects import correlation_subject

log = get_logger(__name__)

COMPONENT = "correlator"
EVENTS_SUBJECT = "tapio.events.>"
CORRELATIONS_SUBJECT = "tapio.correlations.>"
MSG_ID_HEADER = "Nats-Msg-Id"
NS = 1_000_000_000
PULLS_AHEAD = 2  # pulled batches waiting for the engine (bounded: the rest stays in the stream)


def correlation_msg_id(corr: Correlation) -> str:
    """`Nats-Msg-Id` of a correlation revision: id + revision (a re-emitted revision is dropped)."""
    return f"{corr.id}:{corr.revision}"


class Runner:
    """One engine fed by the durable consumer `correlator` on TAPIO_EVENTS.

    Order of effects per pull: decode -> engine -> publish correlations -> wait for their acks ->
    ack the input messages. Restart safety: the engine state is snapshotted to a KV bucket with the
    last events-stream sequence it covers; on start the runner restores it, reads back the
    events after it (those acked since are replayed, those not acked are redelivered), and does not
    re-publish correlation revisions that the correlations stream already holds.
    """

    def __init__(
        self,
        js: JetStreamContext,
        publisher: Publisher,
        store: StateStore,
        settings: RunnerSettings,
        metrics: ComponentMetrics,
    ) -> None:
        self.js = js
        self.publisher = publisher
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.engine = Engine(settings.engine)
        self.last_seq = 0  # last events-stream sequence given to the engine
        self.correlations_seq = 0  # highest correlations-stream sequence confirmed
        self.suppress: set[str] = set()  # revisions already in the correlations stream
        self.last_event_ns = 0
        self.last_input = time.monotonic()
        self.advanced_to = 0
        self.since_snapshot = 0
        self.last_snapshot = time.monotonic()
        self.snapshotting = False  # a forked snapshot is being taken or saved
        self.snapshots = 0  # stored since start
        self.snapshot_child_mb = 0  # the most memory a snapshot child added (private, at its end)
        self.ready = False
        self.stopping = False
        self.url = ""
        self.published = 0
        self.events_in = 0

    # --- start-up -----------------------------------------------------------------------------

    async def recover(self) -> None:
        """Restores the last snapshot and replays what the engine had seen after it."""
        snap = await self.store.load()
        if snap is not None:
            try:
                self.engine = Engine.restore(snap.engine)
            except ContractError as e:
                raise CorrelatorError(f"snapshot {snap.generation} cannot be restored: {e}") from e
            self.last_seq, self.correlations_seq = snap.events_seq, snap.correlations_seq
            log.info("engine state restored", generation=snap.generation, events_seq=snap.events_seq)
        delivered = await self._delivered_seq()
        await self._load_published()
        if delivered > self.last_seq:
            log.info("replaying events seen before the restart", first=self.last_seq + 1, last=delivered)
            async for msg in read_range(self.js, EVENTS, EVENTS_SUBJECT, self.last_seq + 1, delivered):
                await self._handle([msg], replay=True)
        self.ready = True

    async def _delivered_seq(self) -> int:
        try:
            info = await self.js.consumer_info(EVENTS, CORRELATOR)
        except NatsError as e:
            raise CorrelatorError(f"consumer {CORRELATOR} on {EVENTS} is not available: {e}") from e
        return int(info.delivered.stream_seq)

    async def _load_published(self) -> None:
        """Ids of the correlation revisions stored after the snapshot (not to be published twice)."""
        last = await last_seq(self.js, CORRELATIONS)
        first = self.correlations_seq + 1
        async for msg in read_range(
            self.js, CORRELATIONS, CORRELATIONS_SUBJECT, first, last, headers_only=True
        ):
            msg_id = (msg.headers or {}).get(MSG_ID_HEADER)
            if msg_id:
                self.suppress.add(msg_id)
        self.correlations_seq = max(self.correlations_seq, last)
        if self.suppress:
            log.info("correlation revisions already published", count=len(self.suppress))

    # --- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Pulls in one task and handles in this one, a pull ahead (bounded): the next messages
        travel while the engine works. Returns once `stopping` is set and what was pulled is handled."""
        sub = await self.js.pull_subscribe_bind(durable=CORRELATOR, stream=EVENTS)
        log.info("consuming", stream=EVENTS, durable=CORRELATOR)
        send, receive = anyio.create_memory_object_stream[list[Msg]](max_buffer_size=PULLS_AHEAD)

        async def pull() -> None:
            async with send:
                while not self.stopping:
                    try:
                        msgs = await sub.fetch(self.settings.fetch_batch, timeout=self.settings.fetch_timeout)
                    except TimeoutError:  # nats-py raises its own or asyncio's, both TimeoutError
                        msgs = []
                    await send.send(msgs)

        async with anyio.create_task_group() as tg:
            tg.start_soon(pull)
            async with receive:
                async for msgs in receive:
                    if msgs:
                        self.last_input = time.monotonic()
                        await self._handle(msgs)
                    else:
                        await self._idle()
                    if self._snapshot_due() and (forked := self._fork()):
                        tg.start_soon(self._save, forked)
        await sub.unsubscribe()

    async def _handle(self, msgs: Sequence[Msg], *, replay: bool = False) -> None:
        started = time.perf_counter()
        out: list[Correlation] = []
        done: list[Msg] = []
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            if seq <= self.last_seq:  # redelivered after we processed it (ack lost or restart)
                done.append(msg)
                continue
            try:
                events = decode_events(msg.headers, msg.data)
            except DecodeError as e:
                await self._dead_letter(msg, seq, f"cannot decode: {e}", replay)
                self.last_seq = seq
                continue
            try:
                out.extend(self._process(events))
            except (ContractError, ValueError, KeyError, TypeError, AttributeError) as e:
                # An event the engine cannot take must not stop the stream: it is parked with the reason.
                log.error("engine failed on a message", seq=seq, error=repr(e))
                self.metrics.error("engine")
                await self._dead_letter(msg, seq, f"engine error: {e!r}", replay)
            self.last_seq = seq
            self.since_snapshot += len(events)
            done.append(msg)
        await self._publish(out)
        if not replay:
            for msg in done:
                await msg.ack()
        self.metrics.processing.observe(time.perf_counter() - started)

    def _process(self, events: list[events_pb2.Event]) -> list[Correlation]:
        out: list[Correlation] = []
        process = self.engine.process_pb
        for ev in events:
            out.extend(process(ev))
        if events:
            self.events_in += len(events)
            self.metrics.received.inc(len(events))
            t = events[-1].time
            self.last_event_ns = max(self.last_event_ns, t.seconds * NS + t.nanos)
        return out

    async def _publish(self, correlations: list[Correlation]) -> None:
        receipts: list[Receipt] = []
        for corr in correlations:
            msg_id = correlation_msg_id(corr)
            if msg_id in self.suppress:
                self.suppress.discard(msg_id)
                continue
            payload = correlation_to_pb(corr).SerializeToString()
            subject = correlation_subject(corr.confidence, corr.type)
            receipts.append(await self.publisher.publish_message(subject, payload, msg_id=msg_id))
        for receipt in receipts:
            ack = await receipt.wait()
            self.correlations_seq = max(self.correlations_seq, ack.seq)
            self.metrics.published.inc()
            self.published += 1

    async def _dead_letter(self, msg: Msg, seq: int, error: str, replay: bool) -> None:
        self.metrics.drop("dead_letter")
        if replay:
            return  # parked before the restart; its DLQ message id makes a repeat harmless anyway
        log.warning("message sent to the dead-letter queue", seq=seq, error=error)
        headers = dict(msg.headers or {})
        receipt = await publish_dead_letter(
            self.publisher, COMPONENT, msg.data, error=error, stream=EVENTS, stream_seq=seq, headers=headers
        )
        await receipt.wait()
        await msg.term()

    async def _idle(self) -> None:
        """A quiet stream: let event time follow the wall clock so time-decided results come out."""
        idle = time.monotonic() - self.last_input
        if self.last_event_ns and idle >= self.settings.idle_advance:
            watermark = self.last_event_ns + int(idle * NS)
            if watermark > self.advanced_to:
                self.advanced_to = watermark
                emitted = self.engine.advance(watermark)
                await self._publish(emitted)
                if emitted:  # wall-clock driven: a replay could not repeat it, so keep it now
                    self.since_snapshot += 1
                    if not self.snapshotting and (forked := self._fork()):
                        await self._save(forked)

    # --- snapshots ----------------------------------------------------------------------------

    def _snapshot_due(self) -> bool:
        if self.since_snapshot == 0 or self.snapshotting:
            return False
        return (
            self.since_snapshot >= self.settings.snapshot_events
            or time.monotonic() - self.last_snapshot >= self.settings.snapshot_interval
        )

    async def snapshot(self) -> None:
        """Takes a snapshot now and waits until it is stored (after one in progress, if any)."""
        while self.snapshotting:  # noqa: ASYNC110 - the loop's own snapshot task finishes it
            await anyio.sleep(0.05)
        if forked := self._fork():
            await self._save(forked)

    def _fork(self) -> tuple[ForkedSnapshot, int, int] | None:
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

    async def _save(self, forked: tuple[ForkedSnapshot, int, int]) -> None:
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

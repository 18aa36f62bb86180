"""The correlator on the consumer runtime: events in, correlations published, then the message acked.

Fed by `tapio_jetstream.Consumer` on the durable consumer `correlator` of TAPIO_EVENTS as a batch
handler (the messages already pulled, in stream order, one engine pass and one publish wait for all
of them); publishes through the Publisher. Snapshot scheduling is `service.snapshots` (mixed in),
the collector settings `service.memory`, the restart read-back `service.catchup`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import anyio
import attrs
from anyio.abc import TaskGroup
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from tapio_common.errors import ContractError
from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics, Health
from tapio_common.model import Correlation
from tapio_common.model.fast import correlation_to_pb
from tapio_correlator.engine import Engine
from tapio_correlator.engine.views import decode_views, view_ids
from tapio_correlator.errors import CorrelatorError
from tapio_correlator.service.catchup import replay_events, stored_revisions
from tapio_correlator.service.memory import settle_memory
from tapio_correlator.service.settings import RunnerSettings
from tapio_correlator.service.snapshots import Snapshots
from tapio_correlator.service.state_store import StateStore, StateStoreError
from tapio_jetstream import Consumer, ConsumerSettings, DecodeError, Delivery, Kind
from tapio_jetstream.layout import CORRELATOR, ConsumerSpec, production_layout
from tapio_jetstream.startup import until_answered
from tapio_publisher import Publisher, PublisherError, Receipt
from tapio_publisher.subjects import correlation_subject

__all__ = ["COMPONENT", "EngineFailure", "Runner", "UndecodableEvents", "correlation_msg_id", "settle_memory"]

log = get_logger(__name__)

EVENT_VIEWS: Kind[Any] = Kind("events", decode_views, view_ids)
"""TAPIO_EVENTS as the correlator reads it: each event an `engine.views.EventView` (context and k8s
kept as wire bytes until a rule or the topology needs them), for `Engine.process_view`."""

COMPONENT = "correlator"
NS = 1_000_000_000
MAX_PARTIAL = 1024  # messages remembered as part-way in the engine (bounded: each retried soon)
REPLAY_TRIES = 5  # tries of a replayed message the engine fails on (the consumer's max_deliver)
CLOCKS_APART = 60.0  # seconds a stream's creation (server clock) must follow a snapshot (ours) to count


def correlation_msg_id(corr: Correlation) -> str:
    """`Nats-Msg-Id` of a correlation revision: id + revision (a re-emitted revision is dropped)."""
    return f"{corr.id}:{corr.revision}"


class EngineFailure(CorrelatorError):
    """The engine raised on an event; the message is retried (and dead-lettered on its last delivery)."""

    stage = "engine"


class UndecodableEvents(EngineFailure, DecodeError):
    """Events of a decodable message whose `context`/`k8s` is malformed (found when the views
    decode parses them): bad input, so the message goes to the dead-letter queue at once (the
    runtime's decision for a DecodeError), after the rest of its events were processed."""

    stage = "decode"


class Runner(Snapshots):
    """One engine fed by the durable consumer `correlator` on TAPIO_EVENTS.

    Per pulled batch: engine over every message -> publish their correlations -> wait for the acks
    -> return one outcome per message (the runtime acks the good ones). An engine error on an event keeps what the events before it produced: those are in the
    engine and their correlations are published before the error is raised; the retry starts
    after them (`partial`). On the last delivery the failing events are skipped, the rest is
    processed and published, and the message goes to the dead-letter queue naming them.

    Restart safety: the engine state is snapshotted to a KV bucket with the last events-stream
    sequence it covers; on start the runner restores it, reads back the events after it (direct
    gets: no consumer is created), and does not re-publish correlation revisions that the
    correlations stream already holds. No snapshot is taken while a message is part-way in the
    engine or correlations wait to be confirmed.
    """

    def __init__(
        self,
        nc: NATS,
        publisher: Publisher,
        store: StateStore,
        settings: RunnerSettings,
        metrics: ComponentMetrics,
        consumer_settings: ConsumerSettings | None = None,
        *,
        spec: ConsumerSpec | None = None,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.publisher = publisher
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.engine = Engine(settings.engine)
        # The installation's names (NATS_SUBJECT_PREFIX) come with its publisher.
        self.subjects = publisher.subjects
        self._prefix = publisher.subjects.prefix
        self.spec = spec or production_layout(subjects=self.subjects).consumer(CORRELATOR)
        self.consumer = Consumer(
            nc,
            self.spec,
            EVENT_VIEWS,
            self,
            component=COMPONENT,
            publisher=publisher,
            metrics=metrics,
            settings=consumer_settings
            or ConsumerSettings(
                batch=settings.fetch_batch,
                expires=settings.fetch_timeout,
                linger=settings.batch_linger,
                dedup_window=0,  # one dedup, not two: the engine's seen ids (kept in snapshots) drop repeats
            ),
            on_idle=self._idle,
        )
        self.last_seq = 0  # last events-stream sequence wholly given to the engine
        self.correlations_seq = 0  # highest correlations-stream sequence confirmed
        self.suppress: set[str] = set()  # revisions already in the correlations stream
        self.partial: dict[int, tuple[int, str]] = {}  # stream seq -> (events in the engine, next id)
        self.unconfirmed: list[Correlation] = []  # produced, not yet confirmed published
        self.last_event_ns = 0
        self.last_input = time.monotonic()
        self.advanced_to = 0
        self._init_snapshots()
        self.ready = False
        self.url = ""
        self.published = 0
        self.events_in = 0
        self._duplicates = 0  # engine.duplicates already counted in the metrics
        self._undecodable = 0  # engine.undecodable already counted
        self._tg: TaskGroup | None = None

    @property
    def stopping(self) -> bool:
        return self.consumer._stopping

    @stopping.setter
    def stopping(self, value: bool) -> None:
        if value:
            self.consumer.stop()
        else:  # a test running the same runner again
            self.consumer._stopping = False

    # --- start-up -----------------------------------------------------------------------------

    async def recover(self, health: Health | None = None) -> None:
        """Restores the last snapshot and replays what the engine had seen after it; its reads wait
        out a cluster that cannot answer yet (a snapshot is refused only when damaged, never for a
        timeout)."""
        try:
            snap = await until_answered(self.nc, "the engine snapshot", self.store.load, health=health)
            if snap is not None:
                self.engine = Engine.restore(snap.engine)
                self._duplicates = self.engine.duplicates
                self._undecodable = self.engine.undecodable
                self.last_seq = await self._in_force(
                    self.subjects.events_stream, snap.events_seq, snap.taken_at, health
                )
                self.correlations_seq = await self._in_force(
                    self.subjects.correlations_stream, snap.correlations_seq, snap.taken_at, health
                )
                log.info("engine state restored", generation=snap.generation, events_seq=snap.events_seq)
        except (ContractError, StateStoreError) as e:
            # Never trusted, never run: the engine starts empty and rebuilds from what the streams hold.
            log.error("engine snapshot refused, recovering by catch-up from the stream", reason=str(e))
            self.metrics.error("snapshot_refused")
            self.engine = Engine(self.engine.cfg)
            self.last_seq = self.correlations_seq = 0
        delivered = await until_answered(
            self.nc, f"the durable consumer {self.spec.durable}", self._delivered_seq, health=health
        )
        after = self.correlations_seq
        revisions, self.correlations_seq = await until_answered(
            self.nc,
            f"the read-back of {self.subjects.correlations_stream}",
            lambda: stored_revisions(self.nc, after, self.subjects),
            health=health,
        )
        self.suppress |= revisions
        if self.suppress:
            log.info("correlation revisions already published", count=len(self.suppress))
        if delivered > self.last_seq:
            log.info("replaying events seen before the restart", first=self.last_seq + 1, last=delivered)
            await until_answered(  # a read that fails part way resumes after the last event replayed
                self.nc,
                f"the replay of {self.subjects.events_stream}",
                lambda: self._replay(delivered),
                health=health,
            )
        self.ready = True

    async def _in_force(self, stream: str, seq: int, taken_at: float, health: Health | None) -> int:
        """The snapshot's sequence of `stream`, or 0 when the stream was made anew since (deleted and
        provisioned again, a lost volume: its sequences start at 1 again, under `seq`), so that
        its messages are taken from its start instead of being passed over as processed."""
        info = await until_answered(
            self.nc, f"the stream {stream}", lambda: self.js.stream_info(stream), health=health
        )
        created = info.created.timestamp() if info.created is not None else 0.0
        last = int(info.state.last_seq)
        if last < seq or created > taken_at + CLOCKS_APART:
            log.warning(
                "stream made anew since the snapshot: its messages are read from its start",
                stream=stream,
                snapshot_seq=seq,
                last_seq=last,
            )
            return 0
        return seq

    async def _replay(self, delivered: int) -> None:
        """The events after the snapshot into the engine. A message the engine fails on is tried
        again from the failing event (as its redelivery would be: the consumer will not give it
        again, `last_seq` covers it), the last try skipping the failing events; before, the rest of
        the message was left out of the rebuilt state."""
        async for delivery in replay_events(
            self.nc, self.last_seq + 1, delivered, self.subjects, self.spec.takes
        ):
            for attempt in range(1, REPLAY_TRIES + 1):
                if attempt == REPLAY_TRIES:  # as a last delivery: the failing events are skipped
                    delivery = attrs.evolve(delivery, max_deliver=delivery.num_delivered)
                try:
                    await self.handle(delivery)
                    break
                except EngineFailure as e:  # undecodable, or failing still: dead-lettered before the restart
                    if attempt < REPLAY_TRIES and not isinstance(e, UndecodableEvents):
                        continue
                    self.partial.pop(delivery.stream_seq, None)
                    self.last_seq = max(self.last_seq, delivery.stream_seq)
                    log.warning("replayed message failed again", seq=delivery.stream_seq, error=str(e))
                    break

    async def _delivered_seq(self) -> int:
        try:
            info = await self.js.consumer_info(self.spec.stream, self.spec.durable)
        except (NatsError, TimeoutError) as e:
            raise CorrelatorError(
                f"consumer {self.spec.durable} on {self.spec.stream} is not available: {e}"
            ) from e
        return int(info.delivered.stream_seq)

    # --- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Consumes until `stopping` is set; what was pulled is handled and acked first."""
        settle_memory()
        async with anyio.create_task_group() as tg:  # also waits for a snapshot being saved
            self._tg = tg
            try:
                await self.consumer.run()
            finally:
                self._tg = None

    async def handle_batch(self, deliveries: Sequence[Delivery[Any]]) -> list[BaseException | None]:
        """The consumer runtime's batch handler: the messages already pulled go through the engine in
        one pass, their correlations are published together, and it returns once the stream stored
        all of them (one publish wait per pulled batch, not per message). Outcome per message: None
        (acked) or the EngineFailure of the message the engine failed on (retried from that event)."""
        if self.unconfirmed:
            await self._confirm()  # an earlier batch's correlations first (their publish failed)
        outcomes: list[BaseException | None] = [self._feed(d) for d in deliveries]
        self._count_duplicates()
        await self._confirm()
        self._maybe_snapshot()
        return outcomes

    def _count_duplicates(self) -> None:
        """Events the engine dropped as already taken (redelivered, re-published in a new batch, or
        replayed after a restart) as dropped{reason="duplicate"}, as the runtime's window would."""
        taken = self.engine.duplicates - self._duplicates
        if taken > 0:
            self.metrics.drop("duplicate", taken)
        self._duplicates = self.engine.duplicates
        bad = self.engine.undecodable - self._undecodable
        if bad > 0:  # a buffered event's context/k8s found malformed when a rule read it
            self.metrics.drop("undecodable", bad)
            log.warning("buffered events could not be decoded when a rule read them; skipped", count=bad)
        self._undecodable = self.engine.undecodable

    async def handle(self, delivery: Delivery[Any]) -> None:
        """One message (the restart catch-up): returns once its correlations are stored."""
        if self.unconfirmed:
            await self._confirm()
        failure = self._feed(delivery)
        self._count_duplicates()
        await self._confirm()
        if failure is not None:
            raise failure
        self._maybe_snapshot()

    def _feed(self, delivery: Delivery[Any]) -> EngineFailure | None:
        """Gives one message's events to the engine and queues their correlations in `unconfirmed`.

        An engine error on an event keeps what the events before it produced (queued, published
        with the rest) and remembers where the retry resumes (`partial`); on the last delivery the
        failing events are skipped and the rest is processed. An event that cannot be decoded (a
        malformed context/k8s, found when it is parsed) is bad input: no delivery will decode it,
        so it is skipped at once, the rest is processed, and the message is dead-lettered at once
        (`UndecodableEvents`). Returns the failure, or None."""
        seq = delivery.stream_seq
        if seq <= self.last_seq and seq not in self.partial:  # redelivered after we processed it
            return None
        self.last_input = time.monotonic()
        events = delivery.items
        start = self._resume_at(seq, events)
        out = self.unconfirmed
        failed: list[str] = []
        undecodable: list[str] = []
        process = self.engine.process_view
        i = start
        n = len(events)
        while i < n:
            j = i
            try:
                for j in range(i, n):
                    out += process(events[j])
                i = n
            except DecodeError as e:  # bad input inside the message: never retried
                log.warning("an event cannot be decoded", seq=seq, event_id=events[j].id, error=str(e))
                undecodable.append(f"{events[j].id} ({e})")
                i = j + 1
            except Exception as e:  # an engine failure must not lose what the events before it gave
                log.error("engine failed on an event", seq=seq, event_id=events[j].id, exc_info=e)
                if not (delivery.last_delivery or undecodable):
                    self._remember_partial(seq, j, events)
                    self._count(events, start, j)
                    failure = EngineFailure(
                        f"engine failed on event {events[j].id} ({type(e).__name__}: {e})"
                    )
                    failure.__cause__ = e
                    return failure
                failed.append(events[j].id)
                i = j + 1
        self.partial.pop(seq, None)
        self._count(events, start, n)
        self.last_seq = max(self.last_seq, seq)
        if undecodable:  # the rest is in; the message goes to the dead-letter queue now
            also = f"; engine failed on events {', '.join(failed)}" if failed else ""
            return UndecodableEvents(f"cannot decode events {', '.join(undecodable)}{also}")
        if failed:  # last delivery: the rest is in; the message goes to the dead-letter queue
            return EngineFailure(f"engine failed on events {', '.join(failed)}")
        return None

    def _remember_partial(self, seq: int, applied: int, events: Sequence[Any]) -> None:
        self.partial[seq] = (applied, events[applied].id)
        while len(self.partial) > MAX_PARTIAL:
            self.partial.pop(next(iter(self.partial)))

    def _resume_at(self, seq: int, events: Sequence[Any]) -> int:
        """Where a retried message continues: at the event the engine failed on (found by id, as
        the dedup window may have taken out events that another message carried meanwhile)."""
        if seq not in self.partial:
            return 0
        index, event_id = self.partial[seq]
        if index < len(events) and events[index].id == event_id:
            return index
        for k, ev in enumerate(events):
            if ev.id == event_id:
                return k
        return len(events)  # the failing event came in another message meanwhile

    def _count(self, events: Sequence[Any], start: int, end: int) -> None:
        if end > start:
            self.events_in += end - start
            self.since_snapshot += end - start
            t = events[end - 1].time
            self.last_event_ns = max(self.last_event_ns, t.seconds * NS + t.nanos)

    async def _confirm(self) -> None:
        """Publishes what waits and returns when the stream stored all of it (raises PublisherError
        with what is not confirmed kept for the next try: their message ids make repeats harmless)."""
        receipts: list[tuple[Correlation, Receipt]] = []
        for corr in self.unconfirmed:
            msg_id = correlation_msg_id(corr)
            if msg_id in self.suppress:
                self.suppress.discard(msg_id)
                continue
            payload = correlation_to_pb(corr).SerializeToString()
            subject = correlation_subject(corr.confidence, corr.type, self._prefix)
            receipts.append((corr, await self.publisher.publish_message(subject, payload, msg_id=msg_id)))
        try:
            for _corr, receipt in receipts:
                ack = await receipt.wait()
                self.correlations_seq = max(self.correlations_seq, ack.seq)
                self.metrics.published.inc()
                self.published += 1
        except PublisherError:
            self.unconfirmed = [corr for corr, receipt in receipts if not receipt.done]
            raise
        self.unconfirmed = []

    async def _idle(self) -> None:
        """A quiet stream: let event time follow the wall clock so time-decided results come out."""
        await self._advance_idle()
        self._maybe_snapshot()

    async def _advance_idle(self) -> None:
        idle = time.monotonic() - self.last_input
        if self.last_event_ns and idle >= self.settings.idle_advance:
            watermark = self.last_event_ns + int(idle * NS)
            if watermark > self.advanced_to:
                self.advanced_to = watermark
                emitted = self.engine.advance(watermark)
                self.unconfirmed += emitted
                try:
                    await self._confirm()
                except PublisherError as e:
                    log.error("correlations not confirmed, retried with the next message", error=str(e))
                    return
                if emitted:  # wall-clock driven: a replay could not repeat it, so keep it now
                    self.since_snapshot += 1
                    if not self.snapshotting and (forked := self._fork()):
                        await self._save(forked)

"""The async JetStream publisher every collector uses: batching, pipelined acks, dedup ids, backpressure, spool.

Fed by the components that publish (collectors through the harness, the pipeline, correlator and
exporter): events or payloads go through the encoder (batches, ids, size limits) and are handed to
the `Sender` (tapio_publisher.sender: ack window, spool, outcomes). This module holds the public
API and the lifecycle: connecting (or retrying in the background), the linger and monitor loops,
flush, and shutdown (flush, else spool).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType

import anyio
from anyio.abc import TaskGroup
from nats.aio.client import Client
from prometheus_client import CollectorRegistry

from tapio.events.v1 import events_pb2
from tapio_common.config import NatsConfig
from tapio_common.errors import ContractError, NatsUnavailableError
from tapio_common.logging import get_logger
from tapio_common.model import Event
from tapio_common.model.convert import event_to_proto
from tapio_common.nats.connect import connect
from tapio_common.subjects import DEFAULT as DEFAULT_SUBJECTS
from tapio_common.subjects import Subjects
from tapio_publisher import atomic
from tapio_publisher.atomic import AtomicReceipt
from tapio_publisher.encoder import Encoder, field_of, group_by_subject
from tapio_publisher.errors import EncodeError, PublisherClosedError, PublisherError, TooLargeError
from tapio_publisher.ids import IdGenerator
from tapio_publisher.message import Outgoing
from tapio_publisher.metrics import PublisherMetrics
from tapio_publisher.receipts import Receipt
from tapio_publisher.sender import YIELD_BYTES, ConfirmHook, Sender
from tapio_publisher.settings import PublisherSettings

log = get_logger(__name__)

__all__ = ["YIELD_BYTES", "ConfirmHook", "Publisher"]


class Publisher:
    """Publishes events to JetStream with at-least-once delivery and server-side dedup.

    Use as `async with Publisher(settings, nc=client) as pub:` (or `nats=NatsConfig` to connect,
    and keep retrying in the background while spooling if NATS is down at start). Hot paths:
    `publish_encoded_many(subject, [serialized Event, ...])` and `publish_many(events_pb2 events)`;
    `publish_model` takes attrs models; `publish_message` any payload, with a Receipt to await;
    `publish_atomic` several such messages stored all or none with one JetStream ack per batch.
    Leaving the block (also on cancellation/SIGTERM) flushes, or spools what is not acknowledged.
    """

    def __init__(
        self,
        settings: PublisherSettings,
        *,
        nc: Client | None = None,
        nats: NatsConfig | None = None,
        registry: CollectorRegistry | None = None,
        on_confirm: ConfirmHook | None = None,
        subjects: Subjects = DEFAULT_SUBJECTS,
    ) -> None:
        if (nc is None) == (nats is None):
            raise PublisherError("give the publisher a connected client (nc=) or a NATS config (nats=)")
        self.settings = settings
        # The installation's names (NATS_SUBJECT_PREFIX): event subjects, and the DLQ of consumers.
        self.subjects = subjects
        self.metrics = PublisherMetrics(registry)
        self._nc = nc
        self._nats_cfg = nats
        self._ids = IdGenerator()
        self._encoder = Encoder(settings, self._ids)
        self._batching = settings.batching
        self._sender = Sender(settings, self.metrics, on_confirm)
        self._dispatch_all = self._sender.dispatch_all
        self._spooler = self._sender.spooler
        self._tg: TaskGroup | None = None
        self._closing = False
        spool = self._spooler.spool
        self.metrics.bind(self._sender.in_flight, lambda: spool.pending_events, lambda: spool.total_bytes)

    # -- lifecycle ----------------------------------------------------------------------------------

    async def __aenter__(self) -> Publisher:
        recovered = await anyio.to_thread.run_sync(self._spooler.spool.open)
        self._spooler.active = not self._spooler.spool.empty
        if recovered.records:
            log.info(
                "spool holds a previous run's messages", records=recovered.records, events=recovered.events
            )
        retry_connect = False
        if self._nc is None:
            assert self._nats_cfg is not None
            try:
                self._nc = await connect(self._nats_cfg, self.settings.name)
            except NatsUnavailableError as e:
                log.warning("NATS unreachable at start: spooling until it answers", error=str(e))
                retry_connect = True
        if self._nc is not None:
            await self._attach()
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        if retry_connect:
            self._tg.start_soon(self._connect_loop)
        loops = (self._linger_loop, self._monitor_loop, self._spooler.writer_loop, self._spooler.replay_loop)
        for loop in loops:
            self._tg.start_soon(loop)
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None
        try:
            with anyio.CancelScope(shield=True):
                await self._shutdown()
        finally:
            self._tg.cancel_scope.cancel()
            try:
                await self._tg.__aexit__(None, None, None)  # the body's own exception stays unwrapped
            finally:
                with anyio.CancelScope(shield=True):
                    await self._finish()
        return None

    async def _attach(self) -> None:
        assert self._nc is not None
        if self._encoder.limit_to(self._nc.max_payload):
            log.info("server max_payload is below max_msg_size: using it", max_payload=self._nc.max_payload)
        await self._sender.attach(self._nc)

    async def _connect_loop(self) -> None:
        assert self._nats_cfg is not None
        while self._nc is None:
            await anyio.sleep(max(1.0, self._nats_cfg.reconnect_wait))
            try:
                self._nc = await connect(self._nats_cfg, self.settings.name)
            except NatsUnavailableError as e:
                log.debug("NATS still unreachable", error=str(e))
                continue
            await self._attach()

    async def _shutdown(self) -> None:
        self._closing = True
        await self._dispatch_all(self._encoder.seal_all())
        sender = self._sender
        with anyio.move_on_after(self.settings.shutdown_timeout):
            while sender.in_flight() and sender.connected():
                await sender.wait_progress()
        if sender.window is not None and sender.in_flight():
            left = sender.window.take_all()
            log.warning("shutdown: spooling unacknowledged messages", messages=len(left))
            sender.spool_left(left, "shutdown")

    async def _finish(self) -> None:
        self.metrics.sync()
        await self._spooler.flush_to_disk()
        await anyio.to_thread.run_sync(self._spooler.spool.close)
        self._sender.receipts.fail_all(PublisherClosedError("publisher closed before confirmation (spooled)"))
        if self._sender.window is not None:
            await self._sender.window.stop()
        if self._nats_cfg is not None and self._nc is not None:
            await self._nc.close()
        spool = self._spooler.spool
        if not spool.empty:
            log.info("publisher closed with events in the spool", events=spool.pending_events)

    # -- public API ---------------------------------------------------------------------------------

    async def publish(self, event: events_pb2.Event) -> None:
        """One protobuf event (an id is assigned in place if it has none)."""
        await self.publish_many((event,))

    async def publish_many(self, events: Iterable[events_pb2.Event]) -> None:
        """Protobuf events of any classes, each routed to its subject (CONTRACT.md §2). Events without
        an id get one (set in place). An event that has no subject (no source) is dropped, counted
        (`encode_error`) and raised as EncodeError after the others are taken."""
        groups, unroutable = group_by_subject(events, self._ids, self.subjects.prefix)
        await self._take(list(groups.items()))
        if unroutable:
            self.metrics.drop("encode_error", len(unroutable))
            log.warning("events without a subject dropped", events=len(unroutable), error=str(unroutable[0]))
            raise unroutable[0]

    async def publish_model(self, event: Event) -> None:
        """An attrs model event (converted at the edge; slower than the protobuf paths)."""
        try:
            message = event_to_proto(event)
        except ContractError as e:
            self.metrics.drop("encode_error")
            raise EncodeError(field_of(str(e)), str(e)) from e
        await self.publish_many((message,))

    async def publish_encoded(self, subject: str, data: bytes) -> None:
        """One serialized Event on `subject`."""
        await self._take([(subject, (data,))])

    async def publish_encoded_many(self, subject: str, datas: Sequence[bytes]) -> None:
        """The hot path: serialized Events sharing `subject` (see subjects.py). An event without a
        leading id field gets one. Events larger than the limit are dropped (counted, reason
        `too_large`) and TooLargeError is raised after the others are taken. All or none are
        taken, even if the caller is cancelled meanwhile."""
        if self._closing or not self._batching:
            await self._take([(subject, datas)])
            return
        self.metrics.received_pending += len(datas)  # the common case, with no layer in between
        now = time.monotonic()
        batcher = self._encoder.batcher
        sealed, oversized = batcher.add_many(subject, datas, now)
        # Batches whose linger passed go out now too: a caller that never yields (a producer behind
        # its rate) would otherwise hold them until the linger task gets a turn, seconds later for
        # the subjects that never fill a batch (the rare ones: evictions, restarts, OOM kills).
        sealed += batcher.due(now)
        if sealed:
            await self._dispatch_all([self._encoder.encode_batch(b) for b in sealed])
        if oversized:
            self.metrics.drop("too_large", len(oversized))
            raise TooLargeError(oversized[0].size, self._encoder.event_limit)

    async def _take(self, groups: list[tuple[str, Sequence[bytes]]]) -> None:
        if self._closing:
            raise PublisherClosedError("publisher is closed")
        now = time.monotonic()
        ready: list[Outgoing] = []
        too_large: list[int] = []
        for subject, datas in groups:
            self.metrics.count_received(len(datas))
            out, big = self._encoder.take(subject, datas, now)
            ready += out
            too_large += big
        await self._dispatch_all(ready)
        if too_large:
            self.metrics.drop("too_large", len(too_large))
            raise TooLargeError(too_large[0], self._encoder.event_limit)

    async def publish_message(
        self, subject: str, payload: bytes, *, msg_id: str, headers: Mapping[str, str] | None = None
    ) -> Receipt:
        """Any payload (a correlation, an alert...) with the same ack/retry/spool guarantees; the
        Receipt's `wait()` returns the JetStream ack once the message is stored."""
        if self._closing:
            raise PublisherClosedError("publisher is closed")
        try:
            out = self._encoder.message(subject, payload, msg_id, headers)
        except TooLargeError:
            self.metrics.drop("too_large")
            raise
        self.metrics.count_received(1)
        receipt = self._sender.receipts.add(msg_id)
        await self._dispatch_all([out])
        return receipt

    async def publish_messages(
        self, messages: Sequence[tuple[str, bytes, str]], *, receipts: bool = True
    ) -> list[Receipt]:
        """Several `publish_message`s at once (`(subject, payload, msg_id)` each, in order): each its
        own message with its own id, the same guarantees, handed over in one dispatch. With
        `receipts=False` none is made (returns []): the caller learns they are stored from `flush`,
        as for events, and each ack is settled without parsing its stream sequence."""
        if self._closing:
            raise PublisherClosedError("publisher is closed")
        message = self._encoder.message
        outs = []
        for subject, payload, msg_id in messages:
            try:
                out = message(subject, payload, msg_id, None)
            except TooLargeError:
                self.metrics.drop("too_large")
                raise
            out.want_ack = receipts
            outs.append(out)
        self.metrics.count_received(len(outs))
        made = [self._sender.receipts.add(out.msg_id) for out in outs] if receipts else []
        await self._dispatch_all(outs)
        return made

    async def publish_atomic(self, messages: Sequence[tuple[str, bytes, str]]) -> AtomicReceipt:
        """Messages `(subject, payload, msg_id)` in order, as JetStream atomic batches of up to
        `atomic_max` (nats-server 2.12+, the stream with allow_atomic): ONE ack a batch instead of
        one a message. The guarantees of `publish_message`: a batch that fails (a message id stored
        already refuses the whole batch, a stream without allow_atomic, a timeout, NATS down) is
        published again one message at a time, each deduplicated and spooled if need be; the
        receipt's `wait()` returns once every message is stored (see tapio_publisher.atomic)."""
        if self._closing:
            raise PublisherClosedError("publisher is closed")
        outs = []
        for subject, payload, msg_id in messages:
            try:
                outs.append(self._encoder.message(subject, payload, msg_id, None))
            except TooLargeError:
                self.metrics.drop("too_large")
                raise
        self.metrics.count_received(len(outs))
        receipt = AtomicReceipt(self._one_by_one)
        size = min(self.settings.atomic_max, atomic.MAX_MESSAGES)
        for start in range(0, len(outs), size):
            chunk = outs[start : start + size]
            commit = await self._sender.send_atomic(chunk, self._ids())
            receipt.add(chunk, commit, [] if commit is not None else await self._one_by_one(chunk))
        return receipt

    async def _one_by_one(self, outs: list[Outgoing]) -> list[Receipt]:
        receipts = [self._sender.receipts.add(out.msg_id) for out in outs]
        await self._dispatch_all(outs)
        return receipts

    async def flush(self) -> None:
        """Seals open batches and returns once everything handed over so far is confirmed (or
        dropped and counted), including what waits in the spool. Bound it with anyio.fail_after."""
        await self._dispatch_all(self._encoder.seal_all())
        self.metrics.sync()
        while not self._settled():
            await self._sender.wait_progress()
        self.metrics.sync()

    @property
    def connected(self) -> bool:
        return self._connected()

    @property
    def spooling(self) -> bool:
        """True while messages go through the spool (NATS down, or replay not finished)."""
        return self._spooler.active

    # -- internals ----------------------------------------------------------------------------------

    def _connected(self) -> bool:
        return self._sender.connected()

    def _settled(self) -> bool:
        return self._encoder.batcher.open_bytes == 0 and self._sender.in_flight() == 0 and self._spooler.idle

    async def _linger_loop(self) -> None:
        linger = self.settings.batch_linger
        while True:
            deadline = self._encoder.batcher.next_deadline()
            now = time.monotonic()
            if deadline is None or deadline > now:
                wait = min(linger, deadline - now) if deadline is not None else linger
                await anyio.sleep(max(wait, 0.001))
                continue
            await self._dispatch_all(self._encoder.due(now))

    async def _monitor_loop(self) -> None:
        while True:
            await anyio.sleep(self.settings.tick)
            self.metrics.sync()
            self._sender.check_connection()
            self._sender.expire()

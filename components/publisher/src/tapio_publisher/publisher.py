"""The async JetStream publisher every collector uses: batching, pipelined acks, dedup ids, backpressure, spool."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType

import anyio
import anyio.lowlevel
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
from tapio_publisher.errors import (
    EncodeError,
    PublisherClosedError,
    PublisherError,
    PublishRejectedError,
    TooLargeError,
)
from tapio_publisher.ids import IdGenerator
from tapio_publisher.message import Ack, Failure, Outgoing
from tapio_publisher.metrics import PublisherMetrics
from tapio_publisher.receipts import Receipt, Receipts
from tapio_publisher.settings import PublisherSettings
from tapio_publisher.spooler import Spooler
from tapio_publisher.window import Window

log = get_logger(__name__)

ConfirmHook = Callable[[int, float], None]
YIELD_BYTES = 128 * 1024


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
        self._on_confirm = on_confirm
        self._ids = IdGenerator()
        self._encoder = Encoder(settings, self._ids)
        self._batching = settings.batching
        self._unyielded = 0
        self._window: Window | None = None
        self._receipts = Receipts()
        self._progress: anyio.Event | None = None  # exists while flush/close waits
        self._tg: TaskGroup | None = None
        self._closing = False
        self._was_up = False
        self._atomic = True  # off once the stream says it does not allow atomic batches
        self._spooler = Spooler(
            settings, self.metrics,
            connected=self._connected, send=self._send, wants_ack=self._receipts.wanted,
            on_drop=self._drop, on_progress=self._notify,
        )  # fmt: skip
        spool = self._spooler.spool
        self.metrics.bind(
            lambda: len(self._window) if self._window is not None else 0,
            lambda: spool.pending_events,
            lambda: spool.total_bytes,
        )

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
        self._window = Window(self._nc, self.settings.max_inflight, self._on_ack, self._on_fail)
        await self._window.start()
        self._was_up = self._nc.is_connected
        if self._encoder.limit_to(self._nc.max_payload):
            log.info("server max_payload is below max_msg_size: using it", max_payload=self._nc.max_payload)
        self._spooler.wake_replay()

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
        with anyio.move_on_after(self.settings.shutdown_timeout):
            while self._window is not None and len(self._window) and self._connected():
                await self._wait_progress()
        if self._window is not None and len(self._window):
            left = self._window.take_all()
            log.warning("shutdown: spooling unacknowledged messages", messages=len(left))
            self._spool_left(left, "shutdown")

    async def _finish(self) -> None:
        self.metrics.sync()
        await self._spooler.flush_to_disk()
        await anyio.to_thread.run_sync(self._spooler.spool.close)
        self._receipts.fail_all(PublisherClosedError("publisher closed before confirmation (spooled)"))
        if self._window is not None:
            await self._window.stop()
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

    async def _dispatch_all(self, outs: list[Outgoing]) -> None:
        """Sends (or spools) messages the publisher took: shielded, so a cancelled producer never
        loses what it handed over (the wait is bounded by ack_timeout or goes to the spool)."""
        if outs:
            with anyio.CancelScope(shield=True):
                for out in outs:
                    await self._dispatch(out)
                    # Give the client's flusher a turn every ~128 KiB or 128 messages, so messages
                    # leave and acks come back while producing (pipelining) without a write per message.
                    self._unyielded += len(out.payload) + 1024
                    if self._unyielded >= YIELD_BYTES:
                        self._unyielded = 0
                        await anyio.lowlevel.checkpoint()

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
        receipt = self._receipts.add(msg_id)
        await self._dispatch_all([out])
        return receipt

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
            commit = await self._send_atomic(chunk)
            receipt.add(chunk, commit, [] if commit is not None else await self._one_by_one(chunk))
        return receipt

    async def _one_by_one(self, outs: list[Outgoing]) -> list[Receipt]:
        receipts = [self._receipts.add(out.msg_id) for out in outs]
        await self._dispatch_all(outs)
        return receipts

    async def _send_atomic(self, outs: list[Outgoing]) -> Receipt | None:
        """Sends `outs` as one atomic batch; its commit's receipt, or None when it is better sent one
        by one (a single message, atomic batches refused by the stream, NATS down, spooling)."""
        window, nc = self._window, self._nc
        if len(outs) < 2 or not self._atomic or self._spooler.active or not self._check_connection():
            return None
        assert window is not None
        assert nc is not None
        return await atomic.send_batch(nc, window, self._receipts, outs, self._ids())

    def _spool_left(self, left: list[Outgoing], reason: str) -> None:
        """Messages taken out of the window to the spool; an atomic batch's commit fails its receipt
        instead (its messages are then published one by one)."""
        error = PublisherError(f"atomic batch unconfirmed ({reason})")
        for out in left:
            if out.atomic:
                self._receipts.fail(out.msg_id, error)
        self._spooler.put_nowait([out for out in left if not out.atomic], reason)

    async def flush(self) -> None:
        """Seals open batches and returns once everything handed over so far is confirmed (or
        dropped and counted), including what waits in the spool. Bound it with anyio.fail_after."""
        await self._dispatch_all(self._encoder.seal_all())
        self.metrics.sync()
        while not self._settled():
            await self._wait_progress()
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
        nc = self._nc
        return nc is not None and self._window is not None and nc.is_connected

    def _check_connection(self) -> bool:
        up = self._connected()
        if up != self._was_up:
            self._was_up = up
            if up:
                log.info("NATS reachable again", spooled_events=self._spooler.spool.pending_events)
                self._spooler.wake_replay()
            else:
                left = self._window.take_all() if self._window is not None else []
                log.warning("NATS unreachable: spooling", in_flight=len(left))
                self._spool_left(left, "disconnected")
        return up

    async def _dispatch(self, out: Outgoing) -> None:
        if self._spooler.active or not self._check_connection():
            await self._spooler.put(out)
            return
        await self._send(out)

    async def _send(self, out: Outgoing) -> None:
        window = self._window
        assert window is not None
        if window.full:
            start = time.monotonic()
            await window.wait_room()
            self.metrics.backpressure.observe(time.monotonic() - start)
            if out.replay is None and (self._spooler.active or not self._check_connection()):
                await self._spooler.put(out)
                return
        try:
            await window.send(out)
        except PublisherError as e:
            log.warning("publish failed; spooling", error=str(e))
            if out.replay is not None:
                raise
            self._spooler.put_nowait([out], "publish_error")

    def _on_ack(self, out: Outgoing, ack: Ack) -> None:
        self.metrics.published_pending += out.events
        latency = time.monotonic() - out.sent_at
        self.metrics.ack_latency.observe(latency)
        if self._on_confirm is not None:
            self._on_confirm(out.events, latency)
        if out.replay is not None:
            out.replay.resolved(True)
        if out.want_ack:
            self._receipts.resolve(out.msg_id, ack)
        self._notify()

    def _on_fail(self, out: Outgoing, failure: Failure) -> None:
        if out.atomic:  # the batch goes again one message at a time (AtomicReceipt.wait)
            if self._atomic and atomic.refused_as_disabled(failure.detail):
                self._atomic = False
                log.warning("the stream does not allow atomic batches: publishing one by one",
                            subject=out.subject, detail=failure.detail)  # fmt: skip
            self._receipts.fail(
                out.msg_id, PublisherError(f"atomic batch {failure.reason}: {failure.detail}")
            )
        elif failure.retryable:
            self._spooler.put_nowait([out], failure.reason)
        else:
            self.metrics.error(failure.reason)
            self._drop(out, "rejected", failure.detail)
            if out.replay is not None:
                out.replay.resolved(True)  # never retried: move past it
        self._notify()

    def _drop(self, out: Outgoing, reason: str, detail: str) -> None:
        self.metrics.drop(reason, out.events)
        log.error("message dropped", reason=reason, subject=out.subject, msg_id=out.msg_id, detail=detail)
        error = PublishRejectedError(f"message {out.msg_id} dropped ({reason}): {detail}")
        self._receipts.fail(out.msg_id, error)

    def _settled(self) -> bool:
        return (
            self._encoder.batcher.open_bytes == 0
            and (self._window is None or len(self._window) == 0)
            and self._spooler.idle
        )

    def _notify(self) -> None:
        if self._progress is not None:
            self._progress.set()
            self._progress = None

    async def _wait_progress(self) -> None:
        if self._progress is None:
            self._progress = anyio.Event()
        with anyio.move_on_after(self.settings.tick):
            await self._progress.wait()

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
            self._check_connection()
            if self._window is not None:
                timeout = self.settings.ack_timeout
                for out in self._window.expired(time.monotonic(), timeout):
                    self._on_fail(out, Failure("timeout", f"no ack within {timeout}s", True))

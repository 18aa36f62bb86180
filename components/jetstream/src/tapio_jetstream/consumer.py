"""The consumer runtime: one durable pull consumer, one handler, ack only after every effect.

Every JetStream consumer of Tapio (correlator, pipeline, SIEM exporter) runs on this loop: bind the
durable consumer by name (create it where the user may), pull with direct pull requests
(`tapio_jetstream.pull`), decode each message with the stream's `Kind`, take out what the dedup
window already saw, give the rest to the handler as one `Delivery`, and then:

- the handler returned: every effect is confirmed, the message is acked;
- it raised: counted under its stage (a bug, e.g. TypeError, logged with its traceback), nak'ed with
  a growing delay; on the last delivery (`max_deliver`) sent to `tapio.dlq.{component}` with
  `Tapio-Error`, `Tapio-Stream-Seq`, `Tapio-Stream`, then terminated (AckTerm);
- undecodable: to the dead-letter queue at once.

A handler that fails part way through a message sees the whole message again: its effects must be
idempotent by their ids (publish with a `Nats-Msg-Id`). Messages are handled one at a time, in order;
a `BatchHandler` instead gets the messages already pulled (up to `batch`) at once, in order, and says
per message whether it succeeded, each settled as above (for sinks that confirm a batch at a time).
With `batches_in_flight` n > 1 a BatchHandler's batches overlap: the next batch is decoded (in the
loop, in stream order) while up to n earlier ones are in the handler (publishing, awaiting their
confirmations); batches are still settled one after the other, in stream order.
`stop()` (SIGTERM): no further pull request; what was pulled is handled and acked; `run()` returns.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup, TaskStatus
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import api
from nats.js.errors import NotFoundError

from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics, Health
from tapio_common.nats.client import TapioClient
from tapio_jetstream import decisions
from tapio_jetstream.decisions import Action, Backoff, Decision
from tapio_jetstream.decode import Headers, decompressed
from tapio_jetstream.dedup import DedupWindow
from tapio_jetstream.delivery import AckMeta, Delivery, Kind, parse_reply
from tapio_jetstream.dlq import publish_dead_letter
from tapio_jetstream.errors import ConsumerError, ConsumerMissing, DecodeError
from tapio_jetstream.gauges import counter, gauge
from tapio_jetstream.health import LoopMonitor
from tapio_jetstream.layout import ConsumerSpec, subject_taker
from tapio_jetstream.pull import Puller
from tapio_jetstream.settings import ConsumerSettings
from tapio_jetstream.startup import until_answered
from tapio_jetstream.streams import consumer_config
from tapio_publisher import Publisher, PublisherError
from tapio_publisher.codec import COMPRESSION_HEADER

log = get_logger(__name__)

T = TypeVar("T")

DLQ_ATTEMPTS = 5  # tries to store a dead letter before the message is left to the server
DLQ_WAIT = 5.0  # seconds a dead letter's confirmation is awaited before the message is left to come again
ACK_LINGER = 0.005  # seconds acks may wait for more acks to share their write
GATHER_TICK = 0.005  # batch mode: seconds between two looks for more messages while lingering


THREAD_BYTES = (
    32 * 1024
)  # batches in flight: compressed payloads of at least this many bytes are decompressed on a thread
Unpacked = tuple[Headers, bytes] | DecodeError  # a payload decompressed (decode.decompressed), or why not


def _decompress_all(msgs: list[Msg]) -> list[Unpacked | None]:
    """On a worker thread: each compressed message as its decoder sees it uncompressed; None for the others."""
    out: list[Unpacked | None] = []
    for m in msgs:
        if m.headers and COMPRESSION_HEADER in m.headers:
            try:
                out.append(decompressed(m.headers, m.data))
            except DecodeError as e:
                out.append(e)
        else:
            out.append(None)
    return out


class Handler(Protocol[T]):
    """Turns one message into its effects; returns only when every effect is confirmed."""

    async def handle(self, delivery: Delivery[T]) -> None: ...


class BatchHandler(Protocol[T]):
    """Turns several messages (in stream order) into their effects; returns, once they are
    confirmed, one outcome per delivery: None (done: acked) or the exception it failed with
    (retried or dead-lettered like a raising `Handler`). Raising fails them all."""

    async def handle_batch(self, deliveries: Sequence[Delivery[T]]) -> Sequence[BaseException | None]: ...


IdleHook = Callable[[], Awaitable[None]]


class Consumer(Generic[T]):
    """`await Consumer(...).run()` until `stop()`; `attach(health)` adds /readyz and /healthz checks."""

    def __init__(
        self,
        nc: NATS,
        spec: ConsumerSpec,
        kind: Kind[T],
        handler: Handler[T] | BatchHandler[T],
        *,
        component: str,
        publisher: Publisher,
        metrics: ComponentMetrics,
        settings: ConsumerSettings | None = None,
        on_idle: IdleHook | None = None,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.spec = spec
        self.kind = kind
        self.handler = handler
        self._batch = callable(getattr(handler, "handle_batch", None))
        self.component = component
        self.publisher = publisher
        self.metrics = metrics
        self.settings = settings or ConsumerSettings()
        self.on_idle = on_idle
        self.backoff = Backoff(self.settings.backoff_first, 2.0, self.settings.backoff_most)
        self.window = DedupWindow(self.settings.dedup_window)
        self.monitor = LoopMonitor(metrics, self.settings.loop_lag_threshold)
        self.bound = False
        self.max_deliver = spec.max_deliver
        self.ack_wait = spec.ack_wait
        self.handled = 0  # messages acked
        self._stopping = False
        self._puller: Puller | None = None
        self._working: dict[int, tuple[list[Msg], float]] = {}  # messages being handled, since when
        self._slots = anyio.Semaphore(max(1, self.settings.batches_in_flight))
        self._overlap: TaskGroup | None = None  # batches in flight run here (batches_in_flight > 1)
        self._settled: anyio.Event | None = None  # set once the latest batch in flight is settled
        self._flying_keys: set[str] = set()  # keys of the batches in flight (not in the window yet)
        self._flying_seqs: set[int] = set()  # their stream sequences
        self._acks: list[Msg] = []  # handled, ack not yet written
        name = f"{spec.stream}/{spec.durable}"
        self._labels = {"consumer": name}
        self.name = name
        self._gauges = {
            key: gauge(metrics, f"consumer_{key}", doc, ("consumer",)).labels(**self._labels)
            for key, doc in (
                ("pending", "Messages of the stream not yet delivered to the durable consumer."),
                ("ack_pending", "Messages delivered and not yet acknowledged."),
                ("redelivered", "Messages delivered more than once and not yet acknowledged."),
                ("bound", "1 while the durable consumer is bound."),
            )
        }
        # filter_at "client": what the durable delivers beyond the spec's subjects is acked unread.
        self._takes = subject_taker(spec) if spec.filter_at == "client" else None
        self._skipped = counter(
            metrics,
            "consumer_skipped_messages",
            "Messages of subjects the consumer does not take, acknowledged unread (its filter applied here).",
            ("consumer",),
        ).labels(**self._labels)

    # --- wiring -------------------------------------------------------------------------------

    def attach(self, health: Health) -> None:
        """/readyz false while unbound; /healthz false while the event loop is blocked."""
        health.ready_checks[f"consumer {self.name}"] = lambda: (
            self.bound,
            "bound" if self.bound else "not bound",
        )
        health.live_checks["event_loop"] = self.monitor.check

    def stop(self) -> None:
        """Stop pulling; run() returns once what was pulled is handled (SIGTERM)."""
        self._stopping = True
        if self._puller is not None:
            self._puller.stop()

    # --- the loop -----------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await self._bind()
        s = self.settings
        send, receive = anyio.create_memory_object_stream[Msg](max_buffer_size=s.batch * s.pulls_ahead)
        puller = self._puller = Puller(
            self.nc,
            self.spec.stream,
            self.spec.durable,
            send,
            batch=s.batch,
            ahead=s.pulls_ahead,
            expires=s.expires,
        )
        if self._stopping:
            puller.stop()
        await puller.start()
        log.info(
            "consuming", consumer=self.name, max_deliver=self.max_deliver, batch=s.batch, ahead=s.pulls_ahead
        )
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(puller.run)
                tg.start_soon(self._poll_info)
                tg.start_soon(self.monitor.run)
                tg.start_soon(self._keep_alive)
                task_status.started()
                async with receive:
                    await self._consume(receive, puller)
                tg.cancel_scope.cancel()
        finally:
            await puller.close()
            self.bound = False
            self._gauges["bound"].set(0)
        log.info("stopped consuming", consumer=self.name, handled=self.handled)

    async def _consume(self, receive: Any, puller: Puller) -> None:
        try:
            async with anyio.create_task_group() as overlap:  # returns once every batch in flight is settled
                if self._batch and self.settings.batches_in_flight > 1:
                    self._overlap = overlap
                try:
                    await self._consume_messages(receive, puller)
                finally:
                    self._overlap = None
        finally:
            with anyio.CancelScope(shield=True):
                await self._flush_acks()

    async def _consume_messages(self, receive: Any, puller: Puller) -> None:
        deadline = 0.0
        try:
            while True:
                try:
                    msg = receive.receive_nowait()
                except anyio.WouldBlock:
                    msg = await self._wait(receive) if self._acks else None
                    if msg is None:
                        await self._flush_acks()
                        if self._stopping:
                            deadline = deadline or time.monotonic() + self.settings.drain_timeout
                            if puller.idle or time.monotonic() > deadline:
                                return
                        with anyio.move_on_after(0.2 if self._stopping else self.settings.expires):
                            msg = await receive.receive()
                        if msg is None:
                            if self.on_idle is not None and not self._stopping:
                                await self.on_idle()
                            continue
                if self._batch and self._overlap is not None:
                    await self._begin_batch(await self._gather(msg, receive), self._overlap)
                elif self._batch:
                    await self.process_batch(await self._gather(msg, receive))
                else:
                    await self.process(msg)
        finally:
            with anyio.CancelScope(shield=True):
                await self._flush_acks()

    async def _wait(self, receive: Any) -> Msg | None:
        """The next message if it comes within ACK_LINGER (acks wait meanwhile: one write for many)."""
        with anyio.move_on_after(ACK_LINGER):
            msg: Msg = await receive.receive()
            return msg
        return None

    async def _gather(self, first: Msg, receive: Any) -> list[Msg]:
        """Batch mode: the first message and what follows within `linger` seconds, up to `batch`.

        Looks every GATHER_TICK seconds and takes whatever arrived meanwhile, rather than waiting
        on each message: at a steady rate messages trickle in one by one, and a timed wait per
        message (a cancel scope and a task switch) cost more than handling it."""
        msgs = [first]
        batch = self.settings.batch
        deadline = time.monotonic() + self.settings.linger
        await anyio.lowlevel.checkpoint()  # let messages already read off the socket join
        while True:
            try:
                while len(msgs) < batch:
                    msgs.append(receive.receive_nowait())
                return msgs
            except anyio.WouldBlock:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stopping:
                return msgs
            await anyio.sleep(min(GATHER_TICK, remaining))

    async def process(self, msg: Msg) -> None:
        """One message: decode, dedup, handler, then ack / nak / dead-letter."""
        started = time.perf_counter()
        prepared = await self._prepare(msg)
        if prepared is None:
            return
        delivery, meta, keys = prepared
        self._working[id(msg)] = ([msg], time.monotonic())
        outcome: Exception | None = None
        try:
            await self.handler.handle(delivery)  # type: ignore[union-attr]
        except Exception as e:  # noqa: BLE001 - every handler failure takes the retry path, counted and logged
            outcome = e
        del self._working[id(msg)]
        await self._finish(msg, meta, delivery, keys, outcome)
        if outcome is None:
            self.metrics.processing.observe(time.perf_counter() - started)

    async def process_batch(self, msgs: list[Msg]) -> None:
        """Messages in stream order to a BatchHandler at once, then each acked / nak'ed / dead-lettered."""
        started = time.perf_counter()
        ready = await self._prepare_all(msgs)
        if ready:
            await self._complete_batch(ready, started)

    async def _begin_batch(self, msgs: list[Msg], overlap: TaskGroup) -> None:
        """batches_in_flight > 1: the batch decoded here (in stream order), then handled in a task of
        its own while the next is gathered and decoded; settled after the batch before it."""
        await self._slots.acquire()  # at most batches_in_flight batches decoded and not yet settled
        seqs = set(self._flying_seqs)
        try:
            started = time.perf_counter()
            unpacked = await self._decompress(msgs)
            ready = await self._prepare_all(msgs, self._flying_keys, self._flying_seqs, unpacked)
        except BaseException:
            self._slots.release()
            raise
        mine = (self._flying_seqs - seqs, [k for *_, keys in ready for k in keys])
        if not ready:
            self._land(mine)
            self._slots.release()
            return
        previous, self._settled = self._settled, anyio.Event()
        overlap.start_soon(self._complete_batch, ready, started, previous, self._settled, mine)

    async def _decompress(self, msgs: list[Msg]) -> list[Unpacked | None] | None:
        """Batches in flight: compressed payloads decompressed on a worker thread (zstd and lz4
        release the GIL: the handler's tasks run meanwhile), when there are THREAD_BYTES of them."""
        if sum(len(m.data) for m in msgs if m.headers and COMPRESSION_HEADER in m.headers) < THREAD_BYTES:
            return None
        return await anyio.to_thread.run_sync(_decompress_all, msgs)

    def _land(self, flying: tuple[set[int], list[str]]) -> None:
        """A batch in flight is settled: its sequences and keys no longer hold back later messages."""
        self._flying_seqs.difference_update(flying[0])
        self._flying_keys.difference_update(flying[1])

    async def _prepare_all(
        self,
        msgs: list[Msg],
        pending: set[str] | None = None,
        seqs: set[int] | None = None,
        unpacked: list[Unpacked | None] | None = None,
    ) -> list[tuple[Msg, Delivery[T], AckMeta, list[str]]]:
        ready: list[tuple[Msg, Delivery[T], AckMeta, list[str]]] = []
        # Keys of the batch's earlier messages (and of the batches in flight): a later message
        # repeating them (a re-published batch pulled together) is given only its new items, and its
        # keys kept for the window are those alone, so an earlier message that then fails is retried
        # with every item it carries (the window never learns an item from a message that did not
        # publish it).
        pending = set() if pending is None else pending
        seqs = (
            set() if seqs is None else seqs
        )  # the same message twice (redelivered while still buffered): once
        for i, msg in enumerate(msgs):
            prepared = await self._prepare(msg, pending, seqs, None if unpacked is None else unpacked[i])
            if prepared is not None:
                ready.append((msg, *prepared))
                pending.update(prepared[2])
        return ready

    async def _complete_batch(
        self,
        ready: list[tuple[Msg, Delivery[T], AckMeta, list[str]]],
        started: float,
        previous: anyio.Event | None = None,
        settled: anyio.Event | None = None,
        flying: tuple[set[int], list[str]] | None = None,
    ) -> None:
        """The handler on decoded messages, then each settled (after `previous`, the batch before it
        when batches overlap; `settled` is set once this one is)."""
        key = id(ready)
        self._working[key] = ([m for m, *_ in ready], time.monotonic())
        try:
            await self._handle_and_settle(ready, started, previous)
            if settled is not None:
                await self._flush_acks()  # the loop may be decoding the next batch meanwhile
        finally:
            del self._working[key]
            if flying is not None:
                self._land(flying)
            if settled is not None:
                settled.set()
                self._slots.release()

    async def _handle_and_settle(
        self,
        ready: list[tuple[Msg, Delivery[T], AckMeta, list[str]]],
        started: float,
        previous: anyio.Event | None,
    ) -> None:
        deliveries = [d for _, d, _, _ in ready]
        outcomes: Sequence[BaseException | None]
        try:
            outcomes = await self.handler.handle_batch(deliveries)  # type: ignore[union-attr]
            if len(outcomes) != len(deliveries):
                raise RuntimeError(
                    f"handle_batch gave {len(outcomes)} outcomes for {len(deliveries)} deliveries"
                )
        except Exception as e:  # noqa: BLE001 - as in process(): the retry path for every message
            outcomes = [e] * len(deliveries)
        if previous is not None:
            await previous.wait()  # settled in stream order
        logged: set[int] = set()  # one failure shared by many messages is logged once
        received = 0
        for (msg, delivery, meta, keys), outcome in zip(ready, outcomes, strict=True):
            failure = (
                outcome if isinstance(outcome, Exception) or outcome is None else RuntimeError(str(outcome))
            )
            quiet = failure is not None and id(failure) in logged
            if failure is not None:
                logged.add(id(failure))
            else:
                received += len(delivery.items)
            await self._finish(msg, meta, delivery, keys, failure, quiet=quiet, counted=True)
        self.metrics.received.inc(received)  # once a batch: the counter takes a lock each time
        self.metrics.processing.observe(time.perf_counter() - started)

    async def _prepare(
        self,
        msg: Msg,
        pending: set[str] | None = None,
        seqs: set[int] | None = None,
        unpacked: Unpacked | None = None,
    ) -> tuple[Delivery[T], AckMeta, list[str]] | None:
        """Decoded and deduplicated (against the window and the batch's `pending` keys); None when
        settled already (not JetStream, undecodable, all seen) or, in `seqs`, settled by its other
        delivery in the same batch (no ack here: that one's outcome stands). `unpacked`: the
        payload already decompressed (or why it cannot be); the delivery keeps the message as it is."""
        meta = parse_reply(msg.reply or "")
        if meta is None:
            log.warning("not a JetStream message, ignored", subject=msg.subject)
            return None
        if seqs is not None:
            if meta.stream_seq in seqs:
                return None
            seqs.add(meta.stream_seq)
        if self._takes is not None and not self._takes(msg.subject):
            self._skipped.inc()
            await self._ack(msg)
            return None
        headers = msg.headers or {}
        try:
            if unpacked is None:
                items = self.kind.decode(headers, msg.data)
            elif isinstance(unpacked, DecodeError):
                raise unpacked
            else:
                items = self.kind.decode(*unpacked)
        except DecodeError as e:
            self.metrics.error("decode")
            await self._settle(msg, meta, decisions.on_undecodable(str(e)), 1)
            return None
        keys = self.kind.keys(headers, items) if self.window.size else []  # window off: no keys
        keep = self.window.fresh(keys) if not pending else self.window.fresh(keys, pending)
        duplicates = 0
        if keep is not None:
            duplicates = len(items) - len(keep)
            items = [items[i] for i in keep]
            keys = [keys[i] for i in keep]
            self.metrics.drop("duplicate", duplicates)
            if not items:
                await self._ack(msg)
                return None
        delivery = Delivery(
            items=items,
            stream=meta.stream,
            stream_seq=meta.stream_seq,
            subject=msg.subject,
            headers=headers,
            num_delivered=meta.num_delivered,
            max_deliver=self.max_deliver,
            data=msg.data,
            duplicates=duplicates,
        )
        return delivery, meta, keys

    async def _finish(
        self,
        msg: Msg,
        meta: AckMeta,
        delivery: Delivery[T],
        keys: list[str],
        failure: Exception | None,
        *,
        quiet: bool = False,
        counted: bool = False,
    ) -> None:
        """Acks a handled message (received counted here unless the caller `counted` it), or takes
        a failed one down the retry / dead-letter path."""
        if failure is not None:
            if quiet:
                self.metrics.error(decisions.stage_of(failure))
            else:
                self._failed(failure, meta)
            decision = decisions.on_handler_failure(
                failure, meta.num_delivered, self.max_deliver, self.backoff
            )
            await self._settle(msg, meta, decision, len(delivery.items))
            return
        self.window.add(keys)
        if not counted:
            self.metrics.received.inc(len(delivery.items))
        await self._ack(msg)

    def _failed(self, e: Exception, meta: AckMeta) -> None:
        stage = decisions.stage_of(e)
        self.metrics.error(stage)
        bug = decisions.is_programming_error(e)
        (log.error if bug else log.warning)(
            "handler bug (retried like any failure)" if bug else "handler failed",
            exc_info=e if bug else None,
            error=decisions.describe(e),
            consumer=self.name,
            seq=meta.stream_seq,
            delivery=meta.num_delivered,
            stage=stage,
        )

    async def _ack(self, msg: Msg) -> None:
        """Acks go out together: at most `batch` of them, or ACK_LINGER seconds, wait for one write
        (the effects they confirm are stored already; a crash meanwhile only redelivers)."""
        self._acks.append(msg)
        self.handled += 1
        if len(self._acks) >= self.settings.batch:
            await self._flush_acks()

    async def _flush_acks(self) -> None:
        acks, self._acks = self._acks, []
        if isinstance(self.nc, TapioClient):  # one buffered command for all of them
            await self.nc.ack_many(acks)
            return
        for msg in acks:  # no suspension between them: the client writes them in one go
            await msg.ack()

    async def _settle(self, msg: Msg, meta: AckMeta, decision: Decision, count: int) -> None:
        if decision.action is Action.ACK:
            await self._ack(msg)
        elif decision.action is Action.NAK:
            await msg.nak(delay=decision.delay)
        else:
            await self._dead_letter(msg, meta, decision.reason, count)

    async def _dead_letter(self, msg: Msg, meta: AckMeta, reason: str, count: int) -> None:
        """To tapio.dlq.{component}, confirmed, then AckTerm. The dead letter's id is stream + seq,
        so a retry after a crash stores it once. A dead letter the DLQ stream does not confirm
        within DLQ_WAIT (gone, its leader lost: the publisher keeps it spooled and stores it once
        the stream answers) leaves the message to come again, so the messages after it go on."""
        for attempt in range(1, DLQ_ATTEMPTS + 1):
            try:
                receipt = await publish_dead_letter(
                    self.publisher,
                    self.component,
                    msg.data,
                    error=reason,
                    stream=meta.stream,
                    stream_seq=meta.stream_seq,
                    headers=msg.headers,
                )
                with anyio.move_on_after(DLQ_WAIT):
                    await receipt.wait()
                    break
                await self._dead_letter_waits(msg, meta)
                return
            except PublisherError as e:
                log.error(
                    "dead letter not stored",
                    consumer=self.name,
                    seq=meta.stream_seq,
                    attempt=attempt,
                    error=str(e),
                )
                self.metrics.error("dead_letter")
                await msg.in_progress()
                await anyio.sleep(min(2.0**attempt, self.ack_wait / 2))
        else:
            self.metrics.drop("dead_letter_failed", count)
            log.error(
                "message left to the server: its dead letter could not be stored",
                consumer=self.name,
                seq=meta.stream_seq,
            )
            return
        await msg.term()
        self.metrics.drop("dead_letter", count)
        log.warning(
            "message sent to the dead-letter queue", consumer=self.name, seq=meta.stream_seq, error=reason
        )

    async def _dead_letter_waits(self, msg: Msg, meta: AckMeta) -> None:
        """The dead letter is spooled, not confirmed: retried on the message's next delivery (its
        id makes the repeat one dead letter); on the last one the spooled copy is what remains."""
        self.metrics.error("dead_letter")
        last = 0 < self.max_deliver <= meta.num_delivered
        log.error(
            "dead letter not confirmed: the DLQ stream does not answer; it is stored once it does"
            + ("" if last else ", the message comes again meanwhile"),
            consumer=self.name,
            seq=meta.stream_seq,
            delivery=meta.num_delivered,
        )
        if not last:
            await msg.nak(delay=self.backoff.delay(meta.num_delivered))

    # --- binding and reporting ----------------------------------------------------------------

    async def _bind(self) -> None:
        """The durable consumer's info (created when missing and allowed), waiting up to bind_wait
        while the cluster cannot answer (`tapio_jetstream.startup`); a refusal fails at once."""
        info = await until_answered(
            self.nc,
            f"the durable consumer {self.name}",
            self._info_or_create,
            wait=self.settings.bind_wait,
            stopping=lambda: self._stopping,
            retry_on=(ConsumerMissing,),  # its operator (NACK) may create it after we start
        )
        cfg = info.config
        if cfg.deliver_subject:
            raise ConsumerError(
                f"consumer {self.name} is a push consumer (deliver subject {cfg.deliver_subject}); Tapio needs a pull consumer"
            )
        self.max_deliver = int(cfg.max_deliver or -1)
        self.ack_wait = float(cfg.ack_wait or self.spec.ack_wait)
        self._report(info)

    async def _info_or_create(self) -> api.ConsumerInfo:
        try:
            info: api.ConsumerInfo = await self.js.consumer_info(self.spec.stream, self.spec.durable)
            return info
        except NotFoundError as e:
            if not self.settings.create:
                raise ConsumerMissing(f"consumer {self.name} does not exist (and creating it is off)") from e
        except (NatsError, TimeoutError) as e:
            raise ConsumerError(f"cannot read consumer {self.name}: {e or type(e).__name__}") from e
        try:
            info = await self.js.add_consumer(self.spec.stream, consumer_config(self.spec))
        except (NatsError, TimeoutError) as e:
            raise ConsumerError(
                f"consumer {self.name} does not exist and cannot be created here: {e or 'no reply (not permitted?)'}"
            ) from e
        log.info("durable consumer created", consumer=self.name)
        return info

    def _report(self, info: api.ConsumerInfo) -> None:
        self.bound = True
        g = self._gauges
        g["bound"].set(1)
        g["pending"].set(info.num_pending or 0)
        g["ack_pending"].set(info.num_ack_pending or 0)
        g["redelivered"].set(info.num_redelivered or 0)

    async def _poll_info(self) -> None:
        while True:
            await anyio.sleep(self.settings.info_interval)
            try:
                self._report(await self.js.consumer_info(self.spec.stream, self.spec.durable))
            except NotFoundError:
                if self.bound:
                    log.error("durable consumer deleted", consumer=self.name)
                self.bound = False
                self._gauges["bound"].set(0)
            except (NatsError, TimeoutError) as e:
                log.debug("consumer info not read", consumer=self.name, error=str(e))

    async def _keep_alive(self) -> None:
        """A handler working longer than a third of ack_wait tells the server (+WPI), so the message
        is not redelivered to another instance meanwhile."""
        while True:
            await anyio.sleep(max(0.5, self.ack_wait / 3))
            now = time.monotonic()
            for msgs, since in list(self._working.values()):
                if now - since > self.ack_wait / 3:
                    try:
                        for m in msgs:
                            await m.in_progress()
                    except NatsError as e:
                        log.debug("in-progress ack not sent", error=str(e))

"""The pipeline's handler on the consumer runtime: learn, enrich, decide, publish, confirm.

Fed by the durable consumer `pipeline` on TAPIO_EVENTS with the messages already pulled (a batch
handler: EventBatches or bare Events). Its `Kind` does the per-event work while the runtime decodes
a message (`Processor.decode`: views and original bytes, then `routing.route` in the same pass) and
hands the runtime the event ids for its dedup window; an event the window takes out is routed again
without it (rare: a redelivery). For every event: pod events teach the pod index, other
events get their pod's context (by their serialized context, cached), the compiled rules
(`plans.Router`) decide their destinations; the events of one message are grouped by
`tapio.processed.{source}.{destination}` and published as EventBatches of the events' own bytes
(only a redacted event is serialized again) whose `Nats-Msg-Id` is derived from the input
message's stream sequence, so a redelivered message produces the same message ids (JetStream drops
the repeat). The outputs of every message of the batch are published before any is awaited; a
message is acked (by the runtime) only after each of its outputs is confirmed. With batches in
flight (`ConsumerSettings.batches_in_flight`) the runtime decodes (routes) the next batch while this
one is compressed and published and its confirmations awaited; batches publish one after the other,
in stream order (the runtime takes an event id of a batch not yet settled out of the batches after it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from prometheus_client import Counter

from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics
from tapio_jetstream import Delivery
from tapio_jetstream.decode import Headers
from tapio_jetstream.delivery import Kind
from tapio_jetstream.errors import DecodeError
from tapio_pipeline.enrich import PodIndex
from tapio_pipeline.plans import Router
from tapio_pipeline.routing import Routed, route
from tapio_pipeline.rules import RuleSet
from tapio_pipeline.service.outputs import Output, Outputs
from tapio_pipeline.views import decode_message
from tapio_publisher import Publisher, PublisherError, Receipt
from tapio_publisher.codec import Compression
from tapio_publisher.subjects import processed_subject

log = get_logger(__name__)

MAX_LEARNT = 100_000  # stream sequences remembered for the pod follower
STAGE_AHEAD = 2  # messages framed (or compressed) ahead of the stage after


class RoutedEvents(list[str]):
    """What the pipeline's `Kind` makes of a message: the ids of its events (the runtime's dedup
    keys and `Delivery.items`) with what routing made of them. A routing failure that is not bad
    input (a bug) is kept in `error`, raised by the handler, so the runtime retries and logs it as
    one instead of dead-lettering the message as undecodable."""

    __slots__ = ("error", "routed")

    def __init__(self, ids: list[str], routed: Routed | None, error: Exception | None = None) -> None:
        super().__init__(ids)
        self.routed = routed
        self.error = error


class PipelineMetrics:
    """The pipeline's own counters beside the standard ones (same registry)."""

    def __init__(self, metrics: ComponentMetrics) -> None:
        prefix = f"tapio_{metrics.component}"
        self.routed = Counter(
            f"{prefix}_events_routed",
            "Events published per destination.",
            ["destination"],
            registry=metrics.registry,
        )
        self.enriched = Counter(
            f"{prefix}_events_enriched", "Events given pod context.", registry=metrics.registry
        )
        self.redacted = Counter(
            f"{prefix}_attributes_redacted", "Attribute values redacted.", registry=metrics.registry
        )


class Processor:
    """The BatchHandler of the durable consumer `pipeline` (see tapio_jetstream.Consumer); its
    `kind` decodes the consumer's messages."""

    def __init__(
        self,
        rules: RuleSet,
        index: PodIndex,
        publisher: Publisher,
        metrics: ComponentMetrics,
        *,
        compression: Compression = Compression.ZSTD,
        batches_in_flight: int = 1,
    ) -> None:
        self._prefix = publisher.subjects.prefix  # the installation's (NATS_SUBJECT_PREFIX)
        self.rules = rules  # replaced whole on reload, between two batches
        self.index = index
        self.publisher = publisher
        self.metrics = metrics
        self.extra = PipelineMetrics(metrics)
        self.compression = compression
        self.outputs = Outputs(compression)
        self.unrouted = 0
        self._unrouted_logged = 0.0
        self.kind: Kind[str] = Kind("events", self.decode, _event_keys)
        self._publishing = anyio.Lock()  # batches in flight publish one after the other, in order
        self.overlapped = batches_in_flight > 1  # the runtime routes the next batch while one publishes
        self.learnt: set[int] = (
            set()
        )  # stream sequences of messages routed lately (the pod follower skips them)

    @property
    def rules(self) -> RuleSet:
        return self.router.rules

    @rules.setter
    def rules(self, rules: RuleSet) -> None:
        prefix = self._prefix
        self.router = Router(rules, lambda source, dest: processed_subject(source, dest, prefix))

    def decode(self, headers: Headers, data: bytes) -> list[str]:
        """A message's events decoded and routed (`RoutedEvents`); DecodeError when undecodable."""
        views, raws = decode_message(headers, data)
        try:
            routed = route(self.router, self.index, views, raws)
        except DecodeError:
            raise
        except Exception as e:  # noqa: BLE001 - a bug, not bad input: raised again by the handler
            return RoutedEvents([view.id for view in views], None, e)
        return RoutedEvents(routed.ids, routed)

    def _routed(self, delivery: Delivery[str]) -> Routed:
        """What `decode` routed; routed again without the events the runtime took out (seen by
        its dedup window, or carried by an earlier message of the same batch or of a batch in flight)."""
        items = delivery.items
        if isinstance(items, RoutedEvents):
            if items.error is not None:
                raise items.error
            if items.routed is not None:
                return items.routed
        fresh = set(items)
        views, raws = decode_message(delivery.headers, delivery.data)
        again = route(self.router, self.index, views, raws, only=fresh)
        if len(again.ids) < len(items):
            self.metrics.drop("duplicate", len(items) - len(again.ids))
        return again

    async def handle(self, delivery: Delivery[str]) -> None:
        """One message (the Handler form, for callers outside the runtime's batch mode)."""
        (outcome,) = await self.handle_batch([delivery])
        if outcome is not None:
            raise outcome

    async def handle_batch(self, deliveries: Sequence[Delivery[str]]) -> list[BaseException | None]:
        """Every message's outputs published, in order, then every confirmation awaited. Three
        stages run at once: framing (the routed events as EventBatches), compression (on a worker
        thread: it overlaps the framing and publishing of the neighbouring messages) and publishing.
        A message that fails at any stage fails alone (its outcome; the runtime retries it)."""
        outcomes: list[BaseException | None] = [None] * len(deliveries)
        async with self._publishing:  # after the batch before it
            sent = await self._publish_all(deliveries, outcomes)
        await self._confirm(sent, outcomes)
        return outcomes

    async def _publish_all(
        self,
        deliveries: Sequence[Delivery[str]],
        outcomes: list[BaseException | None],
    ) -> list[tuple[int, list[tuple[Receipt, int]]]]:
        sent: list[tuple[int, list[tuple[Receipt, int]]]] = []
        framed_in, framed_out = anyio.create_memory_object_stream[tuple[int, list[Output]]](STAGE_AHEAD)
        ready_in, ready_out = anyio.create_memory_object_stream[tuple[int, list[Output]]](STAGE_AHEAD)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._frame_all, deliveries, outcomes, framed_in)
            tg.start_soon(self._compress_all, deliveries, framed_out, ready_in, outcomes)
            async with ready_out:
                async for i, outputs in ready_out:
                    try:
                        sent.append((i, await self._publish(outputs)))
                    except Exception as e:  # noqa: BLE001 - this message alone fails
                        outcomes[i] = e
        return sent

    async def _confirm(
        self, sent: list[tuple[int, list[tuple[Receipt, int]]]], outcomes: list[BaseException | None]
    ) -> None:
        published = 0
        for i, receipts in sent:
            try:
                for receipt, count in receipts:
                    await receipt.wait()
                    published += count
            except PublisherError as e:
                outcomes[i] = e
        self.metrics.published.inc(published)

    async def _frame_all(
        self,
        deliveries: Sequence[Delivery[str]],
        outcomes: list[BaseException | None],
        into: MemoryObjectSendStream[tuple[int, list[Output]]],
    ) -> None:
        async with into:
            for i, delivery in enumerate(deliveries):
                try:
                    routed = self._routed(delivery)
                    groups = self.count(routed)
                    if len(self.learnt) >= MAX_LEARNT:
                        self.learnt.clear()
                    self.learnt.add(delivery.stream_seq)
                    outputs = self.outputs.frame(delivery.stream, delivery.stream_seq, groups)
                except Exception as e:  # noqa: BLE001 - this message alone fails: the runtime retries or dead-letters it
                    outcomes[i] = e
                    continue
                await into.send((i, outputs))

    async def _compress_all(
        self,
        deliveries: Sequence[Delivery[str]],
        framed: MemoryObjectReceiveStream[tuple[int, list[Output]]],
        into: MemoryObjectSendStream[tuple[int, list[Output]]],
        outcomes: list[BaseException | None],
    ) -> None:
        several = len(deliveries) > 1 or self.overlapped  # neighbours, or the next batch, meanwhile
        async with framed, into:
            async for i, outputs in framed:
                try:
                    compressed = await self.outputs.compress(outputs, overlapped=several)
                except Exception as e:  # noqa: BLE001 - this message alone fails
                    outcomes[i] = e
                    continue
                await into.send((i, compressed))

    async def _publish(self, outputs: list[Output]) -> list[tuple[Receipt, int]]:
        headers = self.outputs.headers
        return [
            (
                await self.publisher.publish_message(o.subject, o.payload, msg_id=o.msg_id, headers=headers),
                o.count,
            )
            for o in outputs
        ]

    def count(self, routed: Routed) -> dict[str, list[bytes]]:
        """Counts what one message became (once per message: a labelled counter costs about a
        microsecond); the events' bytes by output subject."""
        if routed.enriched:
            self.extra.enriched.inc(routed.enriched)
        if routed.redacted:
            self.extra.redacted.inc(routed.redacted)
        for dest, n in routed.routed().items():
            self.extra.routed.labels(dest).inc(n)
        for reason, n in routed.dropped().items():
            self.metrics.drop(reason, n)
            if reason == "unrouted":
                self._note_unrouted(routed.unrouted, n)
        return routed.groups

    def _note_unrouted(self, event: Any, count: int) -> None:
        """Counted always; logged at most once a minute, with an example, so it is never silent."""
        self.unrouted += count
        now = time.monotonic()
        if now - self._unrouted_logged >= 60:
            self._unrouted_logged = now
            log.warning(
                "events matched no route and the rule file has no default (counted in "
                "events_dropped_total{reason=unrouted}; they stay in TAPIO_EVENTS)",
                unrouted_so_far=self.unrouted,
                example_id=event.id,
                example_type=event.type,
            )


def _event_keys(_headers: Headers, ids: Sequence[str]) -> list[str]:
    return ids if isinstance(ids, list) else list(ids)  # the items are the ids

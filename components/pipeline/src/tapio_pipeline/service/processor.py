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
message is acked (by the runtime) only after each of its outputs is confirmed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

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
from tapio_pipeline.views import decode_message, encode_batch
from tapio_publisher import Publisher, PublisherError, Receipt
from tapio_publisher.codec import (
    COMPRESSION_HEADER,
    ENCODING_BATCH,
    ENCODING_HEADER,
    Compression,
    Compressor,
)
from tapio_publisher.subjects import processed_subject

log = get_logger(__name__)

MAX_LEARNT = 100_000  # stream sequences remembered for the pod follower
MAX_OUTPUT_BYTES = 512 * 1024  # one output message at most (TAPIO_PROCESSED takes 1 MB)


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
    ) -> None:
        self._prefix = publisher.subjects.prefix  # the installation's (NATS_SUBJECT_PREFIX)
        self.rules = rules  # replaced whole on reload, between two batches
        self.index = index
        self.publisher = publisher
        self.metrics = metrics
        self.extra = PipelineMetrics(metrics)
        self.compression = compression
        self._compressor = Compressor(compression)
        self.unrouted = 0
        self._unrouted_logged = 0.0
        self.kind: Kind[str] = Kind("events", self.decode, _event_keys)
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

    def _routed(self, delivery: Delivery[str], taken: set[str]) -> Routed:
        """What `decode` routed; routed again without the events the dedup window took out, or
        that an earlier message of the same batch carries (`taken`: the runtime's window learns a
        message's ids only once it is acked, after the whole batch)."""
        items = delivery.items
        routed = None
        if isinstance(items, RoutedEvents):
            if items.error is not None:
                raise items.error
            routed = items.routed
        if routed is not None and (not taken or taken.isdisjoint(items)):
            return routed
        fresh = set(items)
        if taken:
            fresh -= taken
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
        outcomes: list[BaseException | None] = [None] * len(deliveries)
        sent: list[tuple[int, list[tuple[Receipt, int]]]] = []
        taken: set[str] = set()  # ids of the batch's earlier messages (when there are several)
        last = len(deliveries) - 1
        for i, delivery in enumerate(deliveries):
            try:
                routed = self._routed(delivery, taken)
                sent.append((i, await self._publish(delivery, routed)))
            except Exception as e:  # noqa: BLE001 - this message alone fails: the runtime retries or dead-letters it
                outcomes[i] = e
                continue
            if i < last:
                taken.update(routed.ids)
        published = 0
        for i, receipts in sent:
            try:
                for receipt, count in receipts:
                    await receipt.wait()
                    published += count
            except PublisherError as e:
                outcomes[i] = e
        self.metrics.published.inc(published)
        return outcomes

    async def _publish(self, delivery: Delivery[str], routed: Routed) -> list[tuple[Receipt, int]]:
        receipts = []
        groups = self.count(routed)
        if len(self.learnt) >= MAX_LEARNT:
            self.learnt.clear()
        self.learnt.add(delivery.stream_seq)
        for subject, datas in groups.items():
            for part, chunk in enumerate(_chunks(datas)):
                msg_id = f"pipeline:{delivery.stream}:{delivery.stream_seq}:{subject}:{part}"
                payload = encode_batch(chunk, msg_id)
                headers = {ENCODING_HEADER: ENCODING_BATCH}
                if self.compression is not Compression.NONE:
                    payload = self._compressor.compress(payload)
                    headers[COMPRESSION_HEADER] = self.compression.value
                receipt = await self.publisher.publish_message(
                    subject, payload, msg_id=msg_id, headers=headers
                )
                receipts.append((receipt, len(chunk)))
        return receipts

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


def _chunks(datas: list[bytes]) -> list[list[bytes]]:
    """Splits serialized events into groups whose batch stays under MAX_OUTPUT_BYTES."""
    if sum(map(len, datas)) + 8 * len(datas) <= MAX_OUTPUT_BYTES:
        return [datas]
    out: list[list[bytes]] = [[]]
    size = 0
    for d in datas:
        if out[-1] and size + len(d) + 8 > MAX_OUTPUT_BYTES:
            out.append([])
            size = 0
        out[-1].append(d)
        size += len(d) + 8
    return out

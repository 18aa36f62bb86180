"""The pipeline's handler on the consumer runtime: learn, enrich, decide, publish, confirm.

Fed by the durable consumer `pipeline` on TAPIO_EVENTS with one message at a time (an EventBatch
or a bare Event, decoded and deduplicated by the runtime). For every event: the pod index learns
from it, fills its missing pod context, the rules decide its destinations; the events of one
message are grouped by `tapio.processed.{source}.{destination}` and published as EventBatches
whose `Nats-Msg-Id` is derived from the input message's stream sequence, so a redelivered message
produces the same message ids (JetStream drops the repeat). The handler returns, and the runtime
acks, only after every publish is confirmed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import Counter

from tapio.events.v1 import events_pb2
from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics
from tapio_jetstream import Delivery
from tapio_pipeline.enrich import PodIndex
from tapio_pipeline.rules import RuleSet, decide
from tapio_publisher import Publisher
from tapio_publisher.codec import (
    COMPRESSION_HEADER,
    ENCODING_BATCH,
    ENCODING_HEADER,
    Compression,
    Compressor,
    batch_trailer,
    event_field,
)
from tapio_publisher.subjects import processed_subject

log = get_logger(__name__)

SOURCE_TOKENS = {
    events_pb2.SOURCE_K8S: "k8s",
    events_pb2.SOURCE_SYSTEMD: "systemd",
    events_pb2.SOURCE_EBPF: "ebpf",
    events_pb2.SOURCE_CNI: "cni",
}
SOURCE_K8S = events_pb2.SOURCE_K8S
MAX_OUTPUT_BYTES = 512 * 1024  # one output message at most (TAPIO_PROCESSED takes 1 MB)


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
    """The Handler of the durable consumer `pipeline` (see tapio_jetstream.Consumer)."""

    def __init__(
        self,
        rules: RuleSet,
        index: PodIndex,
        publisher: Publisher,
        metrics: ComponentMetrics,
        *,
        compression: Compression = Compression.ZSTD,
    ) -> None:
        self.rules = rules  # replaced whole on reload, between two messages
        self.index = index
        self.publisher = publisher
        self.metrics = metrics
        self.extra = PipelineMetrics(metrics)
        self.compression = compression
        self._compressor = Compressor(compression)
        self.unrouted = 0
        self._subjects: dict[tuple[str, str], str] = {}
        self._prefix = publisher.subjects.prefix  # the installation's (NATS_SUBJECT_PREFIX)
        self._unrouted_logged = 0.0

    async def handle(self, delivery: Delivery[events_pb2.Event]) -> None:
        groups = self.route(delivery.items)
        receipts = []
        for subject, datas in groups.items():
            for part, chunk in enumerate(_chunks(datas)):
                msg_id = f"pipeline:{delivery.stream}:{delivery.stream_seq}:{subject}:{part}"
                payload = b"".join(event_field(d) for d in chunk) + batch_trailer(msg_id)
                headers = {ENCODING_HEADER: ENCODING_BATCH}
                if self.compression is not Compression.NONE:
                    payload = self._compressor.compress(payload)
                    headers[COMPRESSION_HEADER] = self.compression.value
                receipts.append(
                    (
                        await self.publisher.publish_message(
                            subject, payload, msg_id=msg_id, headers=headers
                        ),
                        len(chunk),
                    )
                )
        published = 0
        for receipt, count in receipts:
            await receipt.wait()
            published += count
        self.metrics.published.inc(published)

    def route(self, events: Sequence[events_pb2.Event]) -> dict[str, list[bytes]]:
        """Learns, enriches and decides every event: serialized events by output subject.
        Counters are added once per message (a labelled counter costs about a microsecond)."""
        groups: dict[str, list[bytes]] = {}
        index, rules = self.index, self.rules
        enriched = redacted = 0
        routed: dict[str, int] = {}
        dropped: dict[str, int] = {}
        for event in events:
            index.learn(event)
            if event.source != SOURCE_K8S and index.enrich(event):  # k8s events carry their own context
                enriched += 1
            decision = decide(rules, event)
            redacted += len(decision.redacted)
            if not decision.destinations:
                dropped[decision.dropped] = dropped.get(decision.dropped, 0) + 1
                if decision.dropped == "unrouted":
                    self._note_unrouted(event)
                continue
            data = event.SerializeToString()
            source = SOURCE_TOKENS.get(event.source, "unknown")
            for dest in decision.destinations:
                subject = self._subjects.get((source, dest))
                if subject is None:
                    subject = self._subjects[(source, dest)] = processed_subject(source, dest, self._prefix)
                groups.setdefault(subject, []).append(data)
                routed[dest] = routed.get(dest, 0) + 1
        if enriched:
            self.extra.enriched.inc(enriched)
        if redacted:
            self.extra.redacted.inc(redacted)
        for dest, n in routed.items():
            self.extra.routed.labels(dest).inc(n)
        for reason, n in dropped.items():
            self.metrics.drop(reason, n)
        return groups

    def _note_unrouted(self, event: events_pb2.Event) -> None:
        """Counted always; logged at most once a minute, with an example, so it is never silent."""
        self.unrouted += 1
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


def _chunks(datas: list[bytes]) -> list[list[bytes]]:
    """Splits serialized events into groups whose batch stays under MAX_OUTPUT_BYTES."""
    out: list[list[bytes]] = [[]]
    size = 0
    for d in datas:
        if out[-1] and size + len(d) + 8 > MAX_OUTPUT_BYTES:
            out.append([])
            size = 0
        out[-1].append(d)
        size += len(d) + 8
    return out

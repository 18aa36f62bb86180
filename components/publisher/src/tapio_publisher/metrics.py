"""The publisher's metrics: the standard component set plus backpressure, in-flight and spool figures."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tapio_common.metrics import ComponentMetrics

COMPONENT = "publisher"
_WAIT_BUCKETS = (0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)


class PublisherMetrics:
    """`tapio_publisher_*`: events received/published/dropped{reason}, errors{kind}, ack latency
    (`_processing_seconds`, publish to ack of one message), plus `_backpressure_wait_seconds`
    (how long producers waited for the window or the spool queue), `_inflight_messages`,
    `_spooled_events_total`, `_spool_pending_events` and `_spool_bytes`.

    Pass the registry of the component embedding the publisher to serve both on one /metrics.
    One publisher per registry (the gauges read the live publisher).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.base = ComponentMetrics(COMPONENT, registry)
        reg = self.base.registry
        self.received = self.base.received
        self.received_pending = 0
        self.published_pending = 0
        self.published = self.base.published
        self.ack_latency = self.base.processing
        self.backpressure = Histogram(
            "tapio_publisher_backpressure_wait_seconds",
            "Time producers waited because the in-flight window or the spool queue was full.",
            buckets=_WAIT_BUCKETS,
            registry=reg,
        )
        self.spooled = Counter(
            "tapio_publisher_spooled_events",
            "Events written to the local spool for a later retry.",
            registry=reg,
        )
        self.inflight = Gauge(
            "tapio_publisher_inflight_messages", "Messages published, ack pending.", registry=reg
        )
        self.spool_events = Gauge(
            "tapio_publisher_spool_pending_events",
            "Events in the spool waiting to be replayed.",
            registry=reg,
        )
        self.spool_bytes = Gauge(
            "tapio_publisher_spool_bytes", "Bytes of the spool segment files.", registry=reg
        )

    def count_received(self, n: int) -> None:
        """Hot path: counted in a plain int, added to the counter by `sync` (every tick, flush, close)."""
        self.received_pending += n

    def sync(self) -> None:
        """Adds the hot-path counts (plain ints) to the Prometheus counters."""
        if self.received_pending:
            self.received.inc(self.received_pending)
            self.received_pending = 0
        if self.published_pending:
            self.published.inc(self.published_pending)
            self.published_pending = 0
        self.published_pending = 0

    def drop(self, reason: str, count: int = 1) -> None:
        self.base.drop(reason, count)

    def error(self, kind: str) -> None:
        self.base.error(kind)

    def bind(
        self,
        inflight: Callable[[], float],
        spool_events: Callable[[], float],
        spool_bytes: Callable[[], float],
    ) -> None:
        """Gauges computed when scraped (no cost on the hot path)."""
        self.inflight.set_function(inflight)
        self.spool_events.set_function(spool_events)
        self.spool_bytes.set_function(spool_bytes)

    def exposition(self) -> bytes:
        return self.base.exposition()

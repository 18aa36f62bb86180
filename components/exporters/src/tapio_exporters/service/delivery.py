"""One sink's delivery: its own durable consumer on TAPIO_ALERTS (`siem-exporter-<sink>`) through the
consumer runtime in batch mode, so a slow or dead sink holds its own alerts in the stream and never
blocks the others.

Per batch: sink.deliver (returns only once the receiver confirmed) -> the runtime acks. A failing
sink is retried in place with backoff, in stream order (the runtime keeps the messages in progress
meanwhile; nothing is acked or redelivered out of order); on stop the batch is handed back (nak'ed)
to come again. Alerts the receiver refused for good go to `tapio.dlq.siem-exporter` (header
`Tapio-Sink`) and are settled. The consumer's max_deliver is unlimited: a sink that is down waits."""

from __future__ import annotations

import time
from collections.abc import Sequence

import anyio
from nats.errors import Error as NatsError

from tapio.alerts.v1 import alerts_pb2
from tapio_common.errors import ContractError
from tapio_common.logging import get_logger
from tapio_common.model import Alert
from tapio_common.model.fast import alert_from_pb
from tapio_common.subjects import ALERTS, Subjects
from tapio_exporters.errors import ExporterError, RejectedError, SinkError
from tapio_exporters.service.metrics import ExporterMetrics
from tapio_exporters.sinks.base import Sink
from tapio_jetstream import Delivery
from tapio_jetstream.dlq import ERROR_HEADER, STREAM_HEADER, STREAM_SEQ_HEADER
from tapio_jetstream.layout import SIEM_EXPORTER, ConsumerSpec
from tapio_publisher import Publisher, PublisherError
from tapio_publisher.subjects import dlq_subject

log = get_logger(__name__)

COMPONENT = "siem-exporter"
SINK_HEADER = "Tapio-Sink"
FIRST_RETRY = 0.2


class StoppedError(ExporterError):
    """The exporter is stopping while a sink still fails: the batch comes again later."""

    stage = "sink"


def sink_consumer(sink_name: str, subjects: Subjects) -> ConsumerSpec:
    """The durable consumer of one sink on the installation's alerts stream (unlimited
    deliveries: a sink that is down waits)."""
    return ConsumerSpec(
        subjects.alerts_stream, f"{SIEM_EXPORTER}-{sink_name}", subjects.all(ALERTS), ack_wait=30.0, max_deliver=-1,
        description=f"SIEM exporter sink {sink_name}",
    )  # fmt: skip


class SinkDelivery:
    """The BatchHandler of one sink's consumer."""

    def __init__(
        self, publisher: Publisher, sink: Sink, metrics: ExporterMetrics, *, retry_max: float = 30.0
    ) -> None:
        self.publisher = publisher
        self.sink = sink
        self.metrics = metrics
        self.retry_max = retry_max
        self.stopping = False
        self.delivered = 0
        self.failing_since: float | None = None
        self.last_error = ""

    def status(self) -> tuple[bool, str]:
        if self.failing_since is None:
            return True, f"delivering ({self.delivered} confirmed)"
        return (
            True,
            f"failing for {time.monotonic() - self.failing_since:.0f}s, holding its alerts: {self.last_error}",
        )

    async def handle_batch(
        self, deliveries: Sequence[Delivery[alerts_pb2.Alert]]
    ) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = [None] * len(deliveries)
        alerts: list[Alert] = []
        owners: list[int] = []  # delivery index of each alert
        for i, d in enumerate(deliveries):
            try:
                for item in d.items:
                    alerts.append(alert_from_pb(item))
                    owners.append(i)
            except ContractError as e:
                outcomes[i] = e
        if alerts:
            refused, reason = await self._deliver(alerts)
            for alert, i in zip(alerts, owners, strict=True):
                if alert.id in refused and outcomes[i] is None:
                    outcomes[i] = await self._dead_letter(deliveries[i], reason)
        if deliveries:
            self.metrics.sink_lag.labels(sink=self.sink.name).set(0)
        return outcomes

    async def _deliver(self, alerts: list[Alert]) -> tuple[set[str], str]:
        """Delivers until confirmed; returns the ids the receiver refused for good, and why."""
        pause = FIRST_RETRY
        name = self.sink.name
        while True:
            started = time.perf_counter()
            try:
                stale = await self.sink.deliver(alerts)
            except SinkError as e:
                self.metrics.sink_failures.labels(sink=name).inc()
                self.metrics.sink_failing.labels(sink=name).set(1)
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                    log.warning("sink failing, holding its alerts", sink=name, error=str(e))
                self.last_error = str(e)
                if self.stopping:
                    raise StoppedError(f"sink {name} still failing at stop: {e}") from e
                await anyio.sleep(pause)
                pause = min(pause * 2, self.retry_max)
                continue
            except RejectedError as e:
                refused = set(e.alert_ids) or {a.id for a in alerts}
                count = sum(1 for a in alerts if a.id in refused)
                self._confirmed(len(alerts) - count, started)
                self.metrics.sink_dead_letters.labels(sink=name).inc(count)
                log.error("sink refused alerts for good", sink=name, count=count, error=str(e))
                return refused, str(e)
            if stale:
                self.metrics.drop("stale_revision", stale)
                log.info("stale revisions not delivered: a newer one was", sink=name, count=stale)
            self._confirmed(len(alerts) - (stale or 0), started)
            return set(), ""

    def _confirmed(self, count: int, started: float) -> None:
        name = self.sink.name
        if self.failing_since is not None:
            log.info(
                "sink delivering again", sink=name, failed_for=round(time.monotonic() - self.failing_since, 1)
            )
            self.failing_since = None
            self.metrics.sink_failing.labels(sink=name).set(0)
        self.delivered += count
        self.metrics.sink_delivered.labels(sink=name).inc(count)
        self.metrics.sink_seconds.labels(sink=name).observe(time.perf_counter() - started)

    async def _dead_letter(self, d: Delivery[alerts_pb2.Alert], error: str) -> BaseException | None:
        """To `<prefix>.dlq.siem-exporter` with the reason and the sink in headers (None: settled, ack).
        The message id names the sink, so two sinks refusing one alert park it twice."""
        headers = {k: v for k, v in (d.headers or {}).items() if k != "Nats-Msg-Id"}
        headers.update({ERROR_HEADER: " ".join(error.split())[:1024], STREAM_SEQ_HEADER: str(d.stream_seq),
                        STREAM_HEADER: d.stream, SINK_HEADER: self.sink.name})  # fmt: skip
        msg_id = f"dlq:{COMPONENT}:{self.sink.name}:{d.stream}:{d.stream_seq}"
        try:
            receipt = await self.publisher.publish_message(
                dlq_subject(COMPONENT, self.publisher.subjects.prefix), d.data, msg_id=msg_id, headers=headers
            )
            await receipt.wait()
        except (NatsError, PublisherError) as e:
            return e  # not parked: the runtime retries the message
        self.metrics.drop("dead_letter")
        log.warning("alert sent to the dead-letter queue", sink=self.sink.name, seq=d.stream_seq, error=error)
        return None

"""One sink's delivery: a batch of alerts to the sink until it confirmed them, with the sink's
failure/lag metrics and its dead letters. Used by its lane (`service/lanes.py`): once from the live
path (`attempt`: a failure makes the lane fall behind), retried in place with backoff from the
catch-up path (`until_confirmed`: the other sinks go on meanwhile). Alerts the receiver refused for
good go to `tapio.dlq.siem-exporter` (header `Tapio-Sink`) and count as settled; one the DLQ cannot store within
DEAD_LETTER_WAIT fails the live attempt (the sink falls behind, never holding the others), and the
catch-up retries only its parking, not the delivery the sink confirmed. The sink's durable
consumer on TAPIO_ALERTS (`siem-exporter-<sink>`) keeps its position (see lanes.py).

`ReadBack`: the shape before nats-server 2.14 (no consumer reset to keep a position): the sink's
durable consumer delivers every alert through the consumer runtime (batch mode) and the runtime
acks what the sink confirmed, retried in place in stream order."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import anyio
import attrs
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
DEAD_LETTER_WAIT = 5.0  # seconds a dead letter may take to be stored (the DLQ stream unavailable)


@attrs.frozen
class StoredAlert:
    """An alert as stored in TAPIO_ALERTS: its stream sequence, the model and the stored bytes."""

    seq: int
    alert: Alert
    data: bytes
    headers: Mapping[str, str] = attrs.field(factory=dict)


class StoppedError(ExporterError):
    """The exporter is stopping while a sink still fails: the batch comes again later."""

    stage = "sink"


def sink_consumer(sink_name: str, subjects: Subjects) -> ConsumerSpec:
    """The durable consumer of one sink on the installation's alerts stream: its ack floor is the
    sink's position (reset after each confirmed batch); nothing is pulled from it."""
    return ConsumerSpec(
        subjects.alerts_stream, f"{SIEM_EXPORTER}-{sink_name}", subjects.all(ALERTS), ack_wait=30.0, max_deliver=-1,
        description=f"SIEM exporter sink {sink_name}",
    )  # fmt: skip


class SinkDelivery:
    """One sink's deliveries and their metrics."""

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

    async def deliver(self, batch: Sequence[StoredAlert], *, retry: bool) -> bool:
        """Delivers `batch` (each alert once; refused ones to the dead-letter subject): True once
        settled. Without `retry` a failure returns False (the lane falls behind); with it the sink is
        retried in place with backoff until it confirms (StoppedError when stopping meanwhile)."""
        if not batch:
            return True
        alerts = [s.alert for s in batch]
        if retry:
            refused, reason = await self._deliver(alerts)
        else:
            try:
                refused, reason = await self._attempt(alerts, time.perf_counter())
            except SinkError as e:
                self._failed(e)
                return False
        pause = FIRST_RETRY
        for stored in batch:
            if stored.alert.id not in refused:
                continue
            while not await self._dead_letter(stored, reason):
                if not retry:
                    return False  # not parked: the lane takes the batch again from the stream
                if self.stopping:  # the sink confirmed the rest: only the parking is retried
                    raise StoppedError(f"sink {self.sink.name}: a refused alert not parked at stop")
                await anyio.sleep(pause)
                pause = min(pause * 2, self.retry_max)
        return True

    async def _attempt(self, alerts: list[Alert], started: float) -> tuple[set[str], str]:
        """One delivery: the ids refused for good and why; SinkError when it should be retried."""
        name = self.sink.name
        try:
            stale = await self.sink.deliver(alerts)
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

    def _failed(self, e: SinkError) -> None:
        name = self.sink.name
        self.metrics.sink_failures.labels(sink=name).inc()
        self.metrics.sink_failing.labels(sink=name).set(1)
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            log.warning("sink failing, holding its alerts", sink=name, error=str(e))
        self.last_error = str(e)

    async def _deliver(self, alerts: list[Alert]) -> tuple[set[str], str]:
        """Delivers until confirmed; returns the ids the receiver refused for good, and why."""
        pause = FIRST_RETRY
        while True:
            try:
                return await self._attempt(alerts, time.perf_counter())
            except SinkError as e:
                self._failed(e)
                if self.stopping:
                    raise StoppedError(f"sink {self.sink.name} still failing at stop: {e}") from e
                await anyio.sleep(pause)
                pause = min(pause * 2, self.retry_max)

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

    async def _dead_letter(self, stored: StoredAlert, error: str) -> bool:
        """To `<prefix>.dlq.siem-exporter` with the reason and the sink in headers (True: parked).
        The message id names the sink, so two sinks refusing one alert park it twice."""
        stream = self.publisher.subjects.alerts_stream
        headers = {k: v for k, v in stored.headers.items() if k != "Nats-Msg-Id"}
        headers.update({ERROR_HEADER: " ".join(error.split())[:1024], STREAM_SEQ_HEADER: str(stored.seq),
                        STREAM_HEADER: stream, SINK_HEADER: self.sink.name})  # fmt: skip
        msg_id = f"dlq:{COMPONENT}:{self.sink.name}:{stream}:{stored.seq}"
        try:
            with anyio.fail_after(DEAD_LETTER_WAIT):  # never holds the other sinks for long
                receipt = await self.publisher.publish_message(
                    dlq_subject(COMPONENT, self.publisher.subjects.prefix),
                    stored.data,
                    msg_id=msg_id,
                    headers=headers,
                )
                await receipt.wait()
        except (NatsError, PublisherError, TimeoutError) as e:
            log.warning(
                "alert not parked in the dead-letter queue: taken again",
                sink=self.sink.name,
                error=str(e) or type(e).__name__,
            )
            return False
        self.metrics.drop("dead_letter")
        log.warning("alert sent to the dead-letter queue", sink=self.sink.name, seq=stored.seq, error=error)
        return True


class ReadBack:
    """The BatchHandler of one sink's durable consumer when sinks read their alerts back."""

    def __init__(self, delivery: SinkDelivery) -> None:
        self.delivery = delivery

    async def handle_batch(
        self, deliveries: Sequence[Delivery[alerts_pb2.Alert]]
    ) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = [None] * len(deliveries)
        batch: list[StoredAlert] = []
        owners: list[int] = []
        for i, d in enumerate(deliveries):
            try:
                for item in d.items:
                    batch.append(StoredAlert(d.stream_seq, alert_from_pb(item), d.data, d.headers or {}))
                    owners.append(i)
            except ContractError as e:
                outcomes[i] = e
        if batch and not await self.delivery.deliver(batch, retry=True):
            error = ExporterError(
                f"sink {self.delivery.sink.name}: a refused alert could not be dead-lettered"
            )
            for i in set(owners):
                outcomes[i] = error
        if deliveries:
            self.delivery.metrics.sink_lag.labels(sink=self.delivery.sink.name).set(0)
        return outcomes

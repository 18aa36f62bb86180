"""The alerter: correlations in (durable `siem-exporter` on TAPIO_CORRELATIONS, through the consumer
runtime in batch mode), Alerts out to `tapio.alerts.{severity}.{component}`, each stored in
TAPIO_ALERTS before the correlations that made it are acked.

Per batch: lifecycle -> publish alerts (Nats-Msg-Id = id:revision:state) as JetStream atomic batches
(one publish ack per up to 1000 alerts; a batch refused, e.g. holding an alert stored already, goes
again one alert at a time) -> wait for their acks (each alert's stream sequence) -> hand them to
every live sink from memory (`service/lanes.py`; a sink that fails falls behind and catches up from
the stream on its own) -> return (the runtime acks). Alerts the lifecycle produced but JetStream did not confirm are kept and
published again first next time (a repeat is dropped by the message id), so a failed publish never
loses the alert of a revision the lifecycle already took. Restart safety: the lifecycle is rebuilt
from the alerts stream (`restore_from_stream`); a quiet input lets event time follow the wall clock
(`on_idle`), so incidents resolve without new traffic.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from google.protobuf.message import DecodeError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import api
from nats.js.client import JetStreamContext

from tapio.alerts.v1 import alerts_pb2
from tapio.correlations.v1 import correlations_pb2
from tapio_common.errors import ContractError
from tapio_common.logging import get_logger
from tapio_common.model import Alert, Context
from tapio_common.model.fast import alert_from_pb, alert_to_pb, correlation_from_pb
from tapio_common.subjects import ALERTS
from tapio_exporters.domain.alerts import msg_id, subject
from tapio_exporters.domain.lifecycle import Lifecycle
from tapio_exporters.service.delivery import StoredAlert
from tapio_exporters.service.lanes import Lanes
from tapio_exporters.service.metrics import ExporterMetrics
from tapio_exporters.service.settings import ExporterSettings
from tapio_jetstream import Delivery
from tapio_publisher import Publisher

log = get_logger(__name__)

COMPONENT = "siem-exporter"
NS = 1_000_000_000


class Alerter:
    """The BatchHandler of the correlations consumer (and its idle hook)."""

    def __init__(
        self,
        js: JetStreamContext,
        publisher: Publisher,
        settings: ExporterSettings,
        metrics: ExporterMetrics,
        lanes: Lanes,
    ) -> None:
        self.js = js
        self.publisher = publisher
        self.subjects = publisher.subjects  # the installation's (NATS_SUBJECT_PREFIX)
        self.settings = settings
        self.metrics = metrics
        self.lifecycle = Lifecycle(settings.lifecycle)
        self.unconfirmed: list[Alert] = []
        self.ready = False
        self.published = 0
        self.last_input = time.monotonic()
        self.last_event_ns = 0
        self.lanes = lanes
        self.head = 0  # the stream's last sequence when restored
        self._scopes: dict[bytes, Context] = {}  # scope models by wire bytes (correlation_from_pb)
        # two inputs (correlations, events) share the unconfirmed list; a sink lane joins the live
        # path under it
        self._publishing = lanes.lock

    async def restore_from_stream(self) -> int:
        """Reads back the alerts of the last `state_lookback` seconds into the lifecycle (an
        ephemeral consumer, no acks); returns how many."""
        stream, everything = self.subjects.alerts_stream, self.subjects.all(ALERTS)
        info = await self.js.stream_info(stream)
        last = self.head = int(info.state.last_seq)
        if last == 0 or not info.state.messages:
            self.ready = True
            return 0
        start = time.time() - self.settings.state_lookback
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_TIME,
            opt_start_time=datetime.fromtimestamp(start, tz=UTC),
            ack_policy=api.AckPolicy.NONE,
            inactive_threshold=60.0,
            filter_subject=everything,
        )
        sub = await self.js.pull_subscribe(everything, durable=None, stream=stream, config=config)
        count, seq = 0, 0
        try:
            while seq < last:
                try:
                    msgs = await sub.fetch(1000, timeout=2.0)
                except (NatsTimeoutError, TimeoutError):
                    break  # nothing left inside the lookback
                for msg in msgs:
                    seq = msg.metadata.sequence.stream
                    try:
                        self.lifecycle.restore(alert_from_pb(alerts_pb2.Alert.FromString(msg.data)))
                        count += 1
                    except (DecodeError, ContractError) as e:
                        log.warning("unreadable alert in the alerts stream skipped", seq=seq, error=str(e))
        finally:
            await sub.unsubscribe()
        self.ready = True
        log.info("alert lifecycle restored", alerts=count, open=self.lifecycle.open_count)
        return count

    async def handle_batch(
        self, deliveries: Sequence[Delivery[correlations_pb2.Correlation]]
    ) -> Sequence[BaseException | None]:
        outcomes: list[BaseException | None] = []
        out: list[Alert] = []
        for d in deliveries:
            try:
                corrs = [correlation_from_pb(c, self._scopes) for c in d.items]
            except ContractError as e:
                outcomes.append(e)  # retried, then dead-lettered by the runtime
                continue
            for corr in corrs:
                self.note_event_time(corr.last_seen)
                out.extend(self.lifecycle.on_correlation(corr))
            outcomes.append(None)
        await self.publish(out)  # raising fails the batch: the runtime naks, the alerts stay unconfirmed
        if deliveries:
            self.metrics.consumer_lag.set(0)
        return outcomes

    def note_event_time(self, ns: int) -> None:
        """An input's event time (the watermark the idle hook advances from)."""
        self.last_input = time.monotonic()
        if ns > self.last_event_ns:
            self.last_event_ns = ns

    async def on_idle(self) -> None:
        """A quiet input: event time follows the wall clock, so incidents resolve without traffic."""
        idle = time.monotonic() - self.last_input
        if self.last_event_ns and idle >= self.settings.idle_advance:
            await self.publish(self.lifecycle.advance(self.last_event_ns + int(idle * NS)))
        elif self.unconfirmed:
            await self.publish([])
        await self.lanes.notice_others()

    async def publish(self, alerts: list[Alert]) -> None:
        """Publishes `alerts` after any left unconfirmed, waits once for all their acks, then
        delivers them to the live sinks."""
        self.unconfirmed.extend(alerts)
        async with self._publishing:
            todo, self.unconfirmed = self.unconfirmed, []
            if not todo:
                return
            prefix = self.subjects.prefix
            payloads = [alert_to_pb(a).SerializeToString() for a in todo]
            try:  # one atomic batch of up to 1000 alerts: one JetStream ack instead of one an alert
                receipt = await self.publisher.publish_atomic(
                    [(subject(a, prefix), data, msg_id(a)) for a, data in zip(todo, payloads, strict=True)]
                )
                seqs = await receipt.wait()
            except BaseException:
                self.unconfirmed[:0] = todo  # published again first next time (dropped by id if stored)
                raise
            self.published += len(todo)
            self.metrics.published.inc(len(todo))
            counts = Counter((a.state.token, a.severity.token) for a in todo)
            for (state, severity), n in counts.items():
                self.metrics.alerts.labels(state=state, severity=severity).inc(n)
            await self.lanes.deliver(
                [StoredAlert(seq, a, data) for seq, a, data in zip(seqs, todo, payloads, strict=True)]
            )

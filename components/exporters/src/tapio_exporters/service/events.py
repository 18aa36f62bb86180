"""The exporter's second input, when `events_min_severity` is set: events the pipeline routes to its
`siem` destination (`<prefix>.processed.*.siem` on <PREFIX>_PROCESSED, durable `siem-exporter-events`),
those at or above that severity turned into alerts (domain/event_alerts.py) and published to
`tapio.alerts.>` through the same lifecycle and publisher as the correlations' alerts.

A batch handler of the consumer runtime: per batch, events below the severity are counted
(`events_dropped_total{reason="below_severity"}`) and acked; the others become alerts, published
and confirmed before the runtime acks the messages that carried them. A redelivered event fires
nothing twice (its alert id is known to the lifecycle, and the alert's Nats-Msg-Id is the same).
"""

from __future__ import annotations

from collections.abc import Sequence

from tapio.events.v1 import events_pb2
from tapio_common.errors import ContractError
from tapio_common.model import Alert, Severity
from tapio_common.model.fast import event_from_pb
from tapio_common.subjects import Subjects
from tapio_exporters.domain.event_alerts import build_event_alert
from tapio_exporters.service.alerter import Alerter
from tapio_jetstream import Delivery
from tapio_jetstream.layout import SIEM_EXPORTER, ConsumerSpec

EVENTS_DURABLE = f"{SIEM_EXPORTER}-events"
SIEM_DESTINATION = "siem"


def events_consumer(subjects: Subjects) -> ConsumerSpec:
    """The durable consumer of the events input on the installation's processed stream (created by
    the exporter when missing)."""
    return ConsumerSpec(
        subjects.processed_stream,
        EVENTS_DURABLE,
        f"{subjects.processed}.*.{SIEM_DESTINATION}",
        description="SIEM exporter: events of the pipeline's siem destination",
    )


class EventInput:
    """The BatchHandler of the events consumer."""

    def __init__(self, alerter: Alerter, floor: Severity) -> None:
        self.alerter = alerter
        self.floor = floor
        # protobuf severities are ordered as the model's; unspecified counts as info
        self._floor_pb = events_pb2.Severity.Value(floor.value)
        self.below = 0  # events under the floor (acked, counted)
        self.alerted = 0  # events that became an alert

    async def handle_batch(
        self, deliveries: Sequence[Delivery[events_pb2.Event]]
    ) -> Sequence[BaseException | None]:
        outcomes: list[BaseException | None] = []
        out: list[Alert] = []
        template = self.alerter.lifecycle.settings.template
        below = 0
        for d in deliveries:
            alerts: list[Alert] = []
            try:
                for ev in d.items:
                    if (ev.severity or events_pb2.SEVERITY_INFO) < self._floor_pb:
                        below += 1
                        continue
                    alerts.append(build_event_alert(event_from_pb(ev), template))
            except ContractError as e:
                outcomes.append(e)  # retried, then dead-lettered by the runtime
                continue
            for alert in alerts:
                self.alerter.note_event_time(alert.time)
                out.extend(self.alerter.lifecycle.on_alert(alert))
            self.alerted += len(alerts)
            outcomes.append(None)
        await self.alerter.publish(out)  # raising fails the batch: the runtime naks, nothing is lost
        if below:
            self.below += below
            self.alerter.metrics.drop("below_severity", below)
        return outcomes

"""The exporter's metrics: the standard component set plus alerts by state and per-sink delivery,
failures, dead letters and lag."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from tapio_common.metrics import ComponentMetrics


class ExporterMetrics(ComponentMetrics):
    def __init__(self) -> None:
        super().__init__("siem_exporter")
        p = "tapio_siem_exporter"
        r = self.registry
        self.consumer_lag = Gauge(
            f"{p}_consumer_lag", "Correlations not yet delivered to the exporter.", registry=r
        )
        self.alerts = Counter(
            f"{p}_alerts", "Alerts published, by state and severity.", ["state", "severity"], registry=r
        )
        self.sink_delivered = Counter(f"{p}_sink_delivered", "Alerts a sink confirmed.", ["sink"], registry=r)
        self.sink_failures = Counter(
            f"{p}_sink_failures", "Failed delivery attempts (retried), by sink.", ["sink"], registry=r
        )
        self.sink_dead_letters = Counter(
            f"{p}_sink_dead_letters", "Alerts a sink refused for good (sent to tapio.dlq.siem-exporter).", ["sink"],
            registry=r,
        )  # fmt: skip
        self.sink_lag = Gauge(
            f"{p}_sink_lag", "Alerts in the stream not yet delivered, by sink.", ["sink"], registry=r
        )
        self.sink_failing = Gauge(
            f"{p}_sink_failing", "1 while a sink's deliveries fail.", ["sink"], registry=r
        )
        self.sink_seconds = Histogram(
            f"{p}_sink_delivery_seconds", "Time to deliver one batch, confirmation included.", ["sink"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), registry=r,
        )  # fmt: skip

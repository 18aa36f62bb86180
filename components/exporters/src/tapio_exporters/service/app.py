"""`tapio-siem-exporter`: wires config, (embedded) JetStream, consumers, publisher, sinks and metrics."""

from __future__ import annotations

import signal
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import attrs
from anyio.abc import TaskStatus
from nats.errors import Error as NatsError

from tapio.alerts.v1 import alerts_pb2
from tapio.correlations.v1 import correlations_pb2
from tapio_common.config import CommonConfig
from tapio_common.errors import ConfigError, EmbeddedServerError
from tapio_common.logging import get_logger
from tapio_common.metrics import Health, MetricsServer
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import EmbeddedNats, free_port
from tapio_exporters.errors import ExporterError
from tapio_exporters.service.alerter import COMPONENT, Alerter
from tapio_exporters.service.delivery import SinkDelivery, sink_consumer
from tapio_exporters.service.metrics import ExporterMetrics
from tapio_exporters.service.settings import ExporterSettings
from tapio_exporters.service.sinkspec import build_sinks
from tapio_jetstream import ALERT_MESSAGES, CORRELATION_MESSAGES, Consumer, ConsumerSettings, LayoutError
from tapio_jetstream.layout import SIEM_EXPORTER, production_layout
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings

log = get_logger(__name__)

PUBLISH_INFLIGHT = 4096


class Exporter:
    """What a running exporter exposes (tests and the benchmark read it)."""

    def __init__(
        self, alerter: Alerter, consumers: list[Consumer[object]], sinks: list[SinkDelivery], url: str
    ) -> None:
        self.alerter = alerter
        self.consumers = consumers
        self.sinks = sinks
        self.url = url

    def stop(self) -> None:
        for s in self.sinks:
            s.stopping = True
        for c in self.consumers:
            c.stop()


async def serve(
    cfg: CommonConfig,
    settings: ExporterSettings,
    *,
    handle_signals: bool = True,
    task_status: TaskStatus[Exporter] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Runs until SIGINT/SIGTERM (or `Exporter.stop()`): every consumer finishes what it pulled."""
    sinks = build_sinks(list(settings.sinks), "config")  # a misconfigured sink fails here, before NATS
    if not sinks:
        raise ConfigError(
            "no sink configured: add --sink (e.g. --sink console) or siem-exporter.sinks in --config"
        )
    if settings.replicas > 1 and not cfg.nats.urls:
        raise ConfigError("--replicas > 1 needs a NATS cluster (NATS_URL); the embedded server is single")
    metrics = ExporterMetrics()
    health = Health()
    async with AsyncExitStack() as stack:
        metrics_server = MetricsServer(metrics, health, cfg.metrics_port).start()  # a port in use fails first
        stack.callback(metrics_server.stop)
        urls = cfg.nats.urls
        provision = settings.provision
        if not urls:
            server = EmbeddedNats(
                Path(cfg.data_dir) / "jetstream", port=free_port(), server_name="tapio-exporter"
            )
            try:
                server.start()
            except EmbeddedServerError as e:
                raise ExporterError(f"cannot start the embedded JetStream: {e}") from e
            stack.callback(server.stop, keep_store=True)
            urls, provision = (server.url,), True
            print(
                f"tapio-siem-exporter: embedded JetStream listening on {server.url} (store {server.store_dir})"
            )
        layout = production_layout(settings.replicas, subjects=cfg.subjects)  # NATS_SUBJECT_PREFIX
        nc = await connect(cfg.nats, "tapio-siem-exporter", urls=urls)
        stack.push_async_callback(nc.close)
        js = nc.jetstream()
        if provision:
            try:
                report = await apply_layout(js, settings.replicas, layout=layout)
            except LayoutError as e:
                raise ExporterError(str(e)) from e
            log.info("streams provisioned", summary=report.summary())
        # One alert a message: many in flight (the publisher's default of 32 suits batches of events).
        inflight = {} if "max_inflight" in settings.publisher else {"max_inflight": PUBLISH_INFLIGHT}
        pub_settings = PublisherSettings.from_section(
            settings.publisher, str(Path(cfg.data_dir) / COMPONENT), batch_max_events=1, **inflight
        )
        publisher = await stack.enter_async_context(
            Publisher(pub_settings, nc=nc, registry=metrics.registry, subjects=cfg.subjects)
        )
        for sink, _ in sinks:
            await sink.start()
            stack.push_async_callback(sink.close)
        alerter = Alerter(js, publisher, settings, metrics)
        spec = layout.consumer(SIEM_EXPORTER)
        base = ConsumerSettings(batch=settings.fetch_batch, expires=settings.fetch_timeout)
        alert_consumer: Consumer[correlations_pb2.Correlation] = Consumer(
            nc,
            spec,
            CORRELATION_MESSAGES,
            alerter,
            component=COMPONENT,
            publisher=publisher,
            metrics=metrics,
            settings=base,
            on_idle=alerter.on_idle,
        )
        consumers: list[Consumer[Any]] = [alert_consumer]
        deliveries: list[SinkDelivery] = []
        for sink, batch in sinks:
            handler = SinkDelivery(publisher, sink, metrics, retry_max=settings.retry_max)
            deliveries.append(handler)
            sink_settings = attrs.evolve(base, batch=batch, linger=settings.linger)
            sink_consumer_: Consumer[alerts_pb2.Alert] = Consumer(
                nc,
                sink_consumer(sink.name, cfg.subjects),
                ALERT_MESSAGES,
                handler,
                component=COMPONENT,
                publisher=publisher,
                metrics=metrics,
                settings=sink_settings,
            )
            consumers.append(sink_consumer_)
        for c in consumers:
            c.attach(health)
        health.ready_checks["alerts"] = lambda: (alerter.ready, "consuming" if alerter.ready else "restoring")
        for d in deliveries:
            health.ready_checks[f"sink {d.sink.name}"] = d.status
        exporter = Exporter(alerter, consumers, deliveries, urls[0])
        try:
            await alerter.restore_from_stream()
            async with anyio.create_task_group() as tg:
                if handle_signals:
                    tg.start_soon(_stop_on_signal, exporter)
                for c in consumers:
                    await tg.start(c.run)
                task_status.started(exporter)
        except NatsError as e:
            raise ExporterError(f"NATS failed: {e}") from e
        log.info("stopped", alerts_published=alerter.published)


async def _stop_on_signal(exporter: Exporter) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("stopping after the batches in hand", signal=signal.Signals(signum).name)
            exporter.stop()
            return

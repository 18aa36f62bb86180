"""`tapio-siem-exporter`: config, sinks and consumers on the component host (NATS or an embedded
JetStream, metrics and health, SIGTERM) that every consumer component stands on."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import attrs
from anyio.abc import TaskStatus
from nats.errors import Error as NatsError

from tapio.correlations.v1 import correlations_pb2
from tapio.events.v1 import events_pb2
from tapio_common.config import CommonConfig
from tapio_common.errors import ConfigError
from tapio_common.logging import get_logger
from tapio_common.metrics import Health
from tapio_exporters.domain.event_alerts import severity_at_least
from tapio_exporters.errors import ExporterError
from tapio_exporters.service.alerter import COMPONENT, Alerter
from tapio_exporters.service.delivery import ReadBack, SinkDelivery, sink_consumer
from tapio_exporters.service.events import EventInput, events_consumer
from tapio_exporters.service.lanes import Lane, Lanes
from tapio_exporters.service.metrics import ExporterMetrics
from tapio_exporters.service.settings import ExporterSettings
from tapio_exporters.service.sinkspec import build_sinks
from tapio_jetstream import ALERT_MESSAGES, CORRELATION_MESSAGES, EVENT_MESSAGES, Consumer, ConsumerSettings
from tapio_jetstream.host import component_host, stop_on_signal
from tapio_jetstream.layout import SIEM_EXPORTER
from tapio_jetstream.startup import until_answered
from tapio_publisher import Publisher, PublisherSettings

log = get_logger(__name__)

PROG = "tapio-siem-exporter"
PUBLISH_INFLIGHT = 4096


class Exporter:
    """What a running exporter exposes (tests and the benchmark read it)."""

    def __init__(
        self,
        alerter: Alerter,
        consumers: list[Consumer[object]],
        lanes: Lanes,
        sinks: list[SinkDelivery],
        url: str,
        events: EventInput | None = None,
    ) -> None:
        self.alerter = alerter
        self.events = events
        self.consumers = consumers
        self.lanes = lanes
        self.sinks = sinks
        self.url = url

    def stop(self) -> None:
        self.lanes.stop()
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
        host = await stack.enter_async_context(
            component_host(
                PROG,
                COMPONENT,
                cfg,
                metrics,
                health,
                provision=settings.provision,
                replicas=settings.replicas,
            )
        )
        nc = host.nc
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
        version = nc.connected_server_version
        read_back = settings.sink_read_back or (version.major, version.minor) < (2, 14)
        if read_back and not settings.sink_read_back:
            log.warning("nats-server older than 2.14 (no consumer reset): sinks read their alerts back",
                        server=str(version))  # fmt: skip
        deliveries = [(SinkDelivery(publisher, sink, metrics, retry_max=settings.retry_max), batch)
                      for sink, batch in sinks]  # fmt: skip
        lanes = Lanes(
            nc,
            [] if read_back else [Lane(nc, d, sink_consumer(d.sink.name, cfg.subjects), batch) for d, batch in deliveries],
            cfg.subjects.alerts_stream,
            metrics,
        )  # fmt: skip
        alerter = Alerter(nc.jetstream(), publisher, settings, metrics, lanes)
        spec = host.layout.consumer(SIEM_EXPORTER)  # the installation's (NATS_SUBJECT_PREFIX)
        # linger: a batch waits that long for more after its first message, so a steady stream is
        # handled (published, delivered) many at a time rather than one by one.
        base = ConsumerSettings(
            batch=settings.fetch_batch, expires=settings.fetch_timeout, linger=settings.linger
        )
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
        events: EventInput | None = None
        if settings.events_min_severity != "off":
            events = EventInput(alerter, severity_at_least(settings.events_min_severity))
            event_consumer: Consumer[events_pb2.Event] = Consumer(
                nc,
                events_consumer(cfg.subjects),
                EVENT_MESSAGES,
                events,
                component=COMPONENT,
                publisher=publisher,
                metrics=metrics,
                settings=base,
            )
            consumers.append(event_consumer)
        if read_back:
            for d, batch in deliveries:
                consumers.append(
                    Consumer(
                        nc,
                        sink_consumer(d.sink.name, cfg.subjects),
                        ALERT_MESSAGES,
                        ReadBack(d),
                        component=COMPONENT,
                        publisher=publisher,
                        metrics=metrics,
                        settings=attrs.evolve(base, batch=batch),
                    )
                )
        for c in consumers:
            c.attach(health)
        health.ready_checks["alerts"] = lambda: (alerter.ready, "consuming" if alerter.ready else "restoring")
        for lane in lanes.lanes:
            health.ready_checks[f"sink {lane.name}"] = lambda lane=lane: lane.status(lanes.head)  # type: ignore[misc]
        if read_back:
            for d, _ in deliveries:
                health.ready_checks[f"sink {d.sink.name}"] = d.status
        exporter = Exporter(alerter, consumers, lanes, [d for d, _ in deliveries], host.url, events)
        try:
            await until_answered(
                nc,
                f"the read-back of {cfg.subjects.alerts_stream}",
                alerter.restore_from_stream,
                health=health,
            )
            await until_answered(nc, "the sinks' positions", lambda: lanes.open(alerter.head), health=health)
            async with anyio.create_task_group() as tg:
                if handle_signals:
                    tg.start_soon(stop_on_signal, exporter.stop, "stopping after the batches in hand")
                for c in consumers:
                    await tg.start(c.run)
                tg.start_soon(lanes.run)
                task_status.started(exporter)
                # every consumer returns after a stop, with what it pulled handled and acked
            with anyio.move_on_after(5.0, shield=True):  # positions confirmed since their last store
                await lanes.keep_all()
        except NatsError as e:
            raise ExporterError(f"NATS failed: {e}") from e
        log.info("stopped", alerts_published=alerter.published)

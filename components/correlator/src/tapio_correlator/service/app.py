"""`tapio-correlator serve`: wires config, (embedded) JetStream, topology, publisher, state and runner."""

from __future__ import annotations

import signal
import socket
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
from anyio.abc import TaskStatus
from nats.errors import Error as NatsError

from tapio_common.config import CommonConfig
from tapio_common.errors import ConfigError, EmbeddedServerError
from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics, Health, MetricsServer
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import EmbeddedNats, free_port
from tapio_correlator.errors import CorrelatorError
from tapio_correlator.service.runner import COMPONENT, Runner
from tapio_correlator.service.settings import PUBLISHER_SECTION, RunnerSettings
from tapio_correlator.service.state_store import StateStore
from tapio_jetstream import JetStreamError, LayoutError
from tapio_jetstream.layout import production_layout
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings

log = get_logger(__name__)


def start_embedded(cfg: CommonConfig, settings: RunnerSettings) -> EmbeddedNats:
    """The embedded JetStream: on the configured port if free (else any free port), under data_dir."""
    port = settings.embedded_port
    if port and not _port_free(port):
        log.warning("port in use, the embedded JetStream takes a free one", port=port)
        port = 0
    server = EmbeddedNats(Path(cfg.data_dir) / "jetstream", port=port or free_port(), server_name="tapio")
    return server.start()


def _port_free(port: int) -> bool:
    try:
        probe = socket.create_server(("127.0.0.1", port))
    except OSError:
        return False
    probe.close()
    return True


async def serve(
    cfg: CommonConfig,
    settings: RunnerSettings,
    *,
    handle_signals: bool = True,
    task_status: TaskStatus[Runner] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Runs until SIGINT/SIGTERM (or `runner.stopping`); then finishes the pull in hand, snapshots
    and leaves cleanly. Started with `task_group.start(serve, ...)`, it hands over the runner once
    it consumes (its `url` is the NATS server it uses)."""
    check_settings(settings, cfg)
    metrics = ComponentMetrics(COMPONENT)
    health = Health()
    async with AsyncExitStack() as stack:
        urls = cfg.nats.urls
        provision = settings.provision
        if not urls:
            try:
                server = start_embedded(cfg, settings)
            except EmbeddedServerError as e:
                raise CorrelatorError(f"cannot start the embedded JetStream: {e}") from e
            stack.callback(server.stop, keep_store=True)
            urls, provision = (server.url,), True
            print(
                f"tapio-correlator: embedded JetStream listening on {server.url} (store {server.store_dir})"
            )
        nc = await connect(
            cfg.nats, "tapio-correlator", urls=urls, on_refused=lambda _: metrics.error("permission")
        )
        stack.push_async_callback(nc.close)
        js = nc.jetstream()
        if provision:
            try:
                layout = production_layout(settings.replicas, subjects=cfg.subjects)
                report = await apply_layout(js, settings.replicas, layout=layout)
            except LayoutError as e:
                raise CorrelatorError(str(e)) from e
            log.info("streams provisioned", summary=report.summary())
        pub_settings = PublisherSettings.from_section(
            cfg.section.child(PUBLISHER_SECTION), str(Path(cfg.data_dir) / COMPONENT), batch_max_events=1
        )
        publisher = await stack.enter_async_context(
            Publisher(pub_settings, nc=nc, registry=metrics.registry, subjects=cfg.subjects)
        )
        store = await StateStore.open(js, settings.state_bucket, settings.replicas)
        runner = Runner(nc, publisher, store, settings, metrics)
        runner.url = urls[0]
        runner.consumer.attach(health)  # /readyz: consumer bound; /healthz: the event loop runs
        health.ready_checks["nats"] = lambda: (
            nc.is_connected,
            "connected" if nc.is_connected else "disconnected",
        )
        health.ready_checks["engine"] = lambda: (runner.ready, "caught up" if runner.ready else "recovering")
        metrics_server = MetricsServer(metrics, health, cfg.metrics_port).start()
        stack.callback(metrics_server.stop)
        print(f"tapio-correlator: metrics on http://127.0.0.1:{metrics_server.port}/metrics (Ctrl-C stops)")
        try:
            await runner.recover()
            task_status.started(runner)
            async with anyio.create_task_group() as tg:
                if handle_signals:
                    tg.start_soon(_stop_on_signal, runner)
                await runner.run()  # returns after the pull in hand once a signal asked to stop
                tg.cancel_scope.cancel()
        except NatsError as e:
            raise CorrelatorError(f"NATS failed: {e}") from e
        except JetStreamError as e:
            raise CorrelatorError(str(e)) from e
        if runner.since_snapshot:  # a clean stop: everything handled is published and acked
            await runner.snapshot()
        log.info("stopped", correlations_published=runner.published)


async def _stop_on_signal(runner: Runner) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("stopping after the messages in hand", signal=signal.Signals(signum).name)
            runner.stopping = True
            return


def check_settings(settings: RunnerSettings, cfg: CommonConfig) -> None:
    if settings.replicas > 1 and not cfg.nats.urls:
        raise ConfigError("--replicas > 1 needs a NATS cluster (NATS_URL); the embedded server is single")

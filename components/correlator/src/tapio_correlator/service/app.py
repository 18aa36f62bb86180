"""`tapio-correlator serve`: wires config, NATS (or an embedded JetStream) through the component host,
publisher, state store and runner; stops on SIGTERM/SIGINT after the messages in hand."""

from __future__ import annotations

from pathlib import Path

import anyio
from anyio.abc import TaskStatus
from nats.errors import Error as NatsError

from tapio_common.config import CommonConfig
from tapio_common.errors import ConfigError
from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics, Health
from tapio_correlator.errors import CorrelatorError
from tapio_correlator.service.runner import COMPONENT, Runner
from tapio_correlator.service.settings import PUBLISHER_SECTION, RunnerSettings
from tapio_correlator.service.state_store import BucketMissing, StateStore
from tapio_jetstream import JetStreamError
from tapio_jetstream.host import component_host, stop_on_signal
from tapio_jetstream.startup import until_answered
from tapio_publisher import Publisher, PublisherSettings

log = get_logger(__name__)

PROG = "tapio-correlator"


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
    try:
        async with component_host(
            PROG,
            COMPONENT,
            cfg,
            metrics,
            health,
            provision=settings.provision,
            replicas=settings.replicas,
            embedded_port=settings.embedded_port,
        ) as host:
            pub_settings = PublisherSettings.from_section(
                cfg.section.child(PUBLISHER_SECTION), str(Path(cfg.data_dir) / COMPONENT), batch_max_events=1
            )
            async with Publisher(
                pub_settings, nc=host.nc, registry=metrics.registry, subjects=cfg.subjects
            ) as publisher:
                store = await until_answered(
                    host.nc,
                    f"the snapshot bucket {settings.state_bucket}",
                    lambda: StateStore.open(host.nc.jetstream(), settings.state_bucket, settings.replicas),
                    health=health,
                    retry_on=(BucketMissing,),
                )
                runner = Runner(host.nc, publisher, store, settings, metrics)
                runner.url = host.url
                runner.consumer.attach(health)  # /readyz: consumer bound; /healthz: the event loop runs
                health.ready_checks["engine"] = lambda: (
                    runner.ready,
                    "caught up" if runner.ready else "recovering",
                )
                await runner.recover(health)
                task_status.started(runner)
                async with anyio.create_task_group() as tg:
                    if handle_signals:
                        tg.start_soon(stop_on_signal, runner.consumer.stop)
                    await runner.run()  # returns after the pull in hand once a signal asked to stop
                    tg.cancel_scope.cancel()
                if runner.since_snapshot:  # a clean stop: everything handled is published and acked
                    await runner.snapshot()
                log.info("stopped", correlations_published=runner.published)
    except NatsError as e:
        raise CorrelatorError(f"NATS failed: {e}") from e
    except JetStreamError as e:  # the host (embedded server, provisioning) or the consumer
        raise CorrelatorError(str(e)) from e


def check_settings(settings: RunnerSettings, cfg: CommonConfig) -> None:
    if settings.replicas > 1 and not cfg.nats.urls:
        raise ConfigError("--replicas > 1 needs a NATS cluster (NATS_URL); the embedded server is single")

"""Runs one collector: (embedded) JetStream, the publisher with its spool, metrics and health,
the Source in a task group, and SIGTERM/SIGINT that stop the source and flush what it emitted."""

from __future__ import annotations

import signal
import time
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import attrs
from anyio.abc import TaskStatus
from nats.aio.client import Client

from tapio_collector.errors import CollectorError
from tapio_collector.output import Output
from tapio_collector.spec import CollectorSpec, Source
from tapio_common.config import CommonConfig
from tapio_common.errors import EmbeddedServerError, NatsUnavailableError, TapioError
from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics, Health, MetricsServer
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import EmbeddedNats
from tapio_jetstream import LayoutError
from tapio_jetstream.layout import production_layout
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings

log = get_logger(__name__)

HEARTBEAT = 1.0  # seconds between event-loop heartbeats
STALL = 30.0  # /healthz fails when the event loop has not run for this long


def state_dir(cfg: CommonConfig, spec: CollectorSpec) -> Path:
    """`<data dir>/<component>`: the spool and the source's own state."""
    return Path(cfg.data_dir) / spec.component


async def _embedded(cfg: CommonConfig, spec: CollectorSpec, stack: AsyncExitStack) -> str:
    """Starts a JetStream under `<data dir>/jetstream` on a free port with the streams provisioned."""
    server = EmbeddedNats(Path(cfg.data_dir) / "jetstream", server_name=f"tapio-{spec.component}")
    try:
        await anyio.to_thread.run_sync(server.start)
    except EmbeddedServerError as e:
        raise CollectorError(f"cannot start the embedded JetStream: {e}") from e
    stack.callback(server.stop, keep_store=True)
    print(f"{spec.prog}: embedded JetStream listening on {server.url} (store {server.store_dir})", flush=True)
    nc = await connect(cfg.nats, f"{spec.prog}-provision", urls=(server.url,))
    try:
        report = await apply_layout(nc.jetstream(), 1, layout=production_layout(1, subjects=cfg.subjects))
    except LayoutError as e:
        raise CollectorError(str(e)) from e
    finally:
        await nc.close()
    log.info("streams provisioned", summary=report.summary())
    return server.url


async def run_collector(
    spec: CollectorSpec,
    cfg: CommonConfig,
    source: Source,
    *,
    handle_signals: bool = True,
    task_status: TaskStatus[Output] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Runs `source` until SIGTERM/SIGINT (or until it returns or raises SourceError), then
    flushes every event it emitted (or spools what JetStream did not confirm in time)."""
    metrics = ComponentMetrics(spec.component)
    health = Health()
    data_dir = state_dir(cfg, spec)
    try:
        await anyio.Path(data_dir).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CollectorError(f"cannot create the state directory {data_dir}: {e.strerror}") from e
    async with AsyncExitStack() as stack:
        urls = cfg.nats.urls or (await _embedded(cfg, spec, stack),)
        nc: Client | None = None
        try:
            nc = await connect(
                cfg.nats, spec.prog, urls=urls, on_refused=lambda _: metrics.error("permission")
            )
            stack.push_async_callback(nc.close)
        except NatsUnavailableError as e:  # keep observing: the publisher spools until NATS answers
            log.warning("NATS unreachable at start: spooling until it answers", error=str(e))
        section = cfg.section.get("publisher", {}) if cfg.section else {}
        pub_settings = PublisherSettings.from_section(
            {**spec.publisher, **section}, str(data_dir), name=spec.prog
        )
        out = Output(metrics, cfg.node_name, data_dir)
        publisher = Publisher(
            pub_settings,
            **({"nc": nc} if nc is not None else {"nats": attrs.evolve(cfg.nats, urls=urls)}),
            registry=metrics.registry,
            on_confirm=out.on_confirm,
            subjects=cfg.subjects,
        )
        out.publisher = publisher
        beat = [time.monotonic()]
        health.live_checks["loop"] = lambda: _loop_alive(beat[0])
        health.ready_checks["nats"] = lambda: (
            publisher.connected,
            "connected" if publisher.connected else "disconnected (spooling)",
        )
        health.ready_checks["source"] = out.readiness
        server = MetricsServer(metrics, health, cfg.metrics_port).start()
        stack.callback(server.stop)
        out.metrics_port = server.port
        print(
            f"{spec.prog}: metrics on http://127.0.0.1:{server.port}/metrics (SIGTERM or Ctrl-C stops)",
            flush=True,
        )
        async with publisher:  # leaving it flushes, or spools what is unconfirmed
            failure = await _run_source(source, out, beat, handle_signals, task_status)
        log.info(
            "stopped",
            events_emitted=out.emitted,
            events_confirmed=out.confirmed,
            spooling=publisher.spooling,
        )
        if failure is not None:
            raise failure


async def _run_source(
    source: Source, out: Output, beat: list[float], handle_signals: bool, task_status: TaskStatus[Output]
) -> TapioError | None:
    failure: list[TapioError] = []
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            try:
                await source.run(out)
                log.info("source finished")
            except TapioError as e:
                failure.append(e)
            tg.cancel_scope.cancel()

        async def heartbeat() -> None:
            while True:
                beat[0] = time.monotonic()
                await anyio.sleep(HEARTBEAT)

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    log.info("stopping: flushing what the source emitted", signal=signal.Signals(signum).name)
                    tg.cancel_scope.cancel()
                    return

        if handle_signals:
            tg.start_soon(stop_on_signal)
        tg.start_soon(heartbeat)
        tg.start_soon(run)
        task_status.started(out)
    return failure[0] if failure else None


def _loop_alive(last: float) -> tuple[bool, str]:
    age = time.monotonic() - last
    return age < STALL, f"event loop ran {age:.1f}s ago"

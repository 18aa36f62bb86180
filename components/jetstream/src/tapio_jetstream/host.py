"""What every long-running consumer component stands on: NATS (or an embedded JetStream with the
streams provisioned), its metrics and health endpoint, and a stop on SIGTERM/SIGINT.

Fed by a component's `serve` (the pipeline; the SIEM exporter and the correlator have the same
shape): `async with component_host(prog, component, cfg, metrics, health) as host:` gives the
connection and the URL; leaving it closes them in reverse order. `stop_on_signal(stop)` calls
`stop()` on the first SIGTERM or SIGINT, so the consumer finishes what it pulled and returns.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
import attrs
from nats.aio.client import Client

from tapio_common.config import CommonConfig
from tapio_common.errors import EmbeddedServerError
from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics, Health, MetricsServer
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import EmbeddedNats
from tapio_jetstream.errors import JetStreamError, LayoutError
from tapio_jetstream.layout import Layout, production_layout
from tapio_jetstream.streams import apply_layout

log = get_logger(__name__)


class HostError(JetStreamError):
    """The component's host could not start (embedded server, stream provisioning)."""


@attrs.define
class Host:
    nc: Client
    url: str  # the NATS server it uses (the embedded one's when no URL was given)
    metrics_port: int
    embedded: bool
    # The installation's streams and consumers (cfg.subjects: NATS_SUBJECT_PREFIX).
    layout: Layout = attrs.field(factory=production_layout)


@asynccontextmanager
async def component_host(
    prog: str,
    component: str,
    cfg: CommonConfig,
    metrics: ComponentMetrics,
    health: Health,
    *,
    provision: bool = False,
    replicas: int = 1,
) -> AsyncIterator[Host]:
    """NATS at `cfg.nats.urls` (or an embedded JetStream under `<data dir>/jetstream`, provisioned),
    the streams provisioned when `provision`, and /metrics /healthz /readyz on `cfg.metrics_port`."""
    layout = production_layout(replicas, subjects=cfg.subjects)
    async with AsyncExitStack() as stack:
        urls = cfg.nats.urls
        embedded = not urls
        if embedded:
            server = EmbeddedNats(Path(cfg.data_dir) / "jetstream", server_name=f"tapio-{component}")
            try:
                await anyio.to_thread.run_sync(server.start)
            except EmbeddedServerError as e:
                raise HostError(f"cannot start the embedded JetStream: {e}") from e
            stack.callback(server.stop, keep_store=True)
            urls = (server.url,)
            print(
                f"{prog}: embedded JetStream listening on {server.url} (store {server.store_dir})", flush=True
            )
        nc = await connect(cfg.nats, prog, urls=urls, on_refused=lambda _: metrics.error("permission"))
        stack.push_async_callback(nc.close)
        if provision or embedded:
            try:
                report = await apply_layout(nc.jetstream(), replicas, layout=layout)
            except LayoutError as e:
                raise HostError(str(e)) from e
            log.info("streams provisioned", summary=report.summary())
        health.ready_checks.setdefault(
            "nats", lambda: (nc.is_connected, "connected" if nc.is_connected else "disconnected")
        )
        server_http = MetricsServer(metrics, health, cfg.metrics_port).start()
        stack.callback(server_http.stop)
        print(
            f"{prog}: metrics on http://127.0.0.1:{server_http.port}/metrics (SIGTERM or Ctrl-C stops)",
            flush=True,
        )
        yield Host(nc=nc, url=urls[0], metrics_port=server_http.port, embedded=embedded, layout=layout)


async def stop_on_signal(stop: Callable[[], None], what: str = "stopping after the messages in hand") -> None:
    """Calls `stop()` on the first SIGTERM/SIGINT (run it in the component's task group)."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info(what, signal=signal.Signals(signum).name)
            stop()
            return

"""What every long-running consumer component stands on: NATS (or an embedded JetStream with the
streams provisioned), its metrics and health endpoint, and a stop on SIGTERM/SIGINT.

Fed by a component's `serve` (the pipeline, the correlator; the SIEM exporter has the same shape): `async with component_host(prog, component, cfg, metrics, health) as host:` gives the
connection and the URL; leaving it closes them in reverse order. `stop_on_signal(stop)` calls
`stop()` on the first SIGTERM or SIGINT, so the consumer finishes what it pulled and returns.
/metrics, /healthz and /readyz listen first; connecting and provisioning wait out a cluster that
cannot answer yet (`tapio_jetstream.startup`, /readyz false meanwhile). A startup step the server
refuses (`StartupRefused`, from the body too: a consumer bind, the snapshot bucket) is not retried:
the component stays up and not ready until SIGTERM, then exits with that error.
"""

from __future__ import annotations

import signal
import socket
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
from tapio_jetstream.startup import StartupRefused, until_answered
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
    embedded_port: int = 0,
) -> AsyncIterator[Host]:
    """NATS at `cfg.nats.urls` (or an embedded JetStream under `<data dir>/jetstream`, provisioned,
    on `embedded_port` when that is free, else on any free port), the streams provisioned when
    `provision`, and /metrics /healthz /readyz on `cfg.metrics_port`."""
    layout = production_layout(replicas, subjects=cfg.subjects)
    async with AsyncExitStack() as stack:
        urls = cfg.nats.urls
        embedded = not urls
        if embedded:
            port = embedded_port
            if port and not port_free(port):
                log.warning("port in use, the embedded JetStream takes a free one", port=port)
                port = 0
            server = EmbeddedNats(
                Path(cfg.data_dir) / "jetstream", port=port, server_name=f"tapio-{component}"
            )
            try:
                await anyio.to_thread.run_sync(server.start)
            except EmbeddedServerError as e:
                raise HostError(f"cannot start the embedded JetStream: {e}") from e
            stack.callback(server.stop, keep_store=True)
            urls = (server.url,)
            print(
                f"{prog}: embedded JetStream listening on {server.url} (store {server.store_dir})", flush=True
            )
        # /readyz answers (false, saying what it waits for) while NATS and the streams do not.
        health.ready_checks.setdefault("nats", lambda: (False, "connecting"))
        server_http = MetricsServer(metrics, health, cfg.metrics_port).start()
        stack.callback(server_http.stop)
        print(
            f"{prog}: metrics on http://127.0.0.1:{server_http.port}/metrics (SIGTERM or Ctrl-C stops)",
            flush=True,
        )
        nc = await until_answered(
            None,
            f"NATS at {', '.join(urls)}",
            lambda: connect(cfg.nats, prog, urls=urls, on_refused=lambda _: metrics.error("permission")),
            health=health,
        )
        stack.push_async_callback(nc.close)
        health.ready_checks["nats"] = lambda: (
            nc.is_connected,
            "connected" if nc.is_connected else "disconnected",
        )
        if provision or embedded:
            try:
                report = await until_answered(
                    nc,
                    "the streams to be provisioned",
                    lambda: apply_layout(nc.jetstream(), replicas, layout=layout),
                    health=health,
                )
            except LayoutError as e:
                raise HostError(str(e)) from e
            log.info("streams provisioned", summary=report.summary())
        try:
            yield Host(nc=nc, url=urls[0], metrics_port=server_http.port, embedded=embedded, layout=layout)
        except (StartupRefused, BaseExceptionGroup) as e:
            refused = refused_in(e)
            if refused is None:
                raise
            await _stay_refused(refused, health)
            raise refused from None


def refused_in(e: BaseException) -> StartupRefused | None:
    """The StartupRefused in `e` (itself, or inside a task group's exception group), or None."""
    if isinstance(e, StartupRefused):
        return e
    if isinstance(e, BaseExceptionGroup):
        for inner in e.exceptions:
            found = refused_in(inner)
            if found is not None:
                return found
    return None


async def _stay_refused(refused: StartupRefused, health: Health) -> None:
    """A refusal is not retried, and not a crash either: the ERROR line is logged (by connect),
    errors_total{kind="permission"} counted; the component stays up with /readyz false saying what
    was refused (so the refusal stays visible where a restart loop would hide it) until SIGTERM."""
    health.ready_checks["refused"] = lambda: (False, str(refused))
    log.info("not retried: staying up, not ready, until stopped", reason=str(refused))
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("stopping", signal=signal.Signals(signum).name)
            return


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:`port`."""
    try:
        probe = socket.create_server(("127.0.0.1", port))
    except OSError:
        return False
    probe.close()
    return True


async def stop_on_signal(stop: Callable[[], None], what: str = "stopping after the messages in hand") -> None:
    """Calls `stop()` on the first SIGTERM/SIGINT (run it in the component's task group)."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info(what, signal=signal.Signals(signum).name)
            stop()
            return

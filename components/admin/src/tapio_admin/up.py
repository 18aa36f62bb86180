"""`tapio-admin up`: the whole product on this machine, on one embedded JetStream.

Fed by the CLI with the common configuration. Reads the host's facts, asks `plan` which
components can run here, starts an embedded JetStream under `<data dir>/jetstream` with the
streams provisioned, then every component as its own process (`python -m <module>`) against it,
each with its own metrics port, data directory and log file. It prints where everything listens
and why a component was left out; the SIEM exporter's console sink prints each alert as it fires,
updates and resolves. Ctrl-C (or SIGTERM) stops the collectors first, then the consumers, then the
server; a component that exits on its own stops the rest (exit 1, its log's last lines shown).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import anyio
import attrs
from anyio.abc import Process, TaskStatus

from tapio_admin.plan import HostFacts, Launch, Skip, plan
from tapio_common.config import CommonConfig
from tapio_common.errors import EmbeddedServerError, TapioError
from tapio_common.logging import get_logger
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import EmbeddedNats, free_port
from tapio_jetstream.layout import production_layout
from tapio_jetstream.streams import apply_layout

log = get_logger(__name__)

DEFAULT_RULES = Path(__file__).with_name("up_rules.yaml")
STOP_GRACE = 30.0  # seconds a component has to stop after SIGTERM before it is killed
COLLECTORS_FIRST = ("collector",)  # stop order: collectors, then consumers (they drain what came)


class UpError(TapioError):
    """The product could not be started, or a component stopped on its own."""


def host_facts() -> HostFacts:
    try:
        pid1 = Path("/proc/1/comm").read_text(encoding="utf-8").strip()
    except OSError:
        pid1 = ""
    try:
        import bcc  # noqa: F401  (only whether it imports)

        has_bcc = True
    except ImportError:
        has_bcc = False
    kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    return HostFacts(
        root=os.geteuid() == 0,
        bcc=has_bcc,
        pid1=pid1,
        kubeconfig=kubeconfig if Path(kubeconfig).is_file() else None,
    )


@attrs.define
class Running:
    launch: Launch
    process: Process
    metrics_port: int
    log_path: Path | None


@attrs.define
class Product:
    """What `up` started (the e2e suite reads it)."""

    url: str
    running: list[Running]
    skipped: list[Skip]
    stopping: anyio.Event = attrs.field(factory=anyio.Event)

    def stop(self) -> None:
        self.stopping.set()


def _port_or_free(port: int) -> int:
    try:
        probe = socket.create_server(("127.0.0.1", port))
    except OSError:
        return free_port()
    probe.close()
    return port


async def up(
    cfg: CommonConfig,
    *,
    rules: Path = DEFAULT_RULES,
    nats_port: int = 4222,
    only: Sequence[str] = (),
    exporter_sinks: Sequence[str] = (),
    facts: HostFacts | None = None,
    handle_signals: bool = True,
    task_status: TaskStatus[Product] = anyio.TASK_STATUS_IGNORED,
) -> None:
    data = Path(cfg.data_dir)
    launches, skips = plan(facts or host_facts(), str(rules), exporter_sinks)
    if only:
        unknown = set(only) - {launch.name for launch in launches} - {s.name for s in skips}
        if unknown:
            raise UpError(f"unknown component(s): {', '.join(sorted(unknown))}")
        skips += [Skip(x.name, "not asked for (--only)") for x in launches if x.name not in only]
        launches = [x for x in launches if x.name in only]
    (data / "logs").mkdir(parents=True, exist_ok=True)
    server = EmbeddedNats(data / "jetstream", port=_port_or_free(nats_port), server_name="tapio")
    try:
        await anyio.to_thread.run_sync(server.start)
    except EmbeddedServerError as e:
        raise UpError(f"cannot start the embedded JetStream: {e}") from e
    try:
        nc = await connect(cfg.nats, "tapio-admin-up", urls=(server.url,))
        try:
            await apply_layout(nc.jetstream(), 1, layout=production_layout(1, subjects=cfg.subjects))
        finally:
            await nc.close()
        running: list[Running] = []
        logs: list[IO[bytes]] = []
        try:
            for launch in launches:
                running.append(await _start(launch, server.url, data, logs, cfg.subjects.prefix))
            product = Product(server.url, running, skips)
            _announce(server, product)
            task_status.started(product)
            failed = await _watch(product, handle_signals)
        finally:
            await _stop_all(running)
            for f in logs:
                f.close()
        if failed is not None:
            tail = failed.log_path.read_text(errors="replace").splitlines()[-15:] if failed.log_path else []
            raise UpError(
                f"{failed.launch.name} stopped on its own (exit {failed.process.returncode}); the others were "
                f"stopped. Its log {failed.log_path}:\n" + "\n".join(tail)
            )
    finally:
        await anyio.to_thread.run_sync(lambda: server.stop(keep_store=True))
    print("tapio: everything stopped", flush=True)


async def _start(launch: Launch, url: str, data: Path, logs: list[IO[bytes]], prefix: str) -> Running:
    port = free_port()
    argv = [sys.executable, "-m", launch.module, *launch.args, "--nats-url", url, "--subject-prefix", prefix,
            "--metrics-port", str(port), "--data-dir", str(data / launch.name)]  # fmt: skip
    log_path = data / "logs" / f"{launch.name}.log"
    log_file = log_path.open("ab")
    logs.append(log_file)
    stdout: IO[bytes] | None = None if launch.console else log_file
    process = await anyio.open_process(argv, stdout=stdout, stderr=log_file, start_new_session=True)
    return Running(launch, process, port, log_path)


def _announce(server: EmbeddedNats, product: Product) -> None:
    print(f"tapio: embedded JetStream on {server.url} (store {server.store_dir}, monitoring "
          f"http://127.0.0.1:{server.monitor_port})", flush=True)  # fmt: skip
    for r in product.running:
        print(f"tapio: {r.launch.name:<18} pid {r.process.pid:<7} metrics http://127.0.0.1:{r.metrics_port}/metrics"
              f"  log {r.log_path}", flush=True)  # fmt: skip
    for s in product.skipped:
        print(f"tapio: {s.name:<18} not started: {s.reason}", flush=True)
    print("tapio: alerts appear below as they fire, update and resolve; Ctrl-C stops everything", flush=True)


async def _watch(product: Product, handle_signals: bool) -> Running | None:
    """Until a signal or `product.stop()` (None), or a component exiting on its own (it)."""
    failed: list[Running] = []
    async with anyio.create_task_group() as tg:

        async def wait_one(r: Running) -> None:
            await r.process.wait()
            if not product.stopping.is_set():
                failed.append(r)
                product.stop()

        async def signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
                async for signum in received:
                    print(f"tapio: {signal.Signals(signum).name}: stopping", flush=True)
                    product.stop()
                    return

        for r in product.running:
            tg.start_soon(wait_one, r)
        if handle_signals:
            tg.start_soon(signals)
        await product.stopping.wait()
        tg.cancel_scope.cancel()
    return failed[0] if failed else None


async def _stop_all(running: list[Running]) -> None:
    collectors = [r for r in running if r.launch.name.endswith(COLLECTORS_FIRST)]
    consumers = [r for r in running if r not in collectors]
    with anyio.CancelScope(shield=True):
        for group in (collectors, consumers):
            for r in group:
                if r.process.returncode is None:
                    r.process.send_signal(signal.SIGTERM)
            for r in group:
                with anyio.move_on_after(STOP_GRACE) as scope:
                    await r.process.wait()
                if scope.cancelled_caught:
                    log.warning("component did not stop in time: killed", component=r.launch.name)
                    r.process.kill()
                    await r.process.wait()

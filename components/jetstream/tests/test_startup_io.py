"""Startup against a real nats-server that cannot answer JetStream yet, and one that refuses: the
consumer's bind waits for the first (then binds once JetStream answers), and fails at once on the
second (a refusal is never retried); which errors count as a cluster in election."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import nats
import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import APIError, BadRequestError, NotFoundError, ServiceUnavailableError

from tapio.events.v1 import events_pb2
from tapio_common.config import CommonConfig, NatsConfig
from tapio_common.errors import NatsUnavailableError
from tapio_common.metrics import ComponentMetrics, Health
from tapio_common.nats.connect import connect, refusals
from tapio_common.nats.embedded import find_nats_server
from tapio_jetstream import EVENT_MESSAGES, Consumer, ConsumerError, ConsumerSettings, Delivery
from tapio_jetstream.host import component_host
from tapio_jetstream.layout import EVENTS, ConsumerSpec, production_layout
from tapio_jetstream.startup import StartupError, StartupRefused, transient, until_answered
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings
from tapio_testing.wait import eventually

pytestmark = pytest.mark.anyio

SPEC = ConsumerSpec(EVENTS, "startup-test", "tapio.events.>", max_deliver=3, ack_wait=5.0)
FAST = ConsumerSettings(expires=0.3, info_interval=0.2, bind_wait=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """nats-server on a fixed port, started and stopped by the test (with or without JetStream)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, *args: str) -> None:
        self.stop()
        argv = [find_nats_server(), "-a", "127.0.0.1", "-p", str(self.port), *args]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nats-server did not listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    yield s
    s.stop()


class Recorder:
    def __init__(self) -> None:
        self.ids: list[str] = []

    async def handle(self, delivery: Delivery[events_pb2.Event]) -> None:
        self.ids.extend(e.id for e in delivery.items)


async def test_a_consumer_waits_while_jetstream_cannot_answer_and_binds_once_it_does(
    server: Server, tmp_path: Path
) -> None:
    server.start()  # no JetStream yet: every JetStream request has no responder
    cfg = NatsConfig(urls=(server.url,), reconnect_wait=0.2)
    nc = await connect(cfg, "startup-test")
    health = Health()
    async with Publisher(PublisherSettings(spool_dir=str(tmp_path / "spool")), nc=nc) as pub:
        rec = Recorder()
        consumer = Consumer(
            nc, SPEC, EVENT_MESSAGES, rec, component="startup-test", publisher=pub,
            metrics=ComponentMetrics("startup_test"), settings=FAST,
        )  # fmt: skip
        consumer.attach(health)
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer.run)
            await anyio.sleep(2.0)  # a few attempts, each answered "no responders"
            assert not consumer.bound
            ok, text = health.run("ready")
            assert not ok, text
            assert "not bound" in text, text
            # JetStream comes (a node back with its store): the same port, the client reconnects
            await anyio.to_thread.run_sync(lambda: server.start("-js", "-sd", str(tmp_path / "js")))
            async with await nats.connect(server.url) as admin:
                await apply_layout(admin.jetstream(), 1, layout=production_layout(1, scale=0.001))
                await admin.jetstream().publish(
                    "tapio.events.k8s.default.pods.created",
                    events_pb2.Event(id="ev-1", type="pods").SerializeToString(),
                    headers={"Nats-Msg-Id": "ev-1"},
                )
            await eventually(lambda: bool(rec.ids), "the event handled once bound", within=30)
            assert consumer.bound
            assert rec.ids == ["ev-1"]
            consumer.stop()
    await nc.close()


async def start_with_a_reader(server: Server, tmp_path: Path) -> None:
    """The server with user `reader`, who may publish events but not use the JetStream API."""
    conf = tmp_path / "auth.conf"
    conf.write_text(
        'jetstream { store_dir: "%s" }\n'
        "authorization { users = [\n"
        "  { user: admin, password: a }\n"
        '  { user: reader, password: r, permissions: { publish: { allow: ["tapio.>", "$JS.API.INFO"] },'
        ' subscribe: { allow: ["_INBOX.reader.>"] } } }\n'
        "] }\n" % (tmp_path / "js")
    )
    server.start("-c", str(conf))
    async with await nats.connect(server.url, user="admin", password="a") as admin:
        await apply_layout(admin.jetstream(), 1, layout=production_layout(1, scale=0.001))


async def test_a_refused_bind_fails_at_once_and_is_never_retried(server: Server, tmp_path: Path) -> None:
    await start_with_a_reader(server, tmp_path)
    refused: list[str] = []
    nc = await connect(
        NatsConfig(urls=(server.url,), user="reader", password="r"), "startup-test", on_refused=refused.append
    )
    try:
        async with Publisher(PublisherSettings(spool_dir=str(tmp_path / "spool")), nc=nc) as pub:
            consumer = Consumer(
                nc, SPEC, EVENT_MESSAGES, Recorder(), component="startup-test", publisher=pub,
                metrics=ComponentMetrics("startup_test"), settings=FAST,
            )  # fmt: skip
            started = time.monotonic()
            with pytest.raises(StartupRefused, match="permissions violation"):
                await consumer.run()
            assert time.monotonic() - started < 15, "refused at the first attempt, not after bind_wait"
            assert refusals(nc)[0] == len(refused) >= 1
    finally:
        await nc.close()


async def test_a_refused_component_stays_up_not_ready_until_sigterm(server: Server, tmp_path: Path) -> None:
    await start_with_a_reader(server, tmp_path)
    metrics, health = ComponentMetrics("startup_test"), Health()
    nats_cfg = NatsConfig(urls=(server.url,), user="reader", password="r")
    cfg = CommonConfig(nats=nats_cfg, metrics_port=0, data_dir=str(tmp_path / "data"))
    ended: list[BaseException] = []

    async def component() -> None:
        try:
            async with component_host("tapio-test", "startup-test", cfg, metrics, health) as host:
                settings = PublisherSettings(spool_dir=str(tmp_path / "spool"))
                async with Publisher(settings, nc=host.nc) as pub:
                    consumer = Consumer(
                        host.nc, SPEC, EVENT_MESSAGES, Recorder(), component="startup-test",
                        publisher=pub, metrics=metrics, settings=FAST,
                    )  # fmt: skip
                    consumer.attach(health)
                    await consumer.run()
        except StartupRefused as e:
            ended.append(e)

    def refused() -> bool:
        return "FAIL refused: the durable consumer" in health.run("ready")[1]

    async with anyio.create_task_group() as tg:
        tg.start_soon(component)
        await eventually(refused, "/readyz saying what was refused", within=20)
        await anyio.sleep(1.0)
        assert not ended, "a refusal keeps the component up"
        assert not health.run("ready")[0]
        errors = metrics.registry.get_sample_value("tapio_startup_test_errors_total", {"kind": "permission"})
        assert errors is not None
        assert errors >= 1
        os.kill(os.getpid(), signal.SIGTERM)  # the host's signal receiver takes it
        await eventually(lambda: bool(ended), "the component stopped by SIGTERM", within=10)
    assert "permissions violation" in str(ended[0])


async def test_waiting_ends_when_stopping_or_after_wait() -> None:
    attempts = 0

    async def never() -> None:
        nonlocal attempts
        attempts += 1
        raise ConsumerError("cannot read consumer x") from NatsTimeoutError()

    with pytest.raises(StartupError, match="no answer from the NATS cluster"):
        await until_answered(None, "consumer x", never, wait=1.0)
    assert attempts >= 2
    with pytest.raises(StartupError):
        await until_answered(None, "consumer x", never, stopping=lambda: True)


async def test_what_is_not_a_cluster_in_election_is_raised_at_once() -> None:
    async def bad() -> None:
        raise ConsumerError("bad") from BadRequestError(code=400, err_code=10052, description="bad config")

    with pytest.raises(ConsumerError):
        await until_answered(None, "consumer x", bad, wait=30)


def test_transient_errors_are_those_of_a_cluster_in_election() -> None:
    assert transient(NatsTimeoutError())
    assert transient(NoRespondersError())
    assert transient(ServiceUnavailableError(code=503, err_code=10008))
    assert transient(APIError(code=400, err_code=10005, description="no suitable peers for placement"))
    wrapped = ConsumerError("cannot read consumer")
    wrapped.__cause__ = NatsTimeoutError()
    assert transient(wrapped)
    assert transient(NatsUnavailableError("cannot reach NATS at nats://a:4222: connection refused"))
    assert not transient(NatsUnavailableError("cannot connect to NATS: authorization violation"))
    assert not transient(NatsUnavailableError("cannot connect: [SSL: CERTIFICATE_VERIFY_FAILED]"))
    assert not transient(
        NatsUnavailableError("cannot reach NATS at nats://nast:4222: Name or service not known")
    )
    assert not transient(NotFoundError(code=404, err_code=10014))
    assert not transient(BadRequestError(code=400, err_code=10058))
    assert not transient(ValueError("a bug"))

"""The JetStream test engines (container via testcontainers/podman, or the binary) serve real JetStream;
the production 3-node cluster (tapio_testing.natscluster) keeps an R3 stream through the loss of a node."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import attrs
import pytest
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.api import StreamInfo

from tapio_common.config import NatsConfig
from tapio_common.errors import EmbeddedServerError
from tapio_common.nats.connect import connect
from tapio_testing.engine import ENGINE_ENV, choose_engine, probe_container_engine, requested_engine
from tapio_testing.jetstream import JetStreamServer, healthz
from tapio_testing.natscluster import NatsCluster
from tapio_testing.pytest_plugin import each_engine
from tapio_testing.skip_policy import skip_not_requested

pytestmark = pytest.mark.anyio


async def _connect(*urls: str) -> Client:
    return await connect(NatsConfig(urls=urls, connect_timeout=2, reconnect_wait=0.2), "engine-test")


def _payloads(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}-{i}".encode() for i in range(n)]


async def _read_all(nc: Client, stream: str, count: int) -> list[bytes]:
    js = nc.jetstream()
    return [(await js.get_msg(stream, seq)).data or b"" for seq in range(1, count + 1)]


@each_engine
async def test_publish_and_read_back(jetstream: JetStreamServer) -> None:
    nc = await _connect(jetstream.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="ENGINE", subjects=["engine.>"], storage="file")
        sent = _payloads("m", 50)
        acks = [await js.publish(f"engine.{i % 5}", data) for i, data in enumerate(sent)]
        assert [a.seq for a in acks] == list(range(1, 51))
        assert {a.stream for a in acks} == {"ENGINE"}
        sub = await js.pull_subscribe("engine.>", durable="reader")
        got: list[bytes] = []
        while len(got) < len(sent):
            for msg in await sub.fetch(len(sent) - len(got), timeout=5):
                got.append(msg.data)
                await msg.ack()
        assert got == sent
        info = await js.stream_info("ENGINE")
        assert info.state.messages == 50
    finally:
        await nc.close()
    assert (jetstream.store_dir / "jetstream").is_dir(), "the file store lives in the handle's store dir"


@each_engine
async def test_kill_and_restart_keep_acknowledged_messages(jetstream: JetStreamServer) -> None:
    url = jetstream.url
    nc = await _connect(url)
    js = nc.jetstream()
    await js.add_stream(name="CRASH", subjects=["crash.>"], storage="file")
    before = _payloads("before", 200)
    for data in before:
        await js.publish("crash.a", data)
    await nc.close()

    jetstream.kill()
    assert not jetstream.is_running()
    assert healthz(jetstream.host, jetstream.monitor_port)[0] is None, "a killed server answers nothing"
    jetstream.restart()
    assert jetstream.url == url, "restart keeps the URL"

    nc = await _connect(jetstream.url)
    try:
        js = nc.jetstream()
        assert (await js.stream_info("CRASH")).state.messages == 200
        after = _payloads("after", 20)
        for data in after:
            await js.publish("crash.b", data)
        assert await _read_all(nc, "CRASH", 220) == before + after
    finally:
        await nc.close()


async def _stream_info(nc: Client, stream: str) -> StreamInfo:
    info = await nc.jetstream().stream_info(stream)
    assert info.cluster is not None, "a clustered stream reports its cluster"
    return info


def _peers(info: StreamInfo) -> dict[str, bool]:
    """Stream peer name -> current (the leader counts as current)."""
    assert info.cluster is not None
    peers = {r.name: bool(r.current) for r in info.cluster.replicas or [] if r.name}
    if info.cluster.leader is not None:
        peers[info.cluster.leader] = True
    return peers


async def _publish_retrying(nc: Client, subject: str, data: bytes, deadline: float) -> int:
    """Publish until acked: right after a node is lost the stream may be electing a new leader."""
    js = nc.jetstream()
    while True:
        try:
            return (await js.publish(subject, data, timeout=2)).seq
        except (NatsError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await anyio.sleep(0.2)


async def _connect_as_admin(cluster: NatsCluster, *urls: str) -> Client:
    """tapio-admin over TLS with its certificate (the production cluster has no anonymous user)."""
    cfg = cluster.identity("admin").nats_config(urls)
    return await connect(attrs.evolve(cfg, connect_timeout=2, reconnect_wait=0.2), "engine-test")


async def test_cluster_r3_stream_survives_losing_a_node(nats_cluster: NatsCluster) -> None:
    names = [f"nats-jetstream-{i}" for i in range(3)]
    assert [n.name for n in nats_cluster.nodes] == names
    nc = await _connect_as_admin(nats_cluster, *nats_cluster.urls)
    try:
        js = nc.jetstream()
        await js.add_stream(name="R3", subjects=["tapio.r3test.>"], storage="file", num_replicas=3)
        info = await _stream_info(nc, "R3")
        assert info.config.num_replicas == 3
        assert info.cluster is not None
        assert info.cluster.name == "tapio-nats"
        assert info.cluster.leader in names
        assert sorted(_peers(info)) == names
        before = _payloads("before", 100)
        for data in before:
            await js.publish("tapio.r3test.a", data)
        leader = info.cluster.leader
    finally:
        await nc.close()

    nats_cluster.kill(leader)  # the worst node to lose: the stream leader
    survivors = [n.url for n in nats_cluster.nodes if n.name != leader]
    nc = await _connect_as_admin(nats_cluster, *survivors)
    try:
        deadline = time.monotonic() + 30
        after = _payloads("after", 50)
        seqs = [await _publish_retrying(nc, "tapio.r3test.b", data, deadline) for data in after]
        assert seqs == list(range(101, 151)), "2 of 3 replicas keep accepting writes"
        info = await _stream_info(nc, "R3")
        assert info.cluster is not None
        assert info.cluster.leader not in (None, leader), "another node leads the stream"
        assert info.state.messages == 150
        assert await _read_all(nc, "R3", 150) == before + after
    finally:
        await nc.close()

    nats_cluster.restart(leader)
    nc = await _connect_as_admin(nats_cluster, nats_cluster.node(leader).url)
    try:
        with anyio.fail_after(30):
            while True:  # the restarted node catches up and is a current replica again
                info = await _stream_info(nc, "R3")
                peers = _peers(info)
                if sorted(peers) == names and all(peers.values()):
                    break
                await anyio.sleep(0.2)
        assert info.state.messages == 150
    finally:
        await nc.close()


async def test_default_fixture_uses_the_session_engine(jetstream: JetStreamServer) -> None:
    assert jetstream.engine == choose_engine().engine
    nc = await _connect(jetstream.url)
    try:
        assert nc.is_connected
        assert nc.connected_server_version.major >= 2
    finally:
        await nc.close()


def test_forced_container_engine_without_an_engine_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    monkeypatch.setenv("TAPIO_NATS_ENGINE", "container")
    with pytest.raises(EmbeddedServerError, match=r"container engine requested .* does not answer"):
        choose_engine()
    monkeypatch.setenv("TAPIO_NATS_ENGINE", "auto")
    choice = choose_engine()
    assert choice.engine == "binary"
    assert "does not answer" in choice.detail


def test_missing_image_is_never_pulled(monkeypatch: pytest.MonkeyPatch) -> None:
    if requested_engine() == "binary":
        skip_not_requested(f"{ENGINE_ENV}=binary")
    host, detail = probe_container_engine("localhost/tapio-nats:latest")
    if host is None:
        pytest.skip(f"no container engine: {detail}")
    monkeypatch.setenv("DOCKER_HOST", host)
    host, detail = probe_container_engine("localhost/tapio-no-such-image:0")
    assert host is None
    assert "has no image localhost/tapio-no-such-image:0" in detail

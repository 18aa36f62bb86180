"""TapioClient.ack_many on a real nats-server: every message it acks is acked on the server (the
durable's ack floor moves over all of them, nothing stays pending or comes again), in one
buffered command; messages it cannot ack that way go through nats-py's `Msg.ack` and its errors."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, MsgAlreadyAckdError
from nats.js import api

from tapio_common.config import NatsConfig
from tapio_common.nats.client import TapioClient
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import EmbeddedNats

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _pulled(nc: TapioClient, count: int) -> list[Msg]:
    js = nc.jetstream()
    await js.add_stream(name="T", subjects=["t.>"])
    for i in range(count):
        await js.publish(f"t.{i % 3}", f"m{i}".encode())
    cfg = api.ConsumerConfig(durable_name="d", ack_policy=api.AckPolicy.EXPLICIT, ack_wait=2.0)
    sub = await js.pull_subscribe("t.>", durable="d", stream="T", config=cfg)
    msgs: list[Msg] = []
    while len(msgs) < count:
        msgs += await sub.fetch(count - len(msgs), timeout=5)
    return msgs


async def test_ack_many_acks_every_message_on_the_server(tmp_path: Path) -> None:
    with EmbeddedNats(tmp_path / "js") as server:
        nc = await connect(NatsConfig(urls=(server.url,)), "test")
        assert isinstance(nc, TapioClient)
        try:
            msgs = await _pulled(nc, 50)
            writes_before = nc.stats["out_msgs"]
            await nc.ack_many(msgs)
            assert nc.stats["out_msgs"] - writes_before == 50
            assert all(m._ackd for m in msgs)
            await nc.flush()
            info = await nc.jetstream().consumer_info("T", "d")
            assert info.ack_floor.stream_seq == 50
            assert info.num_ack_pending == 0
            await anyio.sleep(2.5)  # past ack_wait: an unacked message would be redelivered now
            info = await nc.jetstream().consumer_info("T", "d")
            assert info.num_redelivered == 0
            assert info.num_ack_pending == 0
        finally:
            await nc.close()


async def test_ack_many_leaves_what_it_cannot_ack_to_nats_py(tmp_path: Path) -> None:
    with EmbeddedNats(tmp_path / "js") as server:
        nc = await connect(NatsConfig(urls=(server.url,)), "test")
        assert isinstance(nc, TapioClient)
        try:
            msgs = await _pulled(nc, 4)
            await msgs[1].ack()
            with pytest.raises(MsgAlreadyAckdError):  # nats-py's own error, after the first was acked
                await nc.ack_many(msgs)
            assert msgs[0]._ackd
            await nc.ack_many(msgs[2:])
            await nc.flush()
            info = await nc.jetstream().consumer_info("T", "d")
            assert info.ack_floor.stream_seq == 4
            assert info.num_ack_pending == 0
        finally:
            await nc.close()


async def test_ack_many_while_closed_raises_as_nats_py_does(tmp_path: Path) -> None:
    with EmbeddedNats(tmp_path / "js") as server:
        nc = await connect(NatsConfig(urls=(server.url,)), "test")
        assert isinstance(nc, TapioClient)
        msgs = await _pulled(nc, 2)
        await nc.close()
        with pytest.raises(ConnectionClosedError):  # what Msg.ack raises on a closed connection
            await nc.ack_many(msgs)
        with pytest.raises(ConnectionClosedError):
            await msgs[0].ack()

"""The puller on a real JetStream: with Tapio's client messages go straight from the parser into the
consumer's buffer, and through the subscription's callback while the consumer is behind; either way
every message arrives once, in stream order, and the open requests are accounted for."""

from __future__ import annotations

import anyio
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from tapio_jetstream.layout import CORRELATOR, production_layout
from tapio_jetstream.pull import Puller
from tapio_publisher.codec import MSG_ID_HEADER

pytestmark = pytest.mark.anyio

SUBJECT = "tapio.events.k8s.default.pods.updated"


async def fill(nc: Client, n: int) -> None:
    js = nc.jetstream()
    for i in range(n):
        await js.publish(SUBJECT, f"m{i}".encode(), headers={MSG_ID_HEADER: f"m{i}"})


@pytest.mark.parametrize("slow", [False, True], ids=["keeping-up", "behind"])
async def test_every_message_once_in_order(nc: Client, slow: bool) -> None:
    n = 60
    await fill(nc, n)
    spec = production_layout(1, scale=0.001).consumer(CORRELATOR)
    send, receive = anyio.create_memory_object_stream[Msg](max_buffer_size=2 if slow else 1000)
    puller = Puller(nc, spec.stream, spec.durable, send, batch=16, ahead=2, expires=1.0)
    await puller.start()
    got: list[bytes] = []
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(puller.run)
            with anyio.fail_after(30):
                while len(got) < n:
                    msg = await receive.receive()
                    got.append(msg.data)
                    await msg.ack()
                    if slow:
                        await anyio.sleep(0.01)  # a consumer slower than the socket
            puller.stop()
            tg.cancel_scope.cancel()
    finally:
        await puller.close()
    assert got == [f"m{i}".encode() for i in range(n)]
    if slow:
        assert puller.declined > 0, "some messages went through the subscription's callback"
        assert puller._behind == 0, "and the direct path took over again once it caught up"
    else:
        assert puller.declined == 0


async def test_a_consumer_that_does_not_answer_is_asked_again_with_a_growing_pause(nc: Client) -> None:
    """The durable gone (deleted; its leader being elected in a cluster): every pull request is
    answered 503 at once. The puller must not spin (thousands of requests and WARNING lines a
    second): it pauses between requests, and takes messages again once the consumer is back."""
    spec = production_layout(1, scale=0.001).consumer(CORRELATOR)
    js = nc.jetstream()
    send, receive = anyio.create_memory_object_stream[Msg](max_buffer_size=100)
    puller = Puller(nc, spec.stream, spec.durable, send, batch=16, ahead=2, expires=1.0)
    await puller.start()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(puller.run)
            await anyio.sleep(0.3)
            config = (await js.consumer_info(spec.stream, spec.durable)).config
            await js.delete_consumer(spec.stream, spec.durable)
            before = puller.requests
            await anyio.sleep(2.0)
            asked = puller.requests - before
            await js.add_consumer(spec.stream, config)
            await fill(nc, 3)
            with anyio.fail_after(10):
                got = [(await receive.receive()).data for _ in range(3)]
            puller.stop()
            tg.cancel_scope.cancel()
    finally:
        await puller.close()
    assert asked <= 30, f"{asked} pull requests in 2 s to a consumer that is not there"
    assert got == [b"m0", b"m1", b"m2"]

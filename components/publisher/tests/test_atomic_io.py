"""Atomic batch publishing against a real JetStream (nats-server 2.12+): one ack a batch, the
batch limit, a batch holding a stored message id, and a stream without allow_atomic."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client

from tapio_publisher import Publisher, PublisherSettings
from tapio_publisher.atomic import BATCH_ID_HEADER
from tapio_publisher.codec import MSG_ID_HEADER

pytestmark = pytest.mark.anyio


def settings(tmp_path: Path) -> PublisherSettings:
    return PublisherSettings(spool_dir=str(tmp_path / "spool"), batch_max_events=1, max_inflight=64)


def alerts(first: int, last: int) -> list[tuple[str, bytes, str]]:
    return [
        (f"tapio.alerts.error.svc-{n % 7}", f"alert {n}".encode(), f"a{n}:1:firing")
        for n in range(first, last)
    ]


async def stored(nc: Client, stream: str) -> list[tuple[str, str, bytes]]:
    """(Nats-Msg-Id, Nats-Batch-Id, data) of every message, in stream order."""
    js = nc.jetstream()
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        headers = msg.headers or {}
        out.append((headers.get(MSG_ID_HEADER, ""), headers.get(BATCH_ID_HEADER, ""), msg.data or b""))
    return out


async def test_messages_are_stored_in_atomic_batches_of_at_most_the_limit(nc: Client, tmp_path: Path) -> None:
    async with Publisher(settings(tmp_path), nc=nc) as pub:
        acks_before = next(iter(pub.metrics.ack_latency.collect())).samples
        receipt = await pub.publish_atomic(alerts(0, 2500))
        with anyio.fail_after(20):
            await receipt.wait()
        assert receipt.fallbacks == 0
        acks = next(iter(pub.metrics.ack_latency.collect())).samples
    got = await stored(nc, "TAPIO_ALERTS")
    assert [m for m, _, _ in got] == [f"a{n}:1:firing" for n in range(2500)]  # every one, in order
    assert got[1234][2] == b"alert 1234"
    batches = [b for _, b, _ in got]
    assert [batches.count(b) for b in dict.fromkeys(batches)] == [1000, 1000, 500]  # one batch a 1000
    count = next(s.value for s in acks if s.name.endswith("_count"))
    count_before = next((s.value for s in acks_before if s.name.endswith("_count")), 0.0)
    assert count - count_before == 3  # three acks for 2500 messages


async def test_a_batch_holding_a_stored_message_goes_again_one_by_one(nc: Client, tmp_path: Path) -> None:
    # JetStream refuses a whole atomic batch when one of its message ids is stored already (a retry
    # after a lost ack): its messages go again one by one, the duplicates dropped on their own.
    async with Publisher(settings(tmp_path), nc=nc) as pub:
        first = await pub.publish_atomic(alerts(0, 10))
        await first.wait()
        again = await pub.publish_atomic(alerts(5, 30))
        with anyio.fail_after(20):
            await again.wait()
        assert again.fallbacks == 1
        later = await pub.publish_atomic(alerts(30, 40))  # atomic batches still on
        await later.wait()
        assert later.fallbacks == 0
    got = await stored(nc, "TAPIO_ALERTS")
    assert [m for m, _, _ in got] == [f"a{n}:1:firing" for n in range(40)]  # none twice, none lost


async def test_a_stream_without_atomic_batches_gets_the_messages_one_by_one(
    nc: Client, tmp_path: Path
) -> None:
    events = [(f"tapio.events.k8s.pod.warning.x{n}", b"e", f"e{n}") for n in range(20)]
    async with Publisher(settings(tmp_path), nc=nc) as pub:
        refused = await pub.publish_atomic(events[:10])
        with anyio.fail_after(20):
            await refused.wait()
        assert refused.fallbacks == 1  # TAPIO_EVENTS does not allow atomic batches
        then = await pub.publish_atomic(events[10:])
        await then.wait()
        assert then.fallbacks == 0  # the publisher remembers: one by one at once
    got = await stored(nc, "TAPIO_EVENTS")
    assert [(m, b) for m, b, _ in got] == [(f"e{n}", "") for n in range(20)]


async def test_batch_headers_of_a_stored_message_are_not_passed_on(nc: Client, tmp_path: Path) -> None:
    # A consumer dead-letters a message with its stored headers: the batch headers it came with
    # would make the dead letter part of a batch (refused by a stream without atomic batches).
    async with Publisher(settings(tmp_path), nc=nc) as pub:
        await (await pub.publish_atomic(alerts(0, 3))).wait()
        msg = await nc.jetstream().get_msg("TAPIO_ALERTS", 2)
        assert msg.headers is not None
        assert BATCH_ID_HEADER in msg.headers
        receipt = await pub.publish_message(
            "tapio.dlq.siem-exporter", b"x", msg_id="dlq-1", headers=msg.headers
        )
        with anyio.fail_after(10):
            await receipt.wait()
    [(msg_id, batch, _)] = await stored(nc, "TAPIO_DLQ")
    assert (msg_id, batch) == ("dlq-1", "")


async def test_the_receipt_gives_each_message_its_stream_sequence(nc: Client, tmp_path: Path) -> None:
    # batches of 1000 and 500, then a batch holding a stored id (refused whole, sent one by one:
    # the stored one keeps its first sequence)
    async with Publisher(settings(tmp_path), nc=nc) as pub:
        with anyio.fail_after(20):
            first = await (await pub.publish_atomic(alerts(0, 1500))).wait()
            again = await (await pub.publish_atomic(alerts(1499, 1503))).wait()
    got = await stored(nc, "TAPIO_ALERTS")
    seq_of = {msg_id: seq for seq, (msg_id, _, _) in enumerate(got, 1)}
    assert first == [seq_of[f"a{n}:1:firing"] for n in range(1500)]
    assert again == [seq_of[f"a{n}:1:firing"] for n in range(1499, 1503)]
    assert again[0] == 1500

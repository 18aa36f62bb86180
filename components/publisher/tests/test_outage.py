"""NATS down or refusing: events go to the spool and come back, in order, exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import nats
import pytest
from nats.aio.client import Client

from tapio.events.v1 import events_pb2
from tapio_common.config import NatsConfig
from tapio_jetstream import decode_events
from tapio_jetstream.layout import production_layout
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings
from tapio_testing.jetstream import JetStreamServer

pytestmark = pytest.mark.anyio
TOPOLOGY = production_layout(1, scale=0.001)


async def connect(url: str) -> Client:
    return await nats.connect(url, reconnect_time_wait=0.2, max_reconnect_attempts=-1)


@pytest.fixture
async def nc(jetstream: JetStreamServer) -> AsyncIterator[Client]:
    client = await connect(jetstream.url)
    await apply_layout(client.jetstream(), 1, layout=TOPOLOGY)
    yield client
    await client.close()


def settings(tmp_path: Path, **kw: object) -> PublisherSettings:
    base: dict[str, object] = {
        "spool_dir": str(tmp_path / "spool"),
        "batch_linger": 0.01,
        "batch_max_events": 50,
        "ack_timeout": 2.0,
        "retry_backoff": 0.1,
        "spool_fsync": "always",
    }
    base.update(kw)
    return PublisherSettings(**base)  # type: ignore[arg-type]


async def stream_ids(nc: Client, stream: str = "TAPIO_EVENTS") -> list[str]:
    js = nc.jetstream()
    info = await js.stream_info(stream)
    ids = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        ids += [e.id for e in decode_events(msg.headers, msg.data or b"")]
    return ids


def k8s_events(events: list[events_pb2.Event]) -> list[events_pb2.Event]:
    """One subject only, so the order on the wire is the order of publishing."""
    out = [e for e in events if e.source == events_pb2.SOURCE_K8S]
    for i, ev in enumerate(out):
        ev.id = f"ev-{i:05d}"
        ev.type, ev.action = "pods", "updated"
        ev.context.namespace = "team-a"
    return out


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Polls state that has no event to wait on (connection status, spool counters), up to 20 s."""
    for _ in range(400):
        if predicate():
            return
        await anyio.sleep(0.05)
    raise AssertionError("condition not reached within 20 s")


async def test_outage_spools_then_replays_in_order_exactly_once(
    jetstream: JetStreamServer, nc: Client, tmp_path: Path, events: list[events_pb2.Event]
) -> None:
    evs = k8s_events(events)
    third = len(evs) // 3
    async with Publisher(settings(tmp_path), nc=nc) as pub:
        await pub.publish_many(evs[:third])
        with anyio.fail_after(20):
            await pub.flush()
        jetstream.kill()
        await wait_until(lambda: not nc.is_connected)
        await pub.publish_many(evs[third : 2 * third])
        await wait_until(lambda: pub.spooling and pub._spooler.spool.pending_events >= third)
        assert any((tmp_path / "spool").glob("*.seg")), "spooled to disk"
        await anyio.to_thread.run_sync(jetstream.restart)
        await pub.publish_many(evs[2 * third :])
        with anyio.fail_after(60):
            await pub.flush()
        assert not pub.spooling
    assert await stream_ids(nc) == [e.id for e in evs]


async def test_receipt_is_confirmed_only_after_the_outage(
    jetstream: JetStreamServer, nc: Client, tmp_path: Path
) -> None:
    async with Publisher(settings(tmp_path), nc=nc) as pub:
        jetstream.kill()
        await wait_until(lambda: not nc.is_connected)
        receipt = await pub.publish_message("tapio.correlations.high.crash_loop", b"c", msg_id="corr-9")
        await anyio.sleep(0.5)
        assert not receipt.done
        await anyio.to_thread.run_sync(jetstream.restart)
        with anyio.fail_after(30):
            ack = await receipt.wait()
    assert (ack.stream, ack.seq) == ("TAPIO_CORRELATIONS", 1)


async def test_missing_stream_is_retried_until_it_exists(
    jetstream: JetStreamServer, tmp_path: Path, events: list[events_pb2.Event]
) -> None:
    client = await connect(jetstream.url)
    try:
        async with Publisher(settings(tmp_path), nc=client) as pub:
            await pub.publish_many(events[:100])
            await wait_until(lambda: pub.spooling)
            assert pub.metrics.base.registry.get_sample_value(
                "tapio_publisher_errors_total", {"kind": "no_responders"}
            )
            await apply_layout(client.jetstream(), 1, layout=TOPOLOGY)
            with anyio.fail_after(30):
                await pub.flush()
        assert sorted(await stream_ids(client)) == sorted(e.id for e in events[:100])
    finally:
        await client.close()


async def test_starting_while_nats_is_down_spools_and_connects_later(
    jetstream: JetStreamServer, tmp_path: Path, events: list[events_pb2.Event]
) -> None:
    client = await connect(jetstream.url)
    await apply_layout(client.jetstream(), 1, layout=TOPOLOGY)
    await client.close()
    jetstream.kill()
    cfg = NatsConfig(urls=(jetstream.url,), reconnect_wait=1.0, connect_timeout=1.0)
    async with Publisher(settings(tmp_path), nats=cfg) as pub:
        assert not pub.connected
        await pub.publish_many(events[:200])
        await wait_until(lambda: pub._spooler.spool.pending_events == 200)
        await anyio.to_thread.run_sync(jetstream.restart)
        with anyio.fail_after(60):
            await pub.flush()
        assert pub.connected
    client = await connect(jetstream.url)
    try:
        assert sorted(await stream_ids(client)) == sorted(e.id for e in events[:200])
    finally:
        await client.close()


async def test_spool_outlives_the_publisher(
    jetstream: JetStreamServer, nc: Client, tmp_path: Path, events: list[events_pb2.Event]
) -> None:
    jetstream.kill()
    await wait_until(lambda: not nc.is_connected)
    async with Publisher(settings(tmp_path, shutdown_timeout=0.5), nc=nc) as pub:
        await pub.publish_many(events)
    # closed while NATS was down: everything is on disk; a new publisher replays it
    await anyio.to_thread.run_sync(jetstream.restart)
    async with Publisher(settings(tmp_path), nc=nc) as pub:
        assert pub.spooling
        with anyio.fail_after(60):
            await pub.flush()
        assert pub.metrics.base.registry.get_sample_value("tapio_publisher_events_published_total") == len(
            events
        )
    assert sorted(await stream_ids(nc)) == sorted(e.id for e in events)

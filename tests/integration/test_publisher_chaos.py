"""The publisher's proof: 200,000 events while nats-server is SIGKILLed and restarted twice -> exactly
200,000 distinct event ids in TAPIO_EVENTS (no loss, no duplicate)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client

from tapio.events.v1 import events_pb2
from tapio_common.config import NatsConfig
from tapio_common.nats.connect import connect
from tapio_common.scenarios import all_events
from tapio_jetstream import decode_events
from tapio_jetstream.layout import EVENTS, production_layout
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings
from tapio_publisher.spool import FsyncPolicy
from tapio_testing.jetstream import JetStreamServer

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

TOTAL = 200_000
CHUNK = 500


def templates() -> list[events_pb2.Event]:
    return all_events()


def chunk(tmpl: list[events_pb2.Event], start: int) -> list[events_pb2.Event]:
    out = []
    for i in range(start, start + CHUNK):
        ev = events_pb2.Event()
        ev.CopyFrom(tmpl[i % len(tmpl)])
        ev.id = f"chaos-{i:06d}"
        out.append(ev)
    return out


async def stored_ids(nc: Client) -> Counter[str]:
    js = nc.jetstream()
    info = await js.stream_info(EVENTS)
    ids: Counter[str] = Counter()
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(EVENTS, seq)
        ids.update(e.id for e in decode_events(msg.headers, msg.data or b""))
    return ids


async def test_200k_events_survive_two_sigkills_exactly_once(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    cfg = NatsConfig(urls=(jetstream.url,), reconnect_wait=0.5)
    admin = await connect(cfg, "chaos-admin")
    await apply_layout(admin.jetstream(), 1, layout=production_layout(1, scale=0.01))
    await admin.close()

    settings = PublisherSettings(
        spool_dir=str(tmp_path / "spool"),
        batch_max_events=100,  # many messages in flight when the server dies
        batch_linger=0.005,
        max_inflight=32,
        ack_timeout=2.0,
        retry_backoff=0.2,
        spool_fsync=FsyncPolicy.ALWAYS,
    )
    tmpl = templates()
    kills = 0
    async with Publisher(settings, nats=cfg) as pub:

        async def produce() -> None:
            for start in range(0, TOTAL, CHUNK):
                await pub.publish_many(chunk(tmpl, start))
                await anyio.sleep(0.02)  # ~10 s of traffic, so both crashes hit it

        async def chaos() -> None:
            nonlocal kills
            for pause in (2.0, 3.0):
                await anyio.sleep(pause)
                jetstream.kill()  # SIGKILL
                kills += 1
                await anyio.sleep(1.0)
                await anyio.to_thread.run_sync(jetstream.restart)

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            tg.start_soon(chaos)
        with anyio.fail_after(180):
            await pub.flush()
        registry = pub.metrics.base.registry
        spooled = registry.get_sample_value("tapio_publisher_spooled_events_total") or 0.0
        dropped = registry.get_sample_value("tapio_publisher_events_dropped_total", {"reason": "rejected"})

    assert kills == 2
    assert spooled > 0, "the crashes hit messages in flight (they went through the spool)"
    assert dropped is None
    nc = await connect(cfg, "chaos-check")
    try:
        ids = await stored_ids(nc)
    finally:
        await nc.close()
    duplicates = {i: n for i, n in ids.items() if n > 1}
    missing = TOTAL - len(ids)
    assert not duplicates, f"{len(duplicates)} ids stored more than once, e.g. {list(duplicates)[:3]}"
    assert missing == 0, f"{missing} events lost"
    assert sum(ids.values()) == TOTAL
    assert set(ids) == {f"chaos-{i:06d}" for i in range(TOTAL)}

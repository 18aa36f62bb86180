"""Scenario "kill -9 the correlator and restart": while copies of the public cascade flow in, the
correlator process is SIGKILLed and started again. Nothing is lost or duplicated at the HEC
receiver (each incident fires exactly once, every stored alert arrives once), every durable
consumer drains to zero pending, and `recovery_seconds` is the time from the restart until the
correlator's consumer has caught up with the stream."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from nats.aio.client import Client

from tapio.events.v1 import events_pb2
from tapio_common.config import NatsConfig
from tapio_common.nats.connect import connect
from tapio_jetstream.layout import ALERTS, CORRELATIONS, CORRELATOR, DLQ, EVENTS
from tapio_jetstream.streams import apply_layout
from tapio_testing.jetstream import JetStreamServer
from tapio_testing.receivers.hec import HecReceiver
from tapio_testing.wait import eventually
from tests.integration.e2e.flows import cascade_lines, hec_arrivals, msg_ids, publisher, to_events
from tests.integration.e2e.product import HEC_TOKEN, components, drained, hec_sink, stream_messages
from tests.integration.e2e.report import Entry, Report

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

COPIES = 8  # incidents in the flow
KILL_AFTER = 3  # copies published before the kill
PACE = 0.5  # seconds between copies: the flow lasts a while


async def correlator_caught_up(nc: Client, last_seq: int) -> bool:
    info = await nc.jetstream().consumer_info(EVENTS, CORRELATOR)
    return int(info.delivered.stream_seq) >= last_seq and not info.num_pending and not info.num_ack_pending


def copy_of(alert: dict[str, Any], copies: list[list[events_pb2.Event]]) -> int:
    ids = set(alert["event_ids"])
    found = [k for k, c in enumerate(copies) if ids & {e.id for e in c}]
    assert len(found) == 1, (alert, found)
    return found[0]


async def test_kill_9_the_correlator_during_the_flow(
    jetstream: JetStreamServer, tmp_path: Path, e2e_report: Report
) -> None:
    copies = [to_events(cascade_lines(k)) for k in range(COPIES)]
    nc = await connect(NatsConfig(), "e2e", urls=(jetstream.url,))
    try:
        await apply_layout(nc.jetstream(), 1)
        with (
            HecReceiver(token=HEC_TOKEN, ack=True) as hec,
            components(jetstream.url, tmp_path, exporter_sinks=[hec_sink(hec.url)]) as running,
        ):
            correlator = running["correlator"]
            killed = anyio.Event()
            async with publisher(jetstream.url, tmp_path) as pub, anyio.create_task_group() as tg:

                async def flow() -> None:
                    for k, events in enumerate(copies):
                        if k == KILL_AFTER:
                            await killed.wait()
                        await pub.publish_many(events)
                        with anyio.fail_after(60):
                            await pub.flush()
                        await anyio.sleep(PACE)

                tg.start_soon(flow)

                async def correlating() -> bool:
                    info = await nc.jetstream().consumer_info(EVENTS, CORRELATOR)
                    return int(info.ack_floor.stream_seq) > 0

                await eventually(correlating, "the correlator consuming", within=60)
                correlator.kill9()
                killed.set()
                await anyio.sleep(2)  # the flow goes on without it
                assert not correlator.alive()
                correlator.start()
                restarted = time.monotonic()
                last = int((await nc.jetstream().stream_info(EVENTS)).state.last_seq)
                await eventually(
                    lambda: correlator_caught_up(nc, last), "the restarted correlator caught up", 90
                )
                recovery = time.monotonic() - restarted
            total = sum(len(c) for c in copies)

            def all_fired() -> bool:
                return len({a["id"] for a in hec.alerts() if a["state"] == "firing"}) >= COPIES

            await eventually(all_fired, f"{COPIES} incidents FIRING at HEC", within=90)
            backlog = await drained(nc)
            stored = msg_ids(await stream_messages(nc, ALERTS))
            corrs = msg_ids(await stream_messages(nc, CORRELATIONS))
            await eventually(lambda: set(hec_arrivals(hec)) >= set(stored), "every stored alert at HEC", 30)
            dlq = (await nc.jetstream().stream_info(DLQ)).state.messages
            assert correlator.alive(), correlator.log_tail()
        at_hec = hec_arrivals(hec)
    finally:
        await nc.close()
    firing = [a for a in hec.alerts() if a["state"] == "firing"]
    per_copy = [sum(1 for a in firing if copy_of(a, copies) == k) for k in range(COPIES)]
    entry = e2e_report.add(
        Entry(
            scenario="kill -9 the correlator and restart",
            published=total,
            delivered=len(set(at_hec)),
            lost=len(set(stored) - set(at_hec)) + sum(1 for n in per_copy if n == 0),
            duplicates=sum(n - 1 for n in at_hec.values())
            + sum(n - 1 for n in corrs.values())
            + sum(n - 1 for n in per_copy if n > 1),
            dlq=dlq,
            recovery_seconds=round(recovery, 2),
            detail={
                "incidents": COPIES,
                "firing_per_incident": per_copy,
                "alerts_stored": len(stored),
                "correlation_revisions": len(corrs),
                "backlogs": {k: list(v) for k, v in backlog.items()},
            },
        )
    )
    assert not entry.problems(), entry
    assert per_copy == [1] * COPIES, per_copy
    assert all(v == (0, 0) for v in backlog.values()), backlog

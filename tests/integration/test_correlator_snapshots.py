"""Correlator snapshots on a real JetStream: taken by a forked child while the runner goes on, a
failed one counted and retried, never a stop of the stream."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from nats.js.client import JetStreamContext

from tapio_common.config import NatsConfig
from tapio_common.metrics import ComponentMetrics
from tapio_common.nats.connect import connect
from tapio_correlator.service.runner import COMPONENT, Runner
from tapio_correlator.service.settings import RunnerSettings
from tapio_correlator.service.state_store import StateStore
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings
from tapio_testing.jetstream import JetStreamServer
from tests.integration.correlator_helpers import scenario_events

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

BUCKET = "TAPIO_CORRELATOR_STATE"
# Snapshots only when the test asks; no wall-clock advance.
SETTINGS = RunnerSettings(fetch_timeout=0.2, idle_advance=3600.0, snapshot_interval=3600.0)


def snapshot_errors(metrics: ComponentMetrics) -> float:
    value = metrics.registry.get_sample_value(f"tapio_{COMPONENT}_errors_total", {"kind": "snapshot"})
    return value or 0.0


async def consume(runner: Runner, js: JetStreamContext, last: int) -> None:
    """Runs the runner's loop until every message up to `last` is acked."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(runner.run)
        with anyio.fail_after(60):
            while True:
                info = await js.consumer_info("TAPIO_EVENTS", "correlator")
                if info.ack_floor.stream_seq >= last and not info.num_ack_pending:
                    break
                await anyio.sleep(0.1)
        runner.stopping = True
    runner.stopping = False


async def test_a_snapshot_that_cannot_be_stored_is_counted_and_the_next_one_lands(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    events, _ = scenario_events()
    nc = await connect(NatsConfig(urls=(jetstream.url,)), "test")
    try:
        js = nc.jetstream()
        await apply_layout(js, 1)
        metrics = ComponentMetrics(COMPONENT)
        settings = PublisherSettings.from_section({}, str(tmp_path / "correlator"), batch_max_events=1)
        async with (
            Publisher(PublisherSettings.from_section({}, str(tmp_path / "collector")), nc=nc) as collector,
            Publisher(settings, nc=nc, registry=metrics.registry) as publisher,
        ):
            store = await StateStore.open(js, BUCKET)
            runner = Runner(js, publisher, store, SETTINGS, metrics)
            await runner.recover()
            await collector.publish_many(events[: len(events) // 2])
            await collector.flush()
            await consume(runner, js, (await js.stream_info("TAPIO_EVENTS")).state.last_seq)

            await js.delete_key_value(BUCKET)  # the bucket is gone (an operator's mistake, a lost volume)
            await runner.snapshot()
            assert snapshot_errors(metrics) == 1
            assert runner.since_snapshot >= 1, "a snapshot is still due"
            assert not runner.snapshotting

            await collector.publish_many(events[len(events) // 2 :])  # the stream goes on meanwhile
            await collector.flush()
            last = (await js.stream_info("TAPIO_EVENTS")).state.last_seq
            await consume(runner, js, last)

            await StateStore.open(js, BUCKET)  # recreated
            await runner.snapshot()
            assert snapshot_errors(metrics) == 1
            snap = await StateStore(store.kv).load()
            assert snap is not None
            assert (snap.events_seq, snap.correlations_seq) == (last, runner.correlations_seq)
            assert runner.snapshots == 1
    finally:
        await nc.close()

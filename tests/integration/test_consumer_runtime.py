"""The consumer runtime and the correlator on it, on a real JetStream: a poison message reaches the
DLQ after exactly max_deliver deliveries; an engine failure on the third event of a batch loses
nothing once it recovers; a malformed event inside a batch is dead-lettered at once while the
batch's other events count; the same events re-published in a new batch give no second revision."""

from __future__ import annotations

import os
import pickle
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import nats
import pytest
from nats.aio.client import Client

from tapio.events.v1 import events_pb2
from tapio_common.metrics import ComponentMetrics
from tapio_common.model import Correlation
from tapio_correlator.engine import Engine
from tapio_correlator.engine.views import BatchView, EventView
from tapio_correlator.service.runner import Runner
from tapio_correlator.service.settings import RunnerSettings
from tapio_correlator.service.state_store import StateStore
from tapio_jetstream import EVENT_MESSAGES, Consumer, ConsumerSettings, Delivery
from tapio_jetstream.dlq import ERROR_HEADER, STREAM_HEADER, STREAM_SEQ_HEADER
from tapio_jetstream.layout import DLQ, EVENTS, PIPELINE, production_layout
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings
from tapio_publisher.codec import ENCODING_BATCH, ENCODING_HEADER, MSG_ID_HEADER
from tapio_testing.jetstream import JetStreamServer
from tapio_testing.wait import eventually
from tests.integration.correlator_helpers import (
    SLACK_S,
    all_found,
    final_revisions,
    offline,
    running_correlator,
    scenario_events,
    stored_correlations,
    wait_consumed,
)
from tests.integration.test_correlator_nats import publish

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

FAST = ConsumerSettings(backoff_first=0.05, backoff_most=0.2, expires=0.3, bind_wait=5)


@pytest.fixture
async def nc(jetstream: JetStreamServer) -> AsyncIterator[Client]:
    client = await nats.connect(jetstream.url)
    await apply_layout(client.jetstream(), 1)
    yield client
    await client.close()


@pytest.fixture
async def publisher(nc: Client, tmp_path: Path) -> AsyncIterator[Publisher]:
    settings = PublisherSettings(spool_dir=str(tmp_path / "spool"), batch_max_events=1)
    async with Publisher(settings, nc=nc) as pub:
        yield pub


async def publish_batches(nc: Client, events: list[events_pb2.Event], size: int, prefix: str) -> int:
    """The events as EventBatch messages of `size` (batch ids from `prefix`); the last stream sequence."""
    seq = 0
    for n in range(0, len(events), size):
        batch = events_pb2.EventBatch(events=events[n : n + size], batch_id=f"{prefix}-{n}")
        ack = await nc.jetstream().publish(
            "tapio.events.k8s.default.pods.created",
            batch.SerializeToString(),
            headers={ENCODING_HEADER: ENCODING_BATCH, MSG_ID_HEADER: f"{prefix}-{n}"},
        )
        seq = int(ack.seq)
    return seq


class Poison:
    def __init__(self) -> None:
        self.deliveries: list[int] = []

    async def handle(self, delivery: Delivery[events_pb2.Event]) -> None:
        self.deliveries.append(delivery.num_delivered)
        raise ValueError(f"cannot route {delivery.items[0].id}")


async def test_a_poison_message_reaches_the_dlq_after_exactly_max_deliver(
    nc: Client, publisher: Publisher
) -> None:
    spec = next(c for c in production_layout().consumers if c.durable == PIPELINE)
    seq = await publish_batches(nc, [events_pb2.Event(id="poison-1", type="pods")], 1, "p")
    handler = Poison()
    consumer = Consumer(
        nc, spec, EVENT_MESSAGES, handler, component="pipeline", publisher=publisher,
        metrics=ComponentMetrics("pipeline"), settings=FAST,
    )  # fmt: skip
    js = nc.jetstream()

    async def dead_lettered() -> bool:
        return int((await js.stream_info(DLQ)).state.messages) > 0

    async with anyio.create_task_group() as tg:
        await tg.start(consumer.run)
        await eventually(dead_lettered, "the poison message in TAPIO_DLQ")
        await anyio.sleep(1.0)  # no sixth delivery
        consumer.stop()
    assert handler.deliveries == [1, 2, 3, 4, 5] == list(range(1, spec.max_deliver + 1))
    dead = await js.get_last_msg(DLQ, "tapio.dlq.pipeline")
    headers = dead.headers or {}
    assert headers[ERROR_HEADER] == "failed 5 deliveries, last: ValueError: cannot route poison-1"
    assert (headers[STREAM_SEQ_HEADER], headers[STREAM_HEADER]) == (str(seq), EVENTS)
    info = await js.consumer_info(EVENTS, PIPELINE)
    assert (info.num_ack_pending, info.num_pending) == (0, 0), "terminated, not left to redeliver"


class FailsOnce(Engine):
    """The real engine, failing once on one event (as a bug would): fault injection, not a fake."""

    fail_on = ""

    def process_pb(self, message: events_pb2.Event) -> list[Correlation]:
        if message.id == self.fail_on:
            self.fail_on = ""
            raise KeyError("injected engine failure")
        return super().process_pb(message)

    def process_view(self, view: Any) -> list[Correlation]:  # what the runner calls (views decode)
        if view.id == self.fail_on:
            self.fail_on = ""
            raise KeyError("injected engine failure")
        return super().process_view(view)


async def run_runner(nc: Client, publisher: Publisher, runner: Runner, last: int) -> None:
    js = nc.jetstream()

    async def consumed() -> bool:
        info = await js.consumer_info(EVENTS, "correlator")
        return bool(info.ack_floor.stream_seq >= last and not info.num_ack_pending)

    async with anyio.create_task_group() as tg:
        tg.start_soon(runner.run)
        await eventually(consumed, f"correlator acked up to {last}", within=60)
        await anyio.sleep(SLACK_S + 2.5)  # idle advance: what the reorder slack held comes out
        runner.stopping = True
    runner.stopping = False  # the test may run it again


async def correlator(nc: Client, publisher: Publisher, engine: Engine | None = None) -> Runner:
    settings = RunnerSettings(
        fetch_timeout=0.2,
        idle_advance=1.0,
        snapshot_interval=3600.0,
    )
    store = await StateStore.open(nc.jetstream(), settings.state_bucket)
    runner = Runner(nc, publisher, store, settings, ComponentMetrics("correlator"), FAST)
    if engine is not None:
        engine.__dict__.update(runner.engine.__dict__)  # same config and state, the failing subclass
        runner.engine = engine
    await runner.recover()
    return runner


async def test_an_engine_failure_on_the_third_event_of_a_batch_loses_nothing(
    nc: Client, publisher: Publisher
) -> None:
    events, _ = scenario_events()
    batch = 40
    third = 3 * batch + 2  # the third event of the fourth message
    engine = FailsOnce()
    engine.fail_on = events[third].id
    last = await publish_batches(nc, events, batch, "s")
    runner = await correlator(nc, publisher, engine)
    await run_runner(nc, publisher, runner, last)
    metrics = runner.metrics.registry
    assert metrics.get_sample_value("tapio_correlator_errors_total", {"kind": "engine"}) == 1
    assert engine.fail_on == "", "the failure happened"
    assert int((await nc.jetstream().stream_info(DLQ)).state.messages) == 0, "recovered: no dead letter"
    stored = await stored_correlations(nc)
    ids = Counter(msg_id for _, msg_id, _ in stored)
    assert [i for i, n in ids.items() if n > 1] == [], "no revision twice"
    assert {i: c.revision for i, c in final_revisions(stored).items()} == {
        i: c.revision for i, c in offline(events).items()
    }, "every correlation, as without the failure"


class SeesBad(Engine):
    """The real engine, counting how often it is given the malformed event."""

    bad_deliveries = 0

    def process_view(self, view: Any) -> list[Correlation]:
        self.bad_deliveries += view.id == "bad-context"
        return super().process_view(view)


async def test_an_event_with_a_malformed_context_is_dead_lettered_at_once_the_rest_of_its_batch_goes_through(
    nc: Client, publisher: Publisher
) -> None:
    """The correlator decodes events as views (context/k8s kept as bytes), so a malformed context
    inside a valid batch is found only when the engine parses that event: bad input all the same,
    dead-lettered on its FIRST delivery (no retries), and the batch's other events still count."""
    events, _ = scenario_events()
    batch = 40
    bad = EventView.FromString(events[3 * batch + 2].SerializeToString())
    bad.id, bad.type, bad.action = "bad-context", "pods", "oom_killed"
    bad.context = b"\xff\xff\xff"  # not a Context: the views decode keeps it as bytes
    js = nc.jetstream()
    last = bad_seq = 0
    for n in range(0, len(events), batch):
        views = [EventView.FromString(ev.SerializeToString()) for ev in events[n : n + batch]]
        if n == 3 * batch:
            views.insert(2, bad)
        payload = BatchView(events=views, batch_id=f"m-{n}").SerializeToString()
        ack = await js.publish(
            "tapio.events.k8s.default.pods.created",
            payload,
            headers={ENCODING_HEADER: ENCODING_BATCH, MSG_ID_HEADER: f"m-{n}"},
        )
        last = int(ack.seq)
        bad_seq = bad_seq or (last if n == 3 * batch else 0)
    engine = SeesBad()
    runner = await correlator(nc, publisher, engine)
    await run_runner(nc, publisher, runner, last)
    assert engine.bad_deliveries == 1, "dead-lettered on its first delivery, never retried"
    assert int((await js.stream_info(DLQ)).state.messages) == 1
    dead = await js.get_last_msg(DLQ, "tapio.dlq.correlator")
    headers = dead.headers or {}
    assert (headers[STREAM_SEQ_HEADER], headers[STREAM_HEADER]) == (str(bad_seq), EVENTS)
    assert headers[ERROR_HEADER].startswith(
        "cannot decode: UndecodableEvents: cannot decode events bad-context"
    )
    metrics = runner.metrics.registry
    assert metrics.get_sample_value("tapio_correlator_errors_total", {"kind": "decode"}) == 1
    assert metrics.get_sample_value("tapio_correlator_errors_total", {"kind": "engine"}) is None
    stored = await stored_correlations(nc)
    assert {i: c.revision for i, c in final_revisions(stored).items()} == {
        i: c.revision for i, c in offline(events).items()
    }, "every correlation of the good events, the bad message's other 40 included"


async def test_the_same_events_in_a_new_batch_give_no_second_revision(
    nc: Client, publisher: Publisher
) -> None:
    events, _ = scenario_events()
    last = await publish_batches(nc, events, 50, "first")
    runner = await correlator(nc, publisher)
    await run_runner(nc, publisher, runner, last)
    before = await stored_correlations(nc)
    last = await publish_batches(nc, events, 30, "again")  # new batch ids: the server keeps them
    await run_runner(nc, publisher, runner, last)
    after = await stored_correlations(nc)
    assert before, "the scenarios gave correlations"
    assert [msg_id for _, msg_id, _ in after] == [msg_id for _, msg_id, _ in before], "nothing new"
    dropped = runner.metrics.registry.get_sample_value(
        "tapio_correlator_events_dropped_total", {"reason": "duplicate"}
    )
    assert dropped == len(events)


class Marker:
    """Unpickling this creates a file: what a pickle snapshot would have run."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.path}",))


async def test_a_crafted_snapshot_is_refused_nothing_runs_and_catch_up_restores_everything(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    events, expected = scenario_events()
    half = len(events) // 2
    marker = tmp_path / "code-ran"
    async with running_correlator(jetstream.url, tmp_path, snapshot_interval=30) as (proc, nc):
        last = await publish(nc, events[:half], tmp_path / "spool")
        await wait_consumed(nc, last, proc=proc)
        await anyio.sleep(2)
        assert proc.stop() == 0  # a clean stop stores a snapshot
        store = await StateStore.open(nc.jetstream(), "TAPIO_CORRELATOR_STATE")
        snap = await store.load()
        assert snap is not None, "the clean stop stored a snapshot"
        # Whoever can write the bucket writes a pickle that would run a command, with a valid head.
        await store.save(
            b"TAPIO-CORRELATOR-SNAPSHOT\x01" + pickle.dumps(Marker(marker)),
            snap.events_seq,
            snap.correlations_seq,
        )
        proc.start()
        last = await publish(nc, events[half:], tmp_path / "spool")
        await wait_consumed(nc, last, proc=proc)
        await anyio.sleep(3)
        stored = await stored_correlations(nc)
    log = proc.log.read_text()
    assert "engine snapshot refused, recovering by catch-up from the stream" in log
    assert not marker.exists(), "nothing in the snapshot ran"
    ids = Counter(msg_id for _, msg_id, _ in stored)
    assert [i for i, n in ids.items() if n > 1] == [], "the catch-up published nothing twice"
    # The same incidents as without the restart (their revision counts may differ: what the wall
    # clock decided while the first process idled cannot be replayed from the stream).
    assert set(final_revisions(stored)) == set(offline(events))
    assert all_found(expected, stored)


async def test_kill_9_while_a_batch_is_handled_leaves_the_final_correlations_unchanged(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    events, _ = scenario_events()
    async with running_correlator(jetstream.url, tmp_path, snapshot_interval=0.5) as (proc, nc):
        js = nc.jetstream()
        published: list[int] = []

        async def producer() -> None:  # one message at a time: the correlator is mid-stream when killed
            for n in range(0, len(events), 20):
                published.append(await publish_batches(nc, events[n : n + 20], 20, f"k{n}"))
                await anyio.sleep(0.1)  # a collector's pace: the kill lands while messages flow

        async def part_way() -> bool:
            info = await js.consumer_info(EVENTS, "correlator")
            return int(info.ack_floor.stream_seq) > 3

        async with anyio.create_task_group() as tg:
            tg.start_soon(producer)
            await eventually(part_way, "the correlator part-way through the stream", within=60)
            proc.kill9()
        last = published[-1]
        assert (await js.consumer_info(EVENTS, "correlator")).ack_floor.stream_seq < last, "killed mid-stream"
        proc.start()
        await wait_consumed(nc, last, proc=proc)
        await anyio.sleep(3)
        stored = await stored_correlations(nc)
    ids = Counter(msg_id for _, msg_id, _ in stored)
    assert [i for i, n in ids.items() if n > 1] == [], "no revision twice"
    assert {i: c.revision for i, c in final_revisions(stored).items()} == {
        i: c.revision for i, c in offline(events).items()
    }


async def test_a_runner_restored_from_a_snapshot_drops_what_it_had_seen_and_takes_late_events(
    nc: Client, publisher: Publisher
) -> None:
    """A snapshot, then a restart: the events it covers come again in new batches (a collector
    re-publishing its spool) and are no-ops, events of the same minutes held back until after the
    restart (late, older than the snapshot) join their incidents, and the rest follows."""
    events, _ = scenario_events()
    half = len(events) // 2
    newest = max(e.time.seconds for e in events[:half])  # every 3rd event of its last 5 minutes held back
    recent = [e for e in events[:half] if e.time.seconds >= newest - 300 and e.type != "pods"]
    late = recent[::3]
    assert late
    first = [e for e in events[:half] if e not in late]
    runner = await correlator(nc, publisher)
    await run_runner(nc, publisher, runner, await publish_batches(nc, first, 40, "first"))
    await runner.snapshot()
    assert runner.snapshots == 1
    covered = runner.last_seq
    before = {msg_id for _, msg_id, _ in await stored_correlations(nc)}
    assert before, "correlations published before the restart"

    await publish_batches(nc, first, 25, "again")  # already seen, in new batches
    await publish_batches(nc, late, 5, "late")
    last = await publish_batches(nc, events[half:], 40, "second")
    restarted = await correlator(nc, publisher)  # a new process: the engine from the snapshot
    assert restarted.last_seq == covered
    await run_runner(nc, publisher, restarted, last)

    stored = await stored_correlations(nc)
    ids = Counter(msg_id for _, msg_id, _ in stored)
    assert [i for i, n in ids.items() if n > 1] == [], "no revision twice"
    by_id: dict[str, list[int]] = {}
    for _, _, c in stored:
        by_id.setdefault(c.id, []).append(c.revision)
    assert all(r == list(range(1, len(r) + 1)) for r in by_id.values()), "revisions in order, none lost"
    dropped = restarted.metrics.registry.get_sample_value(
        "tapio_correlator_events_dropped_total", {"reason": "duplicate"}
    )
    assert dropped, "the events taken before the snapshot were dropped by id when they came again"
    final = {
        i: (c.type, c.root_cause_event_id, c.confidence, tuple(c.event_ids))
        for i, c in final_revisions(stored).items()
    }
    want = {
        i: (c.type, c.root_cause_event_id, c.confidence, tuple(c.event_ids))
        for i, c in offline(events).items()
    }
    assert restarted.engine.counters()["late"] > 0, "events older than the restored engine's clock"
    assert final == want, "the incidents of a clean delivery"


async def test_an_events_stream_made_anew_after_the_snapshot_is_consumed_from_its_start(
    nc: Client, publisher: Publisher
) -> None:
    """TAPIO_EVENTS deleted and provisioned again (an operator's reset, a lost volume): its
    sequences start at 1 again, under the one the snapshot covers. The restored runner must take
    them, not pass them over as events it already processed."""
    events, expected = scenario_events()
    half = len(events) // 2
    runner = await correlator(nc, publisher)
    await run_runner(nc, publisher, runner, await publish_batches(nc, events[:half], 10, "old"))
    await runner.snapshot()
    assert runner.snapshots == 1
    covered = runner.last_seq
    js = nc.jetstream()
    await js.delete_stream(EVENTS)
    await apply_layout(js, 1)
    last = await publish_batches(nc, events[half:], 40, "new")
    assert last < covered, "the new stream's sequences are under the snapshot's"
    restarted = await correlator(nc, publisher)
    await run_runner(nc, publisher, restarted, last)
    assert restarted.events_in > 0, "the new stream's events reached the engine"
    assert all_found(expected, await stored_correlations(nc)), (
        "every scenario's incident, the late ones included"
    )


class Records:
    def __init__(self) -> None:
        self.ids: list[str] = []

    async def handle(self, delivery: Delivery[events_pb2.Event]) -> None:
        self.ids += [e.id for e in delivery.items]


async def test_an_undecodable_message_while_the_dlq_cannot_store_it_does_not_hold_the_others(
    nc: Client, publisher: Publisher
) -> None:
    """TAPIO_DLQ gone (deleted, its leader lost): a dead letter cannot be confirmed. The messages
    after the undecodable one are still handled; once the DLQ stream is back the dead letter is in
    it and the message terminated."""
    js = nc.jetstream()
    await js.delete_stream(DLQ)
    bad = await js.publish("tapio.events.k8s.default.pods.created", b"\xff\xff\xff")
    good = [events_pb2.Event(id=f"after-{i}", type="pods") for i in range(3)]
    last = await publish_batches(nc, good, 1, "after")
    spec = next(c for c in production_layout().consumers if c.durable == PIPELINE)
    handler = Records()
    consumer = Consumer(
        nc, spec, EVENT_MESSAGES, handler, component="pipeline", publisher=publisher,
        metrics=ComponentMetrics("pipeline"), settings=FAST,
    )  # fmt: skip

    async def terminated() -> bool:
        info = await js.consumer_info(EVENTS, PIPELINE)
        return bool(info.ack_floor.stream_seq >= last and not info.num_ack_pending)

    async with anyio.create_task_group() as tg:
        await tg.start(consumer.run)
        await eventually(lambda: len(handler.ids) == 3, "the messages after the undecodable one handled", 20)
        await apply_layout(js, 1)  # the DLQ stream back
        await eventually(terminated, "the undecodable message dead-lettered and terminated", 60)
        consumer.stop()
    assert handler.ids == [e.id for e in good]
    dead = await js.get_last_msg(DLQ, "tapio.dlq.pipeline")
    assert (dead.data, (dead.headers or {})[STREAM_SEQ_HEADER]) == (b"\xff\xff\xff", str(bad.seq))


async def test_an_engine_failure_while_replaying_after_a_restart_loses_no_event_of_the_message(
    nc: Client, publisher: Publisher
) -> None:
    """A restart replays what the engine had seen after its snapshot (none here: all of it). The
    engine failing once on an event of a replayed message (as in the live path) must not leave the
    rest of that message out of the rebuilt state: the replay retries it from that event."""
    events, _ = scenario_events()
    last = await publish_batches(nc, events, 40, "s")
    runner = await correlator(nc, publisher)
    await run_runner(nc, publisher, runner, last)
    taken = set(runner.engine.seen)
    # A message with events the engine takes after its third one: the failure lands on the third.
    start = next(n for n in range(0, len(events), 40) if taken & {e.id for e in events[n + 3 : n + 40]})
    engine = FailsOnce()
    engine.fail_on = events[start + 2].id
    restarted = await correlator(nc, publisher, engine)  # recover() replays the stream into it
    assert engine.fail_on == "", "the failure happened during the replay"
    assert set(restarted.engine.seen) == taken, "every event the engine took before"
    assert restarted.last_seq == runner.last_seq

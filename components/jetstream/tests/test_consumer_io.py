"""The consumer runtime against a real nats-server: ack after the handler, retries with backoff,
dead letters after exactly max_deliver deliveries or at once when undecodable, no item twice."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import attrs
import pytest
from nats.aio.client import Client
from nats.js.api import RawStreamMsg

from tapio.events.v1 import events_pb2
from tapio_common.metrics import ComponentMetrics, Health
from tapio_jetstream import EVENT_MESSAGES, Consumer, ConsumerSettings, Delivery
from tapio_jetstream.dlq import ERROR_HEADER, STREAM_HEADER, STREAM_SEQ_HEADER
from tapio_jetstream.layout import DLQ, EVENTS, ConsumerSpec
from tapio_jetstream.streams import consumer_config
from tapio_publisher import Publisher, PublisherSettings
from tapio_publisher.codec import ENCODING_BATCH, ENCODING_HEADER, MSG_ID_HEADER
from tapio_testing.wait import eventually

pytestmark = pytest.mark.anyio

SPEC = ConsumerSpec(EVENTS, "runtime-test", "tapio.events.>", max_deliver=3, ack_wait=5.0)
FAST = ConsumerSettings(backoff_first=0.05, backoff_most=0.1, expires=0.3, info_interval=0.2, bind_wait=0)


@pytest.fixture
async def publisher(nc: Client, tmp_path: Path) -> AsyncIterator[Publisher]:
    async with Publisher(PublisherSettings(spool_dir=str(tmp_path / "spool")), nc=nc) as pub:
        yield pub


def event(n: int) -> events_pb2.Event:
    return events_pb2.Event(id=f"ev-{n}", type="pods", action="created", message=f"event {n}")


async def publish_batch(nc: Client, events: list[events_pb2.Event], batch_id: str) -> int:
    batch = events_pb2.EventBatch(events=events, batch_id=batch_id)
    ack = await nc.jetstream().publish(
        "tapio.events.k8s.default.pods.created",
        batch.SerializeToString(),
        headers={ENCODING_HEADER: ENCODING_BATCH, MSG_ID_HEADER: batch_id},
    )
    return int(ack.seq)


class Recorder:
    """Records what it is given; fails while `failing` says so for a delivery."""

    def __init__(self, fail_on: str = "", failures: int = 0, error: type[Exception] = RuntimeError) -> None:
        self.deliveries: list[Delivery[events_pb2.Event]] = []
        self.handled: list[str] = []
        self.fail_on = fail_on
        self.failures = failures
        self.error = error

    async def handle(self, delivery: Delivery[events_pb2.Event]) -> None:
        self.deliveries.append(delivery)
        for ev in delivery.items:
            if ev.id == self.fail_on and self.failures != 0:
                self.failures -= 1
                raise self.error(f"cannot handle {ev.id}")
            self.handled.append(ev.id)


async def run_until(consumer: Consumer[events_pb2.Event], done: Callable[[], bool]) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(consumer.run)
        await eventually(done, "handler done")
        consumer.stop()


async def dlq_messages(nc: Client) -> list[RawStreamMsg]:
    js = nc.jetstream()
    info = await js.stream_info(DLQ)
    return [
        await js.get_msg(DLQ, seq)
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
        if info.state.messages
    ]


async def ack_pending(nc: Client) -> int:
    return int((await nc.jetstream().consumer_info(EVENTS, SPEC.durable)).num_ack_pending or 0)


async def test_batch_is_handled_then_acked(nc: Client, publisher: Publisher) -> None:
    await publish_batch(nc, [event(i) for i in range(5)], "b-1")
    rec = Recorder()
    metrics = ComponentMetrics("rt")
    health = Health()
    consumer = Consumer(
        nc, SPEC, EVENT_MESSAGES, rec, component="rt", publisher=publisher, metrics=metrics, settings=FAST
    )
    consumer.attach(health)
    assert health.run("ready")[0] is False  # not bound yet
    await run_until(consumer, lambda: len(rec.handled) == 5)
    assert rec.handled == [f"ev-{i}" for i in range(5)]
    (d,) = rec.deliveries
    assert (d.stream, d.num_delivered, d.max_deliver, d.subject) == (
        EVENTS,
        1,
        3,
        "tapio.events.k8s.default.pods.created",
    )
    assert await ack_pending(nc) == 0
    assert metrics.registry.get_sample_value("tapio_rt_events_received_total") == 5
    assert health.run("live")[0] is True


async def test_failure_on_the_third_event_retries_the_whole_message_and_loses_nothing(
    nc: Client, publisher: Publisher
) -> None:
    await publish_batch(nc, [event(i) for i in range(5)], "b-2")
    rec = Recorder(fail_on="ev-2", failures=1, error=KeyError)  # a bug: retried, not dead-lettered
    metrics = ComponentMetrics("rt")
    consumer = Consumer(
        nc, SPEC, EVENT_MESSAGES, rec, component="rt", publisher=publisher, metrics=metrics, settings=FAST
    )
    await run_until(consumer, lambda: "ev-4" in rec.handled)
    assert [d.num_delivered for d in rec.deliveries] == [1, 2]
    assert rec.handled == ["ev-0", "ev-1", "ev-0", "ev-1", "ev-2", "ev-3", "ev-4"]  # idempotent effects
    assert metrics.registry.get_sample_value("tapio_rt_errors_total", {"kind": "handle"}) == 1
    assert await dlq_messages(nc) == []


async def test_poison_message_is_dead_lettered_after_exactly_max_deliver(
    nc: Client, publisher: Publisher
) -> None:
    seq = await publish_batch(nc, [event(i) for i in range(3)], "b-3")
    rec = Recorder(fail_on="ev-1", failures=-1)  # fails on every delivery
    consumer = Consumer(
        nc,
        SPEC,
        EVENT_MESSAGES,
        rec,
        component="rt",
        publisher=publisher,
        metrics=ComponentMetrics("rt"),
        settings=FAST,
    )

    async def dead_lettered() -> bool:
        return bool(await dlq_messages(nc))

    async with anyio.create_task_group() as tg:
        await tg.start(consumer.run)
        await eventually(dead_lettered, "dead letter stored")
        await anyio.sleep(0.5)  # no further delivery may come
        consumer.stop()
    assert [d.num_delivered for d in rec.deliveries] == [1, 2, 3]
    (dead,) = await dlq_messages(nc)
    assert dead.subject == "tapio.dlq.rt"
    headers = dead.headers or {}
    assert headers[ERROR_HEADER] == "failed 3 deliveries, last: RuntimeError: cannot handle ev-1"
    assert (headers[STREAM_SEQ_HEADER], headers[STREAM_HEADER]) == (str(seq), EVENTS)
    assert (
        dead.data
        == events_pb2.EventBatch(events=[event(i) for i in range(3)], batch_id="b-3").SerializeToString()
    )
    assert await ack_pending(nc) == 0  # terminated


async def test_undecodable_message_is_dead_lettered_at_once(nc: Client, publisher: Publisher) -> None:
    await nc.jetstream().publish(
        "tapio.events.k8s.default.pods.created", b"\xff\xff", headers={MSG_ID_HEADER: "junk"}
    )
    await publish_batch(nc, [event(9)], "b-4")
    rec = Recorder()
    metrics = ComponentMetrics("rt")
    consumer = Consumer(
        nc, SPEC, EVENT_MESSAGES, rec, component="rt", publisher=publisher, metrics=metrics, settings=FAST
    )
    await run_until(consumer, lambda: rec.handled == ["ev-9"])
    (dead,) = await dlq_messages(nc)
    assert (dead.headers or {})[ERROR_HEADER].startswith("cannot decode: not a valid event payload")
    assert metrics.registry.get_sample_value("tapio_rt_errors_total", {"kind": "decode"}) == 1


async def test_events_republished_in_a_new_batch_reach_the_handler_once(
    nc: Client, publisher: Publisher
) -> None:
    await publish_batch(nc, [event(1), event(2)], "b-5")
    await publish_batch(nc, [event(2), event(1), event(3)], "b-6")  # a new batch id: the server keeps it
    await publish_batch(nc, [event(1)], "b-7")
    rec = Recorder()
    metrics = ComponentMetrics("rt")
    consumer = Consumer(
        nc, SPEC, EVENT_MESSAGES, rec, component="rt", publisher=publisher, metrics=metrics, settings=FAST
    )
    await run_until(consumer, lambda: consumer.handled == 3)
    assert rec.handled == ["ev-1", "ev-2", "ev-3"]
    assert [d.duplicates for d in rec.deliveries] == [0, 2]  # the third message never reached the handler
    assert metrics.registry.get_sample_value("tapio_rt_events_dropped_total", {"reason": "duplicate"}) == 3
    assert await ack_pending(nc) == 0


async def test_gauges_follow_consumer_info_and_stop_returns(nc: Client, publisher: Publisher) -> None:
    rec = Recorder()
    metrics = ComponentMetrics("rt")
    consumer = Consumer(
        nc, SPEC, EVENT_MESSAGES, rec, component="rt", publisher=publisher, metrics=metrics, settings=FAST
    )
    labels = {"consumer": f"{EVENTS}/{SPEC.durable}"}
    async with anyio.create_task_group() as tg:
        await tg.start(consumer.run)
        assert metrics.registry.get_sample_value("tapio_rt_consumer_bound", labels) == 1
        consumer.stop()
    assert metrics.registry.get_sample_value("tapio_rt_consumer_pending", labels) == 0
    assert metrics.registry.get_sample_value("tapio_rt_consumer_bound", labels) == 0


async def test_a_client_side_filter_acks_what_it_does_not_take_unread_and_a_durable_may_switch(
    nc: Client, publisher: Publisher
) -> None:
    """filter_at "client": one server filter (the stream's subjects); a message of a subject the spec
    does not take is acked, counted and never given to the handler. The same durable, made with the
    spec's filters on the server first, then switched to the client side and back, loses nothing."""
    taken, other = "tapio.events.k8s.default.pods.created", "tapio.events.ebpf.process_exec.info"
    server = ConsumerSpec(EVENTS, "runtime-filter", "tapio.events.>", filter_subjects=("tapio.events.k8s.>",))
    client = attrs.evolve(server, filter_at="client")
    assert client.server_subjects == ("tapio.events.>",)
    assert server.server_subjects == ("tapio.events.k8s.>",)
    js = nc.jetstream()
    rec, metrics, seen = Recorder(), ComponentMetrics("rt"), 0

    async def publish(n: int, subject: str) -> None:
        batch = events_pb2.EventBatch(events=[event(n)], batch_id=f"f-{n}")
        await js.publish(subject, batch.SerializeToString(), headers={ENCODING_HEADER: ENCODING_BATCH})

    for spec in (server, client, server, client):
        await js.add_consumer(EVENTS, consumer_config(spec))  # as provisioning does: filters updated in place
        for _ in range(3):
            await publish(seen, taken)
            await publish(seen + 1, other)
            seen += 2
        consumer = Consumer(
            nc, spec, EVENT_MESSAGES, rec, component="rt", publisher=publisher, metrics=metrics, settings=FAST
        )
        want = [f"ev-{n}" for n in range(0, seen, 2)]
        await run_until(consumer, lambda want=want: rec.handled == want)  # type: ignore[misc]
        info = await js.consumer_info(EVENTS, spec.durable)
        assert (info.num_pending, info.num_ack_pending) == (0, 0), spec.filter_at
    assert rec.handled == [f"ev-{n}" for n in range(0, seen, 2)]  # each taken event once, in order
    skipped = metrics.registry.get_sample_value(
        "tapio_rt_consumer_skipped_messages_total", {"consumer": f"{EVENTS}/runtime-filter"}
    )
    # The other subject's messages of the client phases; the last of a server phase is after its
    # durable's last delivery, so the client phase after it may see it too.
    assert skipped is not None
    assert 6 <= skipped <= 8
    assert metrics.registry.get_sample_value("tapio_rt_events_received_total") == seen // 2

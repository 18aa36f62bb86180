"""The runtime's batch mode on a real nats-server: messages pulled together reach a BatchHandler at
once, in order; each is settled by its own outcome (a failed one alone comes again)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import anyio
import attrs
import pytest
from nats.aio.client import Client

from tapio.events.v1 import events_pb2
from tapio_common.metrics import ComponentMetrics
from tapio_jetstream import EVENT_MESSAGES, Consumer, ConsumerSettings, Delivery
from tapio_jetstream.consumer import THREAD_BYTES
from tapio_jetstream.layout import DLQ, EVENTS, ConsumerSpec
from tapio_publisher import Publisher, PublisherSettings
from tapio_publisher.codec import COMPRESSION_HEADER, ENCODING_BATCH, ENCODING_HEADER, Compression, Compressor
from tapio_testing.wait import eventually

pytestmark = pytest.mark.anyio

SPEC = ConsumerSpec(EVENTS, "batch-test", "tapio.events.>", max_deliver=5, ack_wait=5.0)
FAST = ConsumerSettings(
    batch=50, backoff_first=0.05, backoff_most=0.1, expires=0.3, info_interval=0.2, bind_wait=0
)


class BatchRecorder:
    def __init__(self, fail_once: str) -> None:
        self.batches: list[list[str]] = []
        self.handled: list[str] = []
        self.fail_once = fail_once

    async def handle_batch(
        self, deliveries: Sequence[Delivery[events_pb2.Event]]
    ) -> list[BaseException | None]:
        ids = [d.items[0].id for d in deliveries]
        self.batches.append(ids)
        out: list[BaseException | None] = []
        for i in ids:
            if i == self.fail_once:
                self.fail_once = ""
                out.append(RuntimeError(f"cannot handle {i}"))
            else:
                self.handled.append(i)
                out.append(None)
        return out


async def test_batch_handler_gets_pulled_messages_together_and_settles_each(
    nc: Client, tmp_path: Path
) -> None:
    js = nc.jetstream()
    for n in range(20):
        ev = events_pb2.Event(id=f"ev-{n}", type="pods", action="created")
        await js.publish(
            "tapio.events.k8s.default.pods.created", ev.SerializeToString(), headers={"Nats-Msg-Id": ev.id}
        )
    rec = BatchRecorder(fail_once="ev-7")
    metrics = ComponentMetrics("rtb")
    async with Publisher(PublisherSettings(spool_dir=str(tmp_path / "spool")), nc=nc) as pub:
        consumer = Consumer(
            nc, SPEC, EVENT_MESSAGES, rec, component="rtb", publisher=pub, metrics=metrics, settings=FAST
        )
        import anyio

        async with anyio.create_task_group() as tg:
            await tg.start(consumer.run)
            await eventually(lambda: len(rec.handled) == 20, "every event handled")
            consumer.stop()
    assert sorted(rec.handled) == sorted(f"ev-{n}" for n in range(20))
    assert rec.handled.count("ev-7") == 1
    assert max(len(b) for b in rec.batches) > 1  # taken together
    assert rec.batches[0] == sorted(rec.batches[0], key=lambda i: int(i.split("-")[1]))  # in stream order
    assert int((await js.consumer_info(EVENTS, SPEC.durable)).num_ack_pending or 0) == 0
    assert metrics.registry.get_sample_value("tapio_rtb_errors_total", {"kind": "handle"}) == 1


class HeldFirstBatch:
    """Holds its first batch until released (a batch awaiting its confirmations); fails `fail_once` once."""

    def __init__(self, fail_once: str) -> None:
        self.release = anyio.Event()
        self.entered: list[list[str]] = []
        self.handled: list[str] = []
        self.fail_once = fail_once

    async def handle_batch(
        self, deliveries: Sequence[Delivery[events_pb2.Event]]
    ) -> list[BaseException | None]:
        ids = [d.items[0].id for d in deliveries]
        self.entered.append(ids)
        if len(self.entered) == 1:
            await self.release.wait()
        out: list[BaseException | None] = []
        for i in ids:
            if i == self.fail_once:
                self.fail_once = ""
                out.append(RuntimeError(f"cannot handle {i}"))
            else:
                self.handled.append(i)
                out.append(None)
        return out


async def test_batches_in_flight_overlap_and_are_settled_in_stream_order(nc: Client, tmp_path: Path) -> None:
    js = nc.jetstream()
    subject = "tapio.events.k8s.default.pods.created"
    first = events_pb2.Event(id="ev-0", type="pods", action="created")
    await js.publish(subject, first.SerializeToString(), headers={"Nats-Msg-Id": first.id})
    handler = HeldFirstBatch(fail_once="ev-12")
    settings = attrs.evolve(FAST, batches_in_flight=2)
    async with Publisher(PublisherSettings(spool_dir=str(tmp_path / "spool")), nc=nc) as pub:
        consumer = Consumer(
            nc, SPEC, EVENT_MESSAGES, handler, component="rtf", publisher=pub, metrics=ComponentMetrics("rtf"),
            settings=settings,
        )  # fmt: skip
        async with anyio.create_task_group() as tg:
            await tg.start(consumer.run)
            await eventually(lambda: len(handler.entered) == 1, "the first batch in the handler")
            for n in range(1, 20):
                ev = events_pb2.Event(id=f"ev-{n}", type="pods", action="created")
                await js.publish(subject, ev.SerializeToString(), headers={"Nats-Msg-Id": ev.id})
            # the next batch is decoded and handled while the first still waits ...
            await eventually(lambda: len(handler.entered) >= 2, "a second batch while the first is held")
            await anyio.sleep(0.3)
            # ... but nothing after the held batch is acked before it is settled
            assert consumer.handled == 0
            assert len(handler.entered) == 2  # at most batches_in_flight at once
            handler.release.set()
            await eventually(lambda: consumer.handled == 20, "every message acked")
            consumer.stop()
    assert sorted(handler.handled, key=lambda i: int(i.split("-")[1])) == [f"ev-{n}" for n in range(20)]
    assert handler.handled.count("ev-12") == 1  # failed once, came again, handled once
    assert int((await js.consumer_info(EVENTS, SPEC.durable)).num_ack_pending or 0) == 0


async def test_batches_in_flight_decompress_off_the_loop_and_dead_letter_a_corrupt_payload(
    nc: Client, tmp_path: Path
) -> None:
    js = nc.jetstream()
    subject = "tapio.events.k8s.default.pods.created"
    batch = events_pb2.EventBatch(batch_id="big")
    for n in range(3000):  # well over THREAD_BYTES compressed: random attribute values
        ev = batch.events.add(id=f"big-{n}", type="pods", action="created")
        ev.attributes["noise"] = os.urandom(32).hex()
    compressed = Compressor(Compression.ZSTD).compress(batch.SerializeToString())
    assert len(compressed) > THREAD_BYTES
    zstd = {ENCODING_HEADER: ENCODING_BATCH, COMPRESSION_HEADER: "zstd"}
    await js.publish(subject, compressed, headers={**zstd, "Nats-Msg-Id": "big"})
    await js.publish(subject, b"not zstd at all", headers={**zstd, "Nats-Msg-Id": "corrupt"})
    rec = BatchRecorder(fail_once="")
    metrics = ComponentMetrics("rtz")
    sample = metrics.registry.get_sample_value
    async with Publisher(PublisherSettings(spool_dir=str(tmp_path / "spool")), nc=nc) as pub:
        consumer = Consumer(
            nc, SPEC, EVENT_MESSAGES, rec, component="rtz", publisher=pub, metrics=metrics,
            settings=attrs.evolve(FAST, batches_in_flight=2),
        )  # fmt: skip
        async with anyio.create_task_group() as tg:
            await tg.start(consumer.run)
            await eventually(lambda: rec.handled == ["big-0"], "the big batch handled")
            await eventually(
                lambda: sample("tapio_rtz_events_dropped_total", {"reason": "dead_letter"}) == 1,
                "the corrupt payload dead-lettered",
            )
            consumer.stop()
    assert sample("tapio_rtz_events_received_total") == 3000  # every event of the decompressed batch
    assert sample("tapio_rtz_errors_total", {"kind": "decode"}) == 1
    dead = await js.get_msg(DLQ, int((await js.stream_info(DLQ)).state.last_seq))
    assert dead.data == b"not zstd at all"  # the message as it came, not what the thread made of it
    assert int((await js.consumer_info(EVENTS, SPEC.durable)).num_ack_pending or 0) == 0

"""The consumer runtime's own cost per message: a null batch handler on the correlator's durable.

A local nats-server (file store) holds `--seconds` x 1,000 EventBatch messages of `--events` events
each (uncompressed, the size of a steady-rate message: CONTRACT §1 batches per subject); then
`tapio_jetstream.Consumer` drains them into a handler that only returns success (acked), on the
client Tapio connects with (`tapio_common.nats.connect`). Printed: CPU us a message of this process
(pull requests, nats-py read/parse, direct delivery, decode, dedup off, acks) and of nats-server
(delivery + ack processing), wall messages/s, the load average. CPU per message is what the code
costs; wall time depends on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Sequence

import anyio

from tapio.events.v1 import events_pb2
from tapio_common.config import NatsConfig
from tapio_common.metrics import ComponentMetrics
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import EmbeddedNats
from tapio_jetstream import EVENT_MESSAGES, Consumer, ConsumerSettings, Delivery
from tapio_jetstream.layout import CORRELATOR, EVENTS, production_layout
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings
from tapio_publisher.codec import ENCODING_BATCH, ENCODING_HEADER, MSG_ID_HEADER

SUBJECT = "tapio.events.k8s.default.pods.updated"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


class NullHandler:
    """Acks everything (the runtime's cost alone)."""

    def __init__(self, expected: int) -> None:
        self.messages = 0
        self.expected = expected
        self.done = anyio.Event()

    async def handle_batch(self, deliveries: Sequence[Delivery[events_pb2.Event]]) -> list[None]:
        self.messages += len(deliveries)
        if self.messages >= self.expected:
            self.done.set()
        return [None] * len(deliveries)


async def run(messages: int, events: int) -> tuple[float, float, float]:
    """(CPU us a message here, nats-server CPU us a message, messages/s wall)."""
    with tempfile.TemporaryDirectory(prefix="tapio-bench-rt-") as tmp, EmbeddedNats(tmp + "/js") as server:
        nc = await connect(NatsConfig(urls=(server.url,)), "bench-runtime")
        js = nc.jetstream()
        await apply_layout(js, 1)
        batch = [
            events_pb2.Event(id="", type="pods", action="updated", message="x" * 200) for _ in range(events)
        ]
        for i in range(messages):
            for j, ev in enumerate(batch):
                ev.id = f"e{i}-{j}"
            data = events_pb2.EventBatch(events=batch, batch_id=f"b{i}").SerializeToString()
            headers = {MSG_ID_HEADER: f"b{i}", ENCODING_HEADER: ENCODING_BATCH}
            await nc.publish(SUBJECT, data, headers=headers)
        await nc.flush()
        while (await js.stream_info(EVENTS)).state.messages < messages:  # noqa: ASYNC110 - a server-side count
            await anyio.sleep(0.2)
        spec = production_layout().consumer(CORRELATOR)
        handler = NullHandler(messages)
        settings = ConsumerSettings(batch=64, linger=0.02, dedup_window=0, expires=1.0)  # the correlator's
        server_pid = server.proc.pid if server.proc is not None else 0
        async with Publisher(PublisherSettings(spool_dir=tmp + "/spool"), nc=nc) as pub:
            consumer = Consumer(
                nc, spec, EVENT_MESSAGES, handler, component="bench", publisher=pub,
                metrics=ComponentMetrics("bench"), settings=settings,
            )  # fmt: skip
            async with anyio.create_task_group() as tg:
                tg.start_soon(consumer.run)
                cpu0, server0, t0 = _cpu(), _process_cpu(server_pid), time.monotonic()
                await handler.done.wait()
                cpu1, server1, t1 = _cpu(), _process_cpu(server_pid), time.monotonic()
                consumer.stop()
        await nc.close()
    return 1e6 * (cpu1 - cpu0) / messages, 1e6 * (server1 - server0) / messages, messages / (t1 - t0)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20.0, help="scale: seconds x 1,000 messages (default 20)")
    p.add_argument("--events", type=int, default=9, help="events a message (default 9)")
    args = p.parse_args(argv)
    messages = max(1000, int(args.seconds * 1000))
    print(f"bench: {_load()}", flush=True)
    print(f"bench: {messages:,} messages of {args.events} events, null batch handler, correlator settings")
    here, server, rate = anyio.run(run, messages, args.events)
    print(
        f"runtime: {here:.1f} us CPU a message in the consumer process, nats-server {server:.1f} us a message, "
        f"{rate:,.0f} messages/s wall"
    )
    print(f"bench: {_load()}")
    one = os.getloadavg()[0]
    print(
        f"runtime_cpu_us_per_message={here:.1f} server_cpu_us_per_message={server:.1f} "
        f"messages_per_second={rate:.0f} events_per_message={args.events} load1={one:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

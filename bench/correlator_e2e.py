"""End-to-end correlator benchmark: events through a local JetStream into the NATS runner.

A producer process (its own core share, like a collector) publishes the synthetic cluster of
`tapio_correlator_testing.loadgen` (100,000 pods) through the publisher (batched, compressed) into
TAPIO_EVENTS on a local nats-server (file store). This process runs the correlator's Runner (the
code `tapio-correlator serve` runs: pull, decode, engine, publish correlations, ack).

- throughput: the producer first preloads the stream (untimed); then the runner drains it. Rate =
  events consumed / wall time from the first pull to the last event processed and acked.
- latency: the producer publishes at a steady --rate with event times = wall clock; for every
  medium/high correlation revision received on tapio.correlations.>, latency = receive time -
  publish time of the newest event it covers (its `last_seen`: in this phase an event's time is
  the producer's wall clock when it hands the event to the publisher).
  The engine waits `reorder_slack` of event time before it acts (out-of-order tolerance), so that
  slack is part of the latency.
A pool of generated events is replayed with fresh ids and times (the serialized event with its id
and time fields re-appended: protobuf keeps the last value), so generation does not bound the rate.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import statistics
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection

import anyio
import attrs
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.msg import Msg

from tapio.correlations.v1 import correlations_pb2
from tapio.events.v1 import events_pb2
from tapio_common.config import NatsConfig
from tapio_common.metrics import ComponentMetrics
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import EmbeddedNats
from tapio_correlator.service.runner import Runner
from tapio_correlator.service.settings import RunnerSettings
from tapio_correlator.service.state_store import StateStore
from tapio_correlator_testing.loadgen import Mix, to_pb
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings
from tapio_publisher.subjects import event_subject

NS = 1_000_000_000
CHUNK = 4_000
LINGER = 0.2  # seconds a collector lets a batch fill: at 100k events/s spread over many subjects,
# the publisher default (20 ms) makes batches of ~10 events; 200 ms gives ~100 (latency budget 1 s)


def restamp(data: bytes, event_id: str, t_ns: int) -> bytes:
    """The serialized event with a new id and time: a serialized Event holding only those appended
    (protobuf merges concatenated messages: the last value of a field wins)."""
    seconds, nanos = divmod(t_ns, NS)
    stamp = events_pb2.Event(
        id=event_id, time=Timestamp(seconds=seconds, nanos=nanos or 1)
    )  # nanos set: it must override
    return data + stamp.SerializeToString()


@attrs.frozen
class PoolEvent:
    subject: str
    data: bytes
    id: str
    offset_ns: int  # event time relative to the pool's start


def build_pool(pods: int, events: int, seed: int) -> tuple[list[tuple[str, bytes]], list[PoolEvent], int]:
    mix = Mix(pods, seed)
    setup = [(event_subject(pb), pb.SerializeToString()) for pb in map(to_pb, mix.setup())]
    pool: list[PoolEvent] = []
    start = 0
    for ev in mix.chunk(events):
        pb = to_pb(ev)
        t = pb.time.seconds * NS + pb.time.nanos
        start = start or t
        pool.append(PoolEvent(event_subject(pb), pb.SerializeToString(), pb.id, t - start))
    span = pool[-1].offset_ns + NS if pool else NS
    return setup, pool, span


def stream_of(
    pool: list[PoolEvent], span: int, t0: int, first_lap: int = 0
) -> Iterator[tuple[int, PoolEvent, str, int]]:
    """Endless: (index, event, new id, new time) with the pool replayed span after span; ids carry
    the lap number, so every phase (own `first_lap`) has ids of its own."""
    n = 0
    while True:
        base = t0 + (n // len(pool)) * span
        lap = first_lap + n // len(pool)
        ev = pool[n % len(pool)]
        yield n, ev, f"{ev.id}~{lap}", base + ev.offset_ns
        n += 1


async def _produce(url: str, data_dir: str, conn: Connection, pods: int, pool_size: int, seed: int) -> None:
    setup, pool, span = build_pool(pods, pool_size, seed)
    nc = await connect(NatsConfig(urls=(url,)), "bench-producer")
    settings = PublisherSettings.from_section({"batch_linger": LINGER}, data_dir)
    async with Publisher(settings, nc=nc) as pub:
        for subject, data in setup:
            await pub.publish_encoded(subject, data)
        await pub.flush()
        conn.send(("ready", len(setup)))
        gen = stream_of(pool, span, time.time_ns() - 3600 * NS)
        while True:
            cmd = conn.recv()
            if cmd[0] == "preload":
                count = cmd[1]
                while count > 0:
                    n = min(CHUNK, count)
                    await _publish_chunk(pub, gen, n)
                    count -= n
                await pub.flush()
                conn.send(("preloaded",))
            elif cmd[0] == "steady":
                rate, seconds = cmd[1], cmd[2]
                gen = stream_of(pool, span, time.time_ns(), first_lap=1_000_000)
                started = time.monotonic()
                total = 0
                while time.monotonic() - started < seconds:
                    due = started + total / rate
                    if due > time.monotonic():
                        await anyio.sleep(due - time.monotonic())
                    await _publish_chunk(pub, gen, CHUNK // 4, live=True)
                    total += CHUNK // 4
                await pub.flush()
                conn.send(("sent", total))
            else:
                break
    await nc.close()


async def _publish_chunk(
    pub: Publisher,
    gen: Iterator[tuple[int, PoolEvent, str, int]],
    n: int,
    live: bool = False,
) -> None:
    groups: dict[str, list[bytes]] = {}
    now = time.time_ns()
    for _ in range(n):
        _, ev, new_id, t = next(gen)
        if live:
            t = now
        groups.setdefault(ev.subject, []).append(restamp(ev.data, new_id, t))
    for subject, datas in groups.items():
        await pub.publish_encoded_many(subject, datas)


def producer_main(url: str, data_dir: str, conn: Connection, pods: int, pool_size: int, seed: int) -> None:
    anyio.run(_produce, url, data_dir, conn, pods, pool_size, seed)


@attrs.frozen
class E2EResult:
    events_per_second: float
    drained_events: int
    p99_ms: float
    p50_ms: float
    max_ms: float
    latency_samples: int
    steady_rate: float
    rss_mb: int
    snapshots: int
    snapshot_child_mb: int
    p50_by_type: dict[str, tuple[int, float]]  # type -> (revisions, p50 ms)


async def run_e2e(seconds: float, rate: int, pods: int, pool_size: int, seed: int, preload: int) -> E2EResult:
    with tempfile.TemporaryDirectory(prefix="tapio-bench-") as tmp, EmbeddedNats(tmp + "/js") as server:
        nc = await connect(NatsConfig(urls=(server.url,)), "bench-correlator")
        js = nc.jetstream()
        await apply_layout(js, 1)
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=producer_main, args=(server.url, tmp + "/producer", child, pods, pool_size, seed)
        )
        proc.start()
        print(f"bench: producer generating {pods:,} pods and a pool of {pool_size:,} events ...", flush=True)
        setup_count = (await anyio.to_thread.run_sync(parent.recv))[1]
        parent.send(("preload", preload))
        await anyio.to_thread.run_sync(parent.recv)
        last = (await js.stream_info("TAPIO_EVENTS")).state.last_seq
        print(f"bench: preloaded {setup_count + preload:,} events ({last:,} messages)", flush=True)
        metrics = ComponentMetrics("correlator")
        settings = RunnerSettings()  # what `serve` runs: snapshots every 30 s / 2M events, slack 0.5 s
        received: list[tuple[int, str, int]] = []  # (receive time, type, last_seen) of medium/high
        steady_from: list[int] = []  # set when the steady phase starts: record from then on

        async def on_corr(msg: Msg) -> None:
            if not steady_from:
                return
            c = correlations_pb2.Correlation()
            c.ParseFromString(msg.data)
            if c.confidence in (correlations_pb2.CONFIDENCE_HIGH, correlations_pb2.CONFIDENCE_MEDIUM):
                received.append((time.time_ns(), c.type, c.last_seen.seconds * NS + c.last_seen.nanos))

        await nc.subscribe("tapio.correlations.>", cb=on_corr)
        pub_settings = PublisherSettings.from_section({}, tmp + "/correlator", batch_max_events=1)
        async with Publisher(pub_settings, nc=nc, registry=metrics.registry) as pub:
            store = await StateStore.open(js, settings.state_bucket)
            runner = Runner(nc, pub, store, settings, metrics)
            await runner.recover()
            async with anyio.create_task_group() as tg:
                tg.start_soon(runner.run)
                started = time.perf_counter()
                while runner.last_seq < last:  # noqa: ASYNC110 - polls the runner task's progress
                    await anyio.sleep(0.05)
                drain = time.perf_counter() - started
                drained = runner.events_in
                print(f"bench: drained {drained:,} events in {drain:.1f}s", flush=True)
                steady_from.append(time.time_ns())
                parent.send(("steady", rate, seconds))
                _, total = await anyio.to_thread.run_sync(parent.recv)
                await anyio.sleep(2.0)
                runner.stopping = True
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
            parent.send(("stop",))
        proc.join(30)
        await nc.close()
    latencies = []
    by_type: dict[str, list[float]] = {}
    for at, typ, last_seen in received:
        if last_seen >= steady_from[0]:  # completed by an event of the steady phase
            latencies.append((at - last_seen) / 1e6)
            by_type.setdefault(typ, []).append(latencies[-1])
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan")
    return E2EResult(
        events_per_second=drained / drain,
        drained_events=drained,
        p99_ms=p99,
        p50_ms=statistics.median(latencies) if latencies else float("nan"),
        max_ms=latencies[-1] if latencies else float("nan"),
        latency_samples=len(latencies),
        steady_rate=total / seconds,
        rss_mb=rss_mb,
        snapshots=runner.snapshots,
        snapshot_child_mb=runner.snapshot_child_mb,
        p50_by_type={k: (len(v), statistics.median(v)) for k, v in sorted(by_type.items())},
    )

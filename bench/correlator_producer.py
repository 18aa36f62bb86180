"""The correlator bench's load generator: a process of its own (like a collector fleet) that
publishes the synthetic cluster of `tapio_correlator_testing.loadgen` (100,000 pods) through the
publisher (per-subject batches with a 200 ms linger, compressed as collectors do) into TAPIO_EVENTS.

Fed by bench/correlator_e2e.py over a pipe: `("preload", n)`, `("steady", rate, seconds)`,
`("stop",)`; it answers `("ready", setup events)`, `("preloaded",)`, `("sent", events, seconds)`.

Generation must not bound the rate it is asked for, so a pool of generated events is serialized
ONCE without id and time and replayed: each emitted event is `id field + body + time field`,
written by hand with `tapio_publisher.wire` (a leading id, as `SerializeToString` writes it, so
the publisher takes it as the event's id; protobuf reads fields in any order). Ids carry the lap
number (`<pool id>~<lap>`), so every replay and every phase has ids of its own; the time field of
a live chunk is encoded once for the whole chunk (all its events are stamped with the wall clock
when handed over). What is published is the same mix, subjects and batching as before: only the
producer's CPU per event changed (`Replay.take` ~1 us an event instead of ~3.5 with a message
built and serialized per event).
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection

import anyio

from tapio_common.config import NatsConfig
from tapio_common.nats.connect import connect
from tapio_correlator_testing.loadgen import Mix, to_pb
from tapio_publisher import Publisher, PublisherSettings
from tapio_publisher.subjects import event_subject
from tapio_publisher.wire import BATCH_EVENT_TAG, length_prefix, varint

NS = 1_000_000_000
CHUNK = 4_000
LINGER = 0.2  # seconds a collector lets a batch fill: at 100k events/s spread over many subjects,
# the publisher default (20 ms) makes batches of ~10 events; 200 ms gives ~100 (latency budget 1 s)
TIME_TAG = b"\x12"  # Event.time: field 2, length-delimited (a Timestamp)


def time_field(t_ns: int) -> bytes:
    """A serialized `Event.time` field (Timestamp seconds = 1, nanos = 2; nanos kept >= 1)."""
    seconds, nanos = divmod(t_ns, NS)
    body = b"\x08" + varint(seconds) + b"\x10" + varint(nanos or 1)
    return TIME_TAG + length_prefix(len(body)) + body


class Replay:
    """The pool replayed endlessly: lap after lap, event times advancing by the pool's span."""

    def __init__(self, pods: int, events: int, seed: int) -> None:
        mix = Mix(pods, seed)
        self.setup = [(event_subject(pb), pb.SerializeToString()) for pb in map(to_pb, mix.setup())]
        self.subjects: list[str] = []
        self.ids: list[bytes] = []  # pool id + "~"
        self.bodies: list[bytes] = []  # the event without id and time
        self.offsets: list[int] = []  # event time relative to the pool's start
        start = 0
        for ev in mix.chunk(events):
            pb = to_pb(ev)
            t = pb.time.seconds * NS + pb.time.nanos
            start = start or t
            self.subjects.append(event_subject(pb))
            self.ids.append(pb.id.encode() + b"~")
            pb.ClearField("id")
            pb.ClearField("time")
            self.bodies.append(pb.SerializeToString())
            self.offsets.append(t - start)
        self.span = (self.offsets[-1] if self.offsets else 0) + NS
        self.t0 = 0
        self.first_lap = 0
        self.n = 0

    def restart(self, t0: int, first_lap: int) -> None:
        """Replay from the pool's start with times from `t0` and ids of lap `first_lap` onwards."""
        self.t0, self.first_lap, self.n = t0, first_lap, 0

    def take(self, count: int, now_ns: int | None = None) -> dict[str, list[bytes]]:
        """The next `count` events by subject; stamped `now_ns` (live) or at their replayed time."""
        groups: dict[str, list[bytes]] = {}
        size = len(self.bodies)
        ids, bodies, subjects, offsets = self.ids, self.bodies, self.subjects, self.offsets
        stamp = time_field(now_ns) if now_ns is not None else b""
        n, end = self.n, self.n + count
        while n < end:
            lap, i = divmod(n, size)
            lap_id = str(self.first_lap + lap).encode()
            base = self.t0 + lap * self.span
            stop = min(end, (lap + 1) * size)
            for j in range(i, i + stop - n):
                raw = ids[j] + lap_id
                field = BATCH_EVENT_TAG + length_prefix(len(raw)) + raw  # Event.id's tag is 0x0A too
                t = stamp or time_field(base + offsets[j])
                subject = subjects[j]
                data = field + bodies[j] + t
                group = groups.get(subject)
                if group is None:
                    groups[subject] = [data]
                else:
                    group.append(data)
            n = stop
        self.n = n
        return groups


async def _produce(url: str, data_dir: str, conn: Connection, pods: int, pool_size: int, seed: int) -> None:
    replay = Replay(pods, pool_size, seed)
    nc = await connect(NatsConfig(urls=(url,)), "bench-producer")
    settings = PublisherSettings.from_section({"batch_linger": LINGER}, data_dir)
    lap = 1_000_000
    async with Publisher(settings, nc=nc) as pub:
        for subject, data in replay.setup:
            await pub.publish_encoded(subject, data)
        await pub.flush()
        conn.send(("ready", len(replay.setup)))
        replay.restart(time.time_ns() - 3600 * NS, 0)
        while True:
            cmd = conn.recv()
            if cmd[0] == "preload":
                count = cmd[1]
                while count > 0:
                    n = min(CHUNK, count)
                    for subject, datas in replay.take(n).items():
                        await pub.publish_encoded_many(subject, datas)
                    count -= n
                await pub.flush()
                conn.send(("preloaded",))
            elif cmd[0] == "steady":
                rate, seconds = cmd[1], cmd[2]
                lap += 1_000_000
                replay.restart(time.time_ns(), lap)
                started = time.monotonic()
                total = 0
                step = max(250, min(CHUNK, rate // 100))  # ~10 ms of events per hand-over
                while time.monotonic() - started < seconds:
                    delay = started + total / rate - time.monotonic()
                    if delay > 0:
                        await anyio.sleep(delay)
                    for subject, datas in replay.take(step, time.time_ns()).items():
                        await pub.publish_encoded_many(subject, datas)
                    total += step
                elapsed = time.monotonic() - started
                await pub.flush()
                conn.send(("sent", total, elapsed))
            else:
                break
    await nc.close()


def producer_main(url: str, data_dir: str, conn: Connection, pods: int, pool_size: int, seed: int) -> None:
    anyio.run(_produce, url, data_dir, conn, pods, pool_size, seed)

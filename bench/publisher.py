"""Publisher benchmark: realistic events through tapio_publisher vs the same bytes through bare nats-py.

    bazel run //bench:publisher -- --seconds 30

A local nats-server (file store) holds TAPIO_EVENTS with its production limits. Rounds alternate
between the two sides so background load hits both alike; each side runs --seconds in total and
every round ends only when everything it published is acknowledged. Last line:

    events_per_second=N raw_events_per_second=N ratio_vs_raw=R p99_publish_ack_ms=N
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import attrs
import nats
from nats.aio.client import Client

from tapio.events.v1 import events_pb2
from tapio_common.nats.embedded import EmbeddedNats
from tapio_common.scenarios import all_events
from tapio_jetstream.layout import EVENTS, production_layout
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings
from tapio_publisher.codec import ENCODING_BATCH, ENCODING_HEADER, MSG_ID_HEADER, Compression
from tapio_publisher.encoder import Encoder
from tapio_publisher.ids import IdGenerator
from tapio_publisher.subjects import event_subject

Group = tuple[str, list[bytes]]


def templates() -> list[events_pb2.Event]:
    return all_events()


def vary(ev: events_pb2.Event, rnd: random.Random) -> None:
    """Per-event values a real stream has (pids, counters, resource versions), so no two events
    of a template are identical and compression is not flattered by exact repeats."""
    payload = ev.WhichOneof("payload")
    if payload == "k8s":
        ev.k8s.resource_version = str(rnd.randrange(10_000_000, 99_999_999))
        if ev.k8s.kind == "Pod":
            ev.k8s.restart_count += rnd.randrange(0, 3)
    elif payload == "kernel":
        k = ev.kernel
        k.pid = k.tid = ev.context.pid = rnd.randrange(2, 4_000_000)
        k.ppid = rnd.randrange(1, 4_000_000)
        k.latency_ns = rnd.randrange(50_000, 900_000_000)
        k.count = rnd.randrange(1, 5000)
        if k.sport:
            k.sport = rnd.randrange(32768, 60999)
    elif payload == "network":
        n = ev.network
        n.packets, n.bytes = rnd.randrange(1, 10**6), rnd.randrange(64, 10**9)
        n.drops, n.errors = rnd.randrange(0, 5000), rnd.randrange(0, 50)
        n.loss_ratio = round(n.drops / max(1, n.packets), 4)
    elif payload == "systemd":
        ev.systemd.restarts = rnd.randrange(0, 20)


def event_pool(size: int, seed: int = 7) -> tuple[list[tuple[str, bytes]], float]:
    """`size` distinct serialized events shaped like the public scenarios (template i % n, in the
    scenarios' order), each with its own random UUIDv7-format id, its own time and varied values.
    Returns (subject, bytes) pairs and the serialization cost per event (collector side)."""
    rnd = random.Random(seed)
    tmpl = templates()
    now = time.time_ns()
    pool = []
    ev = events_pb2.Event()
    for i in range(size):
        ev.CopyFrom(tmpl[i % len(tmpl)])
        ms, bits = now // 1_000_000 + i // 2000, rnd.getrandbits(74)
        h = f"{(ms << 80) | (7 << 76) | ((bits >> 62) << 64) | (2 << 62) | (bits & ((1 << 62) - 1)):032x}"
        ev.id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        ev.time.FromNanoseconds(now + i * 997 + rnd.randrange(1000))
        vary(ev, rnd)
        pool.append((event_subject(ev), ev.SerializeToString()))
    sample = [events_pb2.Event.FromString(data) for _, data in pool[:20_000]]
    start = time.perf_counter()
    for msg in sample:
        msg.SerializeToString()
    return pool, (time.perf_counter() - start) / len(sample) * 1e6


def groups_of(pool: list[tuple[str, bytes]], window: int) -> list[Group]:
    """What a collector hands over: each window of consecutive events, grouped by subject."""
    out: list[Group] = []
    for start in range(0, len(pool), window):
        by_subject: dict[str, list[bytes]] = {}
        for subject, data in pool[start : start + window]:
            by_subject.setdefault(subject, []).append(data)
        out += list(by_subject.items())
    return out


def wire_messages(
    settings: PublisherSettings, groups: list[Group], compressed: bool
) -> list[tuple[str, bytes, int]]:
    """The messages the publisher's encoder makes of `groups`, built once before any timing:
    (subject, payload, events). `compressed=False` gives the same EventBatch bytes uncompressed."""
    enc = Encoder(settings if compressed else settings_without_compression(settings), IdGenerator())
    out = []
    for subject, datas in groups:
        ready, _ = enc.take(subject, datas, 0.0)
        out += [(m.subject, m.payload, m.events) for m in ready]
    out += [(m.subject, m.payload, m.events) for m in enc.seal_all()]
    return out


def settings_without_compression(s: PublisherSettings) -> PublisherSettings:
    return attrs.evolve(s, compression=Compression.NONE)


async def publisher_round(
    pub: Publisher, groups: list[Group], seconds: float, pos: int
) -> tuple[int, float, int]:
    """Publishes groups from `pos` on for `seconds`, then flushes: (events, elapsed, next pos)."""
    events, n = 0, len(groups)
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(64):
            subject, datas = groups[pos]
            await pub.publish_encoded_many(subject, datas)
            events += len(datas)
            pos = (pos + 1) % n
    await pub.flush()
    return events, time.perf_counter() - start, pos


async def raw_round(
    nc: Client, messages: list[tuple[str, bytes, int]], seconds: float, window: int, tag: str, pos: int
) -> tuple[int, float, int]:
    """Bare nats-py: js.publish_async of pre-built messages (window `window`), all acks awaited."""
    js = nc.jetstream(publish_async_max_pending=window)
    events, n, seq = 0, len(messages), 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(16):
            subject, payload, count = messages[pos]
            seq += 1
            headers = {MSG_ID_HEADER: f"{tag}-{seq}", ENCODING_HEADER: ENCODING_BATCH}
            await js.publish_async(subject, payload, headers=headers)
            events += count
            pos = (pos + 1) % n
    await js.publish_async_completed()
    return events, time.perf_counter() - start, pos


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/publisher.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--seconds", type=float, default=30.0, help="timed seconds per side (default 30)")
    p.add_argument("--round", type=float, default=5.0, help="seconds of one alternating round (default 5)")
    p.add_argument(
        "--pool", type=int, default=300_000, help="distinct events cycled through (default 300000)"
    )
    p.add_argument(
        "--window", type=int, default=10_000,
        help="events a collector hands over at once, grouped by subject (default 10000: 10 ms at 1M ev/s)",
    )  # fmt: skip
    p.add_argument("--compression", default="zstd", help="none|zstd|lz4 (default zstd)")
    p.add_argument("--level", type=int, default=None, help="zstd level (default: the library default)")
    p.add_argument("--batch", type=int, default=1000, help="max events per message (default 1000)")
    p.add_argument(
        "--inflight", type=int, default=None, help="max unacked messages (default: library default)"
    )
    p.add_argument("--store-dir", default=None, help="nats-server store (default: a temporary directory)")
    return p.parse_args(argv)


def fmt_rate(events: int, seconds: float) -> str:
    return f"{events / seconds / 1e6:.3f}M ev/s ({events} events in {seconds:.1f} s)"


def server_cpu(server: EmbeddedNats) -> float:
    """CPU seconds (user + system) the nats-server process used so far."""
    assert server.proc is not None
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall time, this process's CPU time and the server's CPU time of one side, summed over rounds."""

    def __init__(self) -> None:
        self.events, self.wall, self.cpu, self.server = 0, 0.0, 0.0, 0.0

    def add(self, events: int, wall: float, cpu: float, server: float) -> None:
        self.events += events
        self.wall += wall
        self.cpu += cpu
        self.server += server

    @property
    def rate(self) -> float:
        return self.events / self.wall

    def cpu_note(self) -> str:
        return (
            f"client CPU {self.cpu / self.wall:.0%} of a core, nats-server CPU {self.server / self.wall:.0%}"
        )


async def run(args: argparse.Namespace, spool_dir: str, server: EmbeddedNats) -> str:
    overrides: dict[str, object] = {"compression": args.compression, "batch_max_events": args.batch}
    if args.level is not None:
        overrides["compression_level"] = args.level
    if args.inflight is not None:
        overrides["max_inflight"] = args.inflight
    settings = PublisherSettings(spool_dir=spool_dir, **overrides)  # type: ignore[arg-type]
    pool, serialize_us = event_pool(args.pool)
    groups = groups_of(pool, args.window)
    raw_msgs = wire_messages(settings, groups, compressed=False)
    wire_msgs = wire_messages(settings, groups, compressed=True)
    raw_bytes = sum(len(m[1]) for m in raw_msgs)
    wire_bytes = sum(len(m[1]) for m in wire_msgs)
    print(f"pool: {len(pool)} distinct events from {len(templates())} scenario templates, "
          f"{raw_bytes / len(pool):.0f} B/event framed, {wire_bytes / len(pool):.1f} B/event on the wire "
          f"({settings.compression.value} level {settings.compression_level}); {len(raw_msgs)} messages "
          f"of {len(pool) / len(raw_msgs):.0f} events on average", flush=True)  # fmt: skip
    print(f"collector-side protobuf serialization (not timed below): {serialize_us:.2f} us/event", flush=True)
    print(f"settings: batch_max_events={settings.batch_max_events} linger={settings.batch_linger}s "
          f"max_inflight={settings.max_inflight} compression={settings.compression.value}:"
          f"{settings.compression_level} server={server.url} store={server.store_dir}", flush=True)  # fmt: skip

    latencies: list[float] = []
    nc = await nats.connect(server.url, pending_size=256 * 1024 * 1024)
    js = nc.jetstream()
    await apply_layout(js, 1, layout=production_layout(1))
    meters = {side: Meter() for side in ("publisher", "raw", "wire")}
    positions = dict.fromkeys(meters, 0)
    rounds = max(1, round(args.seconds / args.round))
    async with Publisher(settings, nc=nc, on_confirm=lambda n, s: latencies.append(s)) as pub:
        for i in range(rounds + 1):  # round 0 warms up and is not counted
            secs = min(1.0, args.seconds / rounds) if i == 0 else args.seconds / rounds
            line = []
            for side in meters:
                await js.purge_stream(EVENTS)
                if side == "publisher" and i == 1:
                    latencies.clear()
                cpu, srv = time.process_time(), server_cpu(server)
                if side == "publisher":
                    ev, el, positions[side] = await publisher_round(pub, groups, secs, positions[side])
                else:
                    msgs = raw_msgs if side == "raw" else wire_msgs
                    ev, el, positions[side] = await raw_round(
                        nc, msgs, secs, settings.max_inflight, f"{side}{i}", positions[side]
                    )
                if i:
                    meters[side].add(ev, el, time.process_time() - cpu, server_cpu(server) - srv)
                line.append(f"{side} {fmt_rate(ev, el)}")
            print(("warm-up: " if i == 0 else f"round {i}/{rounds}: ") + " | ".join(line), flush=True)
    await nc.close()
    pub_m, raw_m, wire_m = meters["publisher"], meters["raw"], meters["wire"]
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 1 else float("nan")
    print(
        f"publisher (tapio_publisher, serialized events in, all acked): {pub_m.rate:.0f} events/s; "
        f"p99 publish->ack {p99:.1f} ms over {len(latencies)} messages; {pub_m.cpu_note()}",
        flush=True,
    )
    print(
        f"raw (bare nats-py publish_async, same events, same batches, uncompressed): {raw_m.rate:.0f} "
        f"events/s; {raw_m.cpu_note()}",
        flush=True,
    )
    print(
        f"wire raw (bare nats-py publish_async of the publisher's own compressed messages): "
        f"{wire_m.rate:.0f} events/s, ratio {pub_m.rate / wire_m.rate:.3f}; {wire_m.cpu_note()}",
        flush=True,
    )
    return (
        f"events_per_second={pub_m.rate:.0f} raw_events_per_second={raw_m.rate:.0f} "
        f"ratio_vs_raw={pub_m.rate / raw_m.rate:.3f} p99_publish_ack_ms={p99:.1f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="tapio-bench-") as tmp:
        store = Path(args.store_dir) if args.store_dir else Path(tmp) / "nats"
        with EmbeddedNats(store) as server:
            last = anyio.run(run, args, str(Path(tmp) / "spool"), server, backend="asyncio")
    print(last, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

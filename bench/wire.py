"""Hand-encoded batch framing (tapio_publisher.wire, through the publisher's Encoder) against the
protobuf library, on the same input: the figure that keeps the one hand-encoded path.

Input: the public scenarios' events (tests/scenarios/public, read by tapio_common.scenarios),
repeated to --events with unique ids, serialized once, one subject, batches of --batch events
(the publisher's default, 1,000), no compression (the same for both, so left out).

Measured, in interleaved rounds until --seconds of wall time, as CPU seconds of this process
(time.process_time: other processes on a shared machine do not inflate it), per event:
- from bytes (the publisher's path: publish_many serializes each event once to route and size it,
  publish_encoded_many takes serialized events from collectors): hand = `Encoder.take` +
  `seal_all` (wire framing, the code the publisher runs); library = `EventBatch`,
  `events.add().MergeFromString(data)` per event, `SerializeToString()`.
- from messages (what a publisher would do without hand framing): hand = SerializeToString per
  event + the Encoder; library = `EventBatch.events.extend(messages)` + `SerializeToString()`.
- leading id (event mode: the Nats-Msg-Id of a serialized event): `wire.leading_id` against
  `Event.FromString(data).id`.
Before measuring, each hand-framed batch is checked to decode to the library's batch.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from tapio.events.v1 import events_pb2
from tapio_common.scenarios import all_events
from tapio_publisher import PublisherSettings, wire
from tapio_publisher.codec import Compression
from tapio_publisher.encoder import Encoder

SUBJECT = "tapio.events.k8s.bench.pods.updated"


def make_pool(count: int) -> list[events_pb2.Event]:
    base = all_events()
    pool = []
    for i in range(count):
        ev = events_pb2.Event()
        ev.CopyFrom(base[i % len(base)])
        ev.id = f"{ev.id}~{i}"
        pool.append(ev)
    return pool


def make_encoder(batch: int) -> Encoder:
    settings = PublisherSettings.from_section(
        {}, "/nonexistent", batch_max_events=batch, compression=Compression.NONE, batch_linger=3600.0
    )
    counter = iter(range(1 << 62))
    return Encoder(settings, new_id=lambda: f"batch-{next(counter)}")


def hand_from_bytes(encoder: Encoder, chunks: list[list[bytes]]) -> list[bytes]:
    out = []
    for chunk in chunks:
        msgs, _ = encoder.take(SUBJECT, chunk, 0.0)
        out += [m.payload for m in msgs]
    out += [m.payload for m in encoder.seal_all()]
    return out


def library_from_bytes(chunks: list[list[bytes]]) -> list[bytes]:
    out = []
    for n, chunk in enumerate(chunks):
        batch = events_pb2.EventBatch(batch_id=f"batch-{n}")
        add = batch.events.add
        for data in chunk:
            add().MergeFromString(data)
        out.append(batch.SerializeToString())
    return out


def hand_from_messages(encoder: Encoder, chunks: list[list[events_pb2.Event]]) -> list[bytes]:
    return hand_from_bytes(encoder, [[e.SerializeToString() for e in chunk] for chunk in chunks])


def library_from_messages(chunks: list[list[events_pb2.Event]]) -> list[bytes]:
    out = []
    for n, chunk in enumerate(chunks):
        batch = events_pb2.EventBatch(batch_id=f"batch-{n}")
        batch.events.extend(chunk)
        out.append(batch.SerializeToString())
    return out


def check_same(hand: list[bytes], library: list[bytes]) -> None:
    if len(hand) != len(library):
        raise SystemExit(f"wire bench: {len(hand)} hand-framed batches, {len(library)} from the library")
    for h, lib in zip(hand, library, strict=True):
        a, b = events_pb2.EventBatch.FromString(h), events_pb2.EventBatch.FromString(lib)
        if list(a.events) != list(b.events):
            raise SystemExit("wire bench: a hand-framed batch differs from the library's")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bazel run //bench:wire --",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  bazel run //bench:wire -- --seconds 20",
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="wall time of the measured rounds (default: 10)"
    )
    parser.add_argument("--events", type=int, default=100_000, help="events per round (default: 100000)")
    parser.add_argument("--batch", type=int, default=1000, help="events per batch (default: 1000)")
    args = parser.parse_args()

    pool = make_pool(args.events)
    datas = [e.SerializeToString() for e in pool]
    byte_chunks = [datas[i : i + args.batch] for i in range(0, len(datas), args.batch)]
    msg_chunks = [pool[i : i + args.batch] for i in range(0, len(pool), args.batch)]
    check_same(hand_from_bytes(make_encoder(args.batch), byte_chunks), library_from_bytes(byte_chunks))
    check_same(hand_from_messages(make_encoder(args.batch), msg_chunks), library_from_messages(msg_chunks))
    size = sum(map(len, datas)) / len(datas)
    print(f"input: {len(pool):,} events of the public scenarios ({size:.0f} bytes each on average), "
          f"batches of {args.batch}, one subject, no compression; hand-framed batches decode to the "
          "library's (checked)")  # fmt: skip

    cases: dict[str, Callable[[], object]] = {
        "hand_bytes": lambda: hand_from_bytes(make_encoder(args.batch), byte_chunks),
        "library_bytes": lambda: library_from_bytes(byte_chunks),
        "hand_messages": lambda: hand_from_messages(make_encoder(args.batch), msg_chunks),
        "library_messages": lambda: library_from_messages(msg_chunks),
        "hand_leading_id": lambda: [wire.leading_id(d) for d in datas],
        "library_leading_id": lambda: [events_pb2.Event.FromString(d).id for d in datas],
    }
    cpu = dict.fromkeys(cases, 0.0)
    rounds = 0
    deadline = time.monotonic() + args.seconds
    while rounds < 2 or time.monotonic() < deadline:
        for name, run in cases.items():
            started = time.process_time()
            run()
            cpu[name] += time.process_time() - started
        rounds += 1
    ns = {name: spent / (rounds * len(pool)) * 1e9 for name, spent in cpu.items()}
    load = os.getloadavg()
    print(f"{rounds} rounds of {len(pool):,} events; CPU ns per event (load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}):")  # fmt: skip
    for name, value in ns.items():
        print(f"  {name:<20} {value:8.0f} ns")
    speedup = ns["library_bytes"] / ns["hand_bytes"]
    msg_speedup = ns["library_messages"] / ns["hand_messages"]
    id_speedup = ns["library_leading_id"] / ns["hand_leading_id"]
    print(
        f"hand_ns_per_event={ns['hand_bytes']:.0f} library_ns_per_event={ns['library_bytes']:.0f} "
        f"speedup={speedup:.1f} from_messages_speedup={msg_speedup:.1f} leading_id_speedup={id_speedup:.1f} "
        f"loadavg={load[0]:.1f}"
    )


if __name__ == "__main__":
    main()

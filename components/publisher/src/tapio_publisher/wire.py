"""The one place Tapio writes or reads protobuf by hand: framing serialized Events into an
`EventBatch` without parsing them, on the publisher's batching path (pure).

Fed by `tapio_publisher.batching` (framing, id check) and `tapio_publisher.encoder` (batch id
trailer, leading id of a single event); the pipeline republishes events as their own bytes through
views derived from the contract (`tapio_pipeline.views`), framed by the C runtime. Its sibling
`tapio_publisher.k8s_wire` encodes the Kubernetes collector's pod events with these varints. Everything else in the repository encodes and decodes
with the generated classes (`events_pb2` ...); `tools/check_repo.py` (make lint) and the import
contract `wire-stays-in-the-publisher` fail when hand-encoding appears anywhere else.

Why by hand: a batch is the concatenation of `EventBatch.events` fields (tag 0x0A, length varint,
the serialized Event) and a `batch_id` field, so framing is a table lookup and a join per event,
while the library has to parse every serialized event into a message and serialize it again.
`bazel run //bench:wire -- --seconds 20` measures both on the same input (100,000 events of the
public scenarios, 368 bytes on average, in batches of 1,000) and checks they decode to the same
batches; on 2026-12-01 (2 cores shared with 8 other sessions, load average 7.8) it printed
`hand_ns_per_event=537 library_ns_per_event=1521 speedup=2.8 from_messages_speedup=1.3
leading_id_speedup=2.8` (CPU ns per event). At the publisher's ~1.6 million events/s (~0.6 us an
event, bench:publisher) the library's 1.5 us of framing alone would cap it below 0.7 million.
"""

from __future__ import annotations

EVENT_ID_TAG = 0x0A
"""Event.id: field 1, length-delimited (the first byte of an Event whose id is set)."""
BATCH_EVENT_TAG = b"\x0a"
"""EventBatch.events: field 1, length-delimited."""
BATCH_ID_TAG = b"\x12"
"""EventBatch.batch_id: field 2, length-delimited."""


def varint(n: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


VARINTS: tuple[bytes, ...] = tuple(varint(n) for n in range(16384))
"""Pre-computed varints of 0..16383 (every length an event usually has): a tuple lookup, no loop."""

FRAME_PREFIXES: tuple[bytes, ...] = tuple(BATCH_EVENT_TAG + v for v in VARINTS)
"""The `EventBatch.events` field prefix (tag + length) of an event of 0..16383 bytes, by length."""

FRAME_OVERHEAD = 4
"""Bytes an event costs in a batch beyond its own: tag (1) + length varint (<= 3 below 2 MiB)."""


def length_prefix(n: int) -> bytes:
    return VARINTS[n] if n < 16384 else varint(n)


def frame_prefix(n: int) -> bytes:
    """The `EventBatch.events` field prefix of an event of `n` bytes (any size)."""
    return FRAME_PREFIXES[n] if n < 16384 else BATCH_EVENT_TAG + varint(n)


def event_field(data: bytes) -> bytes:
    """One serialized Event as an `EventBatch.events` field (tag, length, bytes)."""
    return frame_prefix(len(data)) + data


def id_field(event_id: str) -> bytes:
    """A serialized `Event.id` field; prepended to a serialized Event it sets the id (protobuf
    messages concatenate: a later field of the same number wins, an absent one is added)."""
    raw = event_id.encode()
    return BATCH_EVENT_TAG + length_prefix(len(raw)) + raw  # Event.id has the same tag, 0x0A


def has_leading_id(data: bytes) -> bool:
    """True if a serialized Event starts with a non-empty `id` (as SerializeToString writes it)."""
    return len(data) > 1 and data[0] == EVENT_ID_TAG and data[1] != 0


def leading_id(data: bytes) -> str:
    """The id of a serialized Event whose first field is its id (see has_leading_id)."""
    n, pos, shift = 0, 1, 0
    while True:
        b = data[pos]
        n |= (b & 0x7F) << shift
        pos += 1
        if b < 0x80:
            break
        shift += 7
    return data[pos : pos + n].decode()


def batch_trailer(batch_id: str) -> bytes:
    """The `EventBatch.batch_id` field, appended after the events."""
    raw = batch_id.encode()
    return BATCH_ID_TAG + length_prefix(len(raw)) + raw


def frame_batch(datas: list[bytes], batch_id: str) -> bytes:
    """A whole EventBatch of serialized Events (each with its id): what the batcher builds
    incrementally, in one call (the benchmark's and the tests' reference)."""
    parts = [b""] * (2 * len(datas))
    parts[::2] = [frame_prefix(len(d)) for d in datas]
    parts[1::2] = datas
    parts.append(batch_trailer(batch_id))
    return b"".join(parts)

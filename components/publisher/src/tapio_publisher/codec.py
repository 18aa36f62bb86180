"""Wire encoding of events (bare Event or EventBatch, optionally zstd/lz4): what publishers write.

The reading half (every form, with limits) is `tapio_jetstream.decode`; the header names here are shared.
"""

from __future__ import annotations

import enum

import lz4.frame
import zstandard

MSG_ID_HEADER = "Nats-Msg-Id"
ENCODING_HEADER = "Tapio-Encoding"
COMPRESSION_HEADER = "Tapio-Compression"
ENCODING_EVENT = "event"
ENCODING_BATCH = "batch"

EVENT_ID_TAG = 0x0A  # Event.id: field 1, length-delimited
BATCH_EVENT_TAG = b"\x0a"  # EventBatch.events: field 1, length-delimited
BATCH_ID_TAG = b"\x12"  # EventBatch.batch_id: field 2, length-delimited


class Compression(enum.Enum):
    NONE = "none"
    ZSTD = "zstd"
    LZ4 = "lz4"

    @classmethod
    def parse(cls, value: str) -> Compression:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise ValueError(f"unknown compression {value!r} (expected none|zstd|lz4)") from None


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


def length_prefix(n: int) -> bytes:
    return VARINTS[n] if n < 16384 else varint(n)


def event_field(data: bytes) -> bytes:
    """One serialized Event as an `EventBatch.events` field (tag, length, bytes)."""
    return BATCH_EVENT_TAG + length_prefix(len(data)) + data


def id_field(event_id: str) -> bytes:
    """A serialized `Event.id` field; prepended to a serialized Event it sets the id (protobuf
    messages concatenate: a later field of the same number wins, an absent one is added)."""
    raw = event_id.encode()
    return b"\x0a" + length_prefix(len(raw)) + raw


def has_leading_id(data: bytes) -> bool:
    """True if a serialized Event starts with a non-empty `id` (as SerializeToString writes it)."""
    return len(data) > 1 and data[0] == EVENT_ID_TAG and data[1] != 0


def batch_trailer(batch_id: str) -> bytes:
    """The `EventBatch.batch_id` field, appended after the events."""
    raw = batch_id.encode()
    return BATCH_ID_TAG + length_prefix(len(raw)) + raw


class Compressor:
    """Compresses batch payloads; one per publisher (zstd contexts are not shared across threads)."""

    def __init__(self, kind: Compression, level: int = 1) -> None:
        self.kind = kind
        self._zstd = zstandard.ZstdCompressor(level=level) if kind is Compression.ZSTD else None

    def compress(self, payload: bytes) -> bytes:
        if self._zstd is not None:
            return self._zstd.compress(payload)
        if self.kind is Compression.LZ4:
            return bytes(lz4.frame.compress(payload))
        return payload

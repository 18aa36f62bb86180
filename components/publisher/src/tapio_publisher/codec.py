"""Wire encoding of events (bare Event or EventBatch, optionally zstd/lz4) and its decoding for consumers."""

from __future__ import annotations

import enum
from collections.abc import Mapping

import lz4.frame
import zstandard
from google.protobuf.message import DecodeError as ProtobufDecodeError

from tapio.events.v1 import events_pb2
from tapio_publisher.errors import DecodeError

MSG_ID_HEADER = "Nats-Msg-Id"
ENCODING_HEADER = "Tapio-Encoding"
COMPRESSION_HEADER = "Tapio-Compression"
ENCODING_EVENT = "event"
ENCODING_BATCH = "batch"

MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
"""Decoding refuses a compressed payload that would expand beyond this (a decompression bomb)."""

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


def decompress(data: bytes, kind: str, max_size: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Undo `Tapio-Compression: zstd|lz4` (raises DecodeError for unknown kinds, corrupt or huge data)."""
    try:
        if kind == Compression.ZSTD.value:
            declared = zstandard.frame_content_size(data)
            if declared > max_size:
                raise DecodeError(f"zstd payload declares {declared} bytes, more than the limit {max_size}")
            out = zstandard.ZstdDecompressor().decompress(data, max_output_size=max_size)
        elif kind == Compression.LZ4.value:
            dec = lz4.frame.LZ4FrameDecompressor()
            out = dec.decompress(data, max_length=max_size)
            if not dec.eof:
                raise DecodeError(f"lz4 payload truncated or expanding beyond {max_size} bytes")
        elif kind in ("", Compression.NONE.value):
            return data
        else:
            raise DecodeError(f"unknown {COMPRESSION_HEADER} {kind!r} (expected zstd|lz4)")
    except (zstandard.ZstdError, RuntimeError) as e:
        raise DecodeError(f"corrupt {kind} payload of {len(data)} bytes: {e}") from e
    return bytes(out)


def decode_batch(headers: Mapping[str, str] | None, data: bytes) -> events_pb2.EventBatch:
    """The message as an EventBatch, whatever its form: a bare Event becomes a batch of one (with
    an empty batch_id). Raises DecodeError naming what is wrong."""
    hdrs = headers or {}
    payload = decompress(data, hdrs.get(COMPRESSION_HEADER, ""))
    encoding = hdrs.get(ENCODING_HEADER, ENCODING_EVENT)
    try:
        if encoding == ENCODING_BATCH:
            return events_pb2.EventBatch.FromString(payload)
        if encoding == ENCODING_EVENT:
            batch = events_pb2.EventBatch()
            batch.events.append(events_pb2.Event.FromString(payload))
            return batch
    except ProtobufDecodeError as e:
        raise DecodeError(f"not a valid {encoding} payload ({len(payload)} bytes): {e}") from e
    raise DecodeError(f"unknown {ENCODING_HEADER} {encoding!r} (expected event|batch)")


def decode_message(headers: Mapping[str, str] | None, data: bytes) -> list[events_pb2.Event]:
    """Every event a message carries: a bare Event, an EventBatch, compressed or not (CONTRACT.md §1).

    `headers` are the NATS message headers (`msg.headers`, may be None: a bare Event then).
    """
    return list(decode_batch(headers, data).events)

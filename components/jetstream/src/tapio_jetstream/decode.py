"""Decoding what a consumer pulls (pure): every event form of CONTRACT.md §1 (bare Event, EventBatch,
zstd, lz4), a Correlation (§4) or an Alert (§5). Fed by the consumer runtime with the message's
headers and payload; raises DecodeError (the message goes to the dead-letter queue at once)."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import lz4.frame
import zstandard
from google.protobuf.message import DecodeError as ProtobufDecodeError

from tapio.alerts.v1 import alerts_pb2
from tapio.correlations.v1 import correlations_pb2
from tapio.events.v1 import events_pb2
from tapio_jetstream.errors import DecodeError
from tapio_publisher.codec import (
    COMPRESSION_HEADER,
    ENCODING_BATCH,
    ENCODING_EVENT,
    ENCODING_HEADER,
    Compression,
)

MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
"""Decoding refuses a compressed payload that would expand beyond this (a decompression bomb)."""

Headers = Mapping[str, str] | None

_local = threading.local()


def _zstd() -> zstandard.ZstdDecompressor:
    """This thread's decompressor: making one costs more than decompressing a batch (13 us against
    5 us for a 700-byte batch of 6 events), and one must not be shared between threads."""
    dctx: zstandard.ZstdDecompressor | None = getattr(_local, "zstd", None)
    if dctx is None:
        dctx = _local.zstd = zstandard.ZstdDecompressor()
    return dctx


# The header values as plain strings: an enum's `.value` costs ~1 us a read, three a message here.
_ZSTD = Compression.ZSTD.value
_LZ4 = Compression.LZ4.value
_NONE = Compression.NONE.value


def decompress(data: bytes, kind: str, max_size: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Undo `Tapio-Compression: zstd|lz4` (raises DecodeError for unknown kinds, corrupt or huge data)."""
    try:
        if kind == _ZSTD:
            declared = zstandard.frame_content_size(data)
            if declared > max_size:
                raise DecodeError(f"zstd payload declares {declared} bytes, more than the limit {max_size}")
            out = _zstd().decompress(data, max_output_size=max_size)
        elif kind == _LZ4:
            dec = lz4.frame.LZ4FrameDecompressor()
            out = dec.decompress(data, max_length=max_size)
            if not dec.eof:
                raise DecodeError(f"lz4 payload truncated or expanding beyond {max_size} bytes")
        elif kind in ("", _NONE):
            return data
        else:
            raise DecodeError(f"unknown {COMPRESSION_HEADER} {kind!r} (expected zstd|lz4)")
    except (zstandard.ZstdError, RuntimeError) as e:
        raise DecodeError(f"corrupt {kind} payload of {len(data)} bytes: {e}") from e
    return bytes(out)


def decompressed(headers: Headers, data: bytes) -> tuple[Headers, bytes]:
    """A compressed message as its decoder would see it uncompressed: the payload decompressed and
    the headers without `Tapio-Compression` (what a consumer does off its event loop's thread:
    zstd and lz4 release the GIL). DecodeError as `decompress`."""
    hdrs = dict(headers or {})
    return hdrs, decompress(data, hdrs.pop(COMPRESSION_HEADER, ""))


def message_payload(headers: Headers, data: bytes) -> tuple[bytes, str]:
    """An events message's serialized payload (decompressed) and its encoding, `event` or `batch`
    (`Tapio-Encoding`; a message without it is a bare Event). DecodeError for anything else."""
    hdrs = headers or {}
    payload = decompress(data, hdrs.get(COMPRESSION_HEADER, ""))
    encoding = hdrs.get(ENCODING_HEADER, ENCODING_EVENT)
    if encoding != ENCODING_BATCH and encoding != ENCODING_EVENT:
        raise DecodeError(f"unknown {ENCODING_HEADER} {encoding!r} (expected event|batch)")
    return payload, encoding


def decode_batch(headers: Headers, data: bytes) -> events_pb2.EventBatch:
    """The message as an EventBatch, whatever its form: a bare Event becomes a batch of one (with
    an empty batch_id). Raises DecodeError naming what is wrong."""
    payload, encoding = message_payload(headers, data)
    try:
        if encoding == ENCODING_BATCH:
            return events_pb2.EventBatch.FromString(payload)
        batch = events_pb2.EventBatch()
        batch.events.append(events_pb2.Event.FromString(payload))
        return batch
    except ProtobufDecodeError as e:
        raise DecodeError(f"not a valid {encoding} payload ({len(payload)} bytes): {e}") from e


def decode_events(headers: Headers, data: bytes) -> list[events_pb2.Event]:
    """Every event a message carries: a bare Event, an EventBatch, compressed or not (CONTRACT.md §1).

    `headers` are the NATS message headers (`msg.headers`, may be None: a bare Event then).
    """
    return list(decode_batch(headers, data).events)


def decode_correlation(headers: Headers, data: bytes) -> list[correlations_pb2.Correlation]:
    """The Correlation a message of TAPIO_CORRELATIONS carries (a list of one)."""
    try:
        corr = correlations_pb2.Correlation.FromString(
            decompress(data, (headers or {}).get(COMPRESSION_HEADER, ""))
        )
    except ProtobufDecodeError as e:
        raise DecodeError(f"not a valid Correlation ({len(data)} bytes): {e}") from e
    if not corr.id:
        raise DecodeError(f"a Correlation without an id ({len(data)} bytes)")
    return [corr]


def decode_alert(headers: Headers, data: bytes) -> list[alerts_pb2.Alert]:
    """The Alert a message of TAPIO_ALERTS carries (a list of one)."""
    try:
        alert = alerts_pb2.Alert.FromString(decompress(data, (headers or {}).get(COMPRESSION_HEADER, "")))
    except ProtobufDecodeError as e:
        raise DecodeError(f"not a valid Alert ({len(data)} bytes): {e}") from e
    if not alert.id:
        raise DecodeError(f"an Alert without an id ({len(data)} bytes)")
    return [alert]

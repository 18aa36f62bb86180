"""The headers and compression of event messages (bare Event or EventBatch, optionally zstd/lz4):
what publishers write. The framing of a batch is `tapio_publisher.wire` (the one hand-encoded path).

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

"""Record framing of the spool files: magic, length, event count and CRC-32 around each message (pure)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

import attrs

HEADER = struct.Struct("<2sIII")  # magic, body length, events, crc32(events + body)
MAGIC = b"TS"
_LENGTHS = struct.Struct("<HHI")  # subject, msg id, headers blob
_EVENTS = struct.Struct("<I")
MAX_BODY = 1 << 30


@attrs.frozen
class SpoolRecord:
    """One message waiting to be (re)published: exactly what goes on the wire, plus its event count."""

    subject: str
    msg_id: str
    headers: Mapping[str, str]
    payload: bytes = attrs.field(repr=lambda p: f"<{len(p)} bytes>")
    events: int


def _headers_blob(headers: Mapping[str, str]) -> bytes:
    return "".join(f"{k}:{v}\n" for k, v in headers.items()).encode()


def encode_record(rec: SpoolRecord) -> bytes:
    """The framed bytes of a record (header + body)."""
    subject, msg_id, hdrs = rec.subject.encode(), rec.msg_id.encode(), _headers_blob(rec.headers)
    body = b"".join((_LENGTHS.pack(len(subject), len(msg_id), len(hdrs)), subject, msg_id, hdrs, rec.payload))
    crc = zlib.crc32(body, zlib.crc32(_EVENTS.pack(rec.events)))
    return HEADER.pack(MAGIC, len(body), rec.events, crc) + body


def decode_record(frame: bytes | memoryview) -> SpoolRecord:
    """The record of one complete, checked frame (as delimited by `scan`)."""
    _, _, events, _ = HEADER.unpack_from(frame, 0)
    pos = HEADER.size
    ls, li, lh = _LENGTHS.unpack_from(frame, pos)
    pos += _LENGTHS.size
    subject = bytes(frame[pos : pos + ls]).decode()
    pos += ls
    msg_id = bytes(frame[pos : pos + li]).decode()
    pos += li
    blob = bytes(frame[pos : pos + lh]).decode()
    pos += lh
    headers = dict(line.split(":", 1) for line in blob.split("\n") if line)
    return SpoolRecord(subject, msg_id, headers, bytes(frame[pos:]), events)


def scan(data: bytes) -> tuple[list[tuple[int, int]], int, int]:
    """Checks the records of a segment file from its start.

    Returns (the (end offset, events) of every good record, the length of the good prefix, the
    events lost after it). A frame cut short or failing its CRC ends the good prefix: what follows
    cannot be trusted (a crash tears the last record). A torn header counts as one event.
    """
    ends: list[tuple[int, int]] = []
    pos, n = 0, len(data)
    while pos < n:
        if n - pos < HEADER.size:
            return ends, pos, 1
        magic, length, events, crc = HEADER.unpack_from(data, pos)
        end = pos + HEADER.size + length
        if magic != MAGIC or length > MAX_BODY or length < _LENGTHS.size:
            return ends, pos, 1
        if end > n or zlib.crc32(data[pos + HEADER.size : end], zlib.crc32(_EVENTS.pack(events))) != crc:
            return ends, pos, max(1, events)
        ends.append((end, events))
        pos = end
    return ends, pos, 0

"""Turns serialized events into wire messages: per-subject batches or single events, ids, compression."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from tapio.events.v1 import events_pb2
from tapio_publisher import codec, wire
from tapio_publisher.batching import Batcher, SealedBatch
from tapio_publisher.codec import Compression, Compressor
from tapio_publisher.errors import EncodeError, TooLargeError
from tapio_publisher.message import Outgoing
from tapio_publisher.settings import PublisherSettings
from tapio_publisher.subjects import DEFAULT_PREFIX, event_subject

BATCH_HEADER_PREFIX = "Nats-Batch-"  # atomic batch headers (tapio_publisher.atomic)
HEADER_RESERVE = 256
"""Bytes kept for headers (Nats-Msg-Id, Tapio-Encoding, Tapio-Compression) below max_msg_size."""


class Encoder:
    """Pure apart from the clock the caller passes: events in, `Outgoing` messages out.

    Batch mode (`batch_max_events` > 1): `Tapio-Encoding: batch`, `Nats-Msg-Id` = a new batch id,
    payload compressed when at least `compress_min_bytes`. Event mode: one message per event,
    `Tapio-Encoding: event`, `Nats-Msg-Id` = the event id.
    """

    def __init__(self, settings: PublisherSettings, new_id: Callable[[], str]) -> None:
        self.settings = settings
        self._new_id = new_id
        self._compressor = Compressor(settings.compression, settings.compression_level)
        self.batcher = self._make_batcher(settings.max_msg_size)

    def _make_batcher(self, max_msg_size: int) -> Batcher:
        self.msg_limit = max_msg_size - HEADER_RESERVE
        return Batcher(
            max_events=self.settings.batch_max_events,
            max_bytes=min(self.settings.batch_max_bytes, max_msg_size) - HEADER_RESERVE,
            linger=self.settings.batch_linger,
            new_id=self._new_id,
        )

    def limit_to(self, max_payload: int) -> bool:
        """Lower the message limit to the server's max_payload if that is smaller (True if it was)."""
        if max_payload >= self.settings.max_msg_size or self.batcher.open_bytes:
            return False
        self.batcher = self._make_batcher(max_payload)
        return True

    @property
    def event_limit(self) -> int:
        """The largest serialized event accepted."""
        return self.batcher.max_event_bytes if self.settings.batching else self.msg_limit

    def take(self, subject: str, datas: Sequence[bytes], now: float) -> tuple[list[Outgoing], list[int]]:
        """The messages ready to send after adding `datas`, and the sizes of events refused as too large."""
        if self.settings.batching:
            sealed, oversized = self.batcher.add_many(subject, datas, now)
            sealed += self.batcher.due(now)  # lingered long enough: out now, not when the linger task runs
            return [self.encode_batch(b) for b in sealed], [o.size for o in oversized]
        out: list[Outgoing] = []
        too_large: list[int] = []
        for data in datas:
            if not wire.has_leading_id(data):
                data = wire.id_field(self._new_id()) + data
            if len(data) > self.msg_limit:
                too_large.append(len(data))
                continue
            msg_id = wire.leading_id(data)
            headers = {codec.MSG_ID_HEADER: msg_id, codec.ENCODING_HEADER: codec.ENCODING_EVENT}
            out.append(Outgoing(subject, data, headers, msg_id, 1))
        return out, too_large

    def message(
        self, subject: str, payload: bytes, msg_id: str, headers: Mapping[str, str] | None
    ) -> Outgoing:
        """Any payload as one message with `Nats-Msg-Id: msg_id` (a Receipt will wait for its ack)."""
        if not msg_id:
            raise EncodeError("msg_id", "a message needs an id (Nats-Msg-Id) for dedup")
        # A stored message's headers copied on (a dead letter) may hold Nats-Batch-* of the atomic
        # batch it came in: sent again they would make this message part of a batch. Never passed on.
        hdrs = {k: v for k, v in (headers or {}).items() if not k.startswith(BATCH_HEADER_PREFIX)}
        hdrs[codec.MSG_ID_HEADER] = msg_id
        size = len(payload) + sum(len(k) + len(v) + 4 for k, v in hdrs.items())
        if size > self.msg_limit + HEADER_RESERVE or len(payload) > self.msg_limit:
            raise TooLargeError(size, self.msg_limit + HEADER_RESERVE, what="message")
        return Outgoing(subject, payload, hdrs, msg_id, 1, want_ack=True)

    def encode_batch(self, batch: SealedBatch) -> Outgoing:
        batch_id = self._new_id()
        parts = batch.parts
        parts.append(wire.batch_trailer(batch_id))
        payload = b"".join(parts)
        headers = {codec.MSG_ID_HEADER: batch_id, codec.ENCODING_HEADER: codec.ENCODING_BATCH}
        kind = self._compressor.kind
        if kind is not Compression.NONE and len(payload) >= self.settings.compress_min_bytes:
            payload = self._compressor.compress(payload)
            headers[codec.COMPRESSION_HEADER] = kind.value
        return Outgoing(batch.subject, payload, headers, batch_id, batch.count)

    def due(self, now: float) -> list[Outgoing]:
        return [self.encode_batch(b) for b in self.batcher.due(now)]

    def seal_all(self) -> list[Outgoing]:
        return [self.encode_batch(b) for b in self.batcher.seal_all()]


def group_by_subject(
    events: Iterable[events_pb2.Event], new_id: Callable[[], str], prefix: str = DEFAULT_PREFIX
) -> tuple[dict[str, list[bytes]], list[EncodeError]]:
    """Serialized events by subject under `prefix` (ids assigned in place where missing), and the
    errors of the events that have no subject."""
    groups: dict[str, list[bytes]] = {}
    unroutable: list[EncodeError] = []
    for ev in events:
        if not ev.id:
            ev.id = new_id()
        try:
            subject = event_subject(ev, prefix)
        except EncodeError as e:
            unroutable.append(e)
            continue
        group = groups.get(subject)
        if group is None:
            groups[subject] = [ev.SerializeToString()]
        else:
            group.append(ev.SerializeToString())
    return groups, unroutable


def field_of(message: str) -> str:
    """The field path json_format names in its error ("Failed to parse context field: Failed to
    parse pid field: ..." -> "context.pid"), else 'event'."""
    marker = "Failed to parse "
    path = [part.split(" ", 1)[0] for part in message.split(marker)[1:] if " field" in part]
    return ".".join(path) or "event"

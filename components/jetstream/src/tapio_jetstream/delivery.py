"""What a consumer's handler is given (pure): one decoded message with where it came from.

Fed by the consumer runtime (`tapio_jetstream.consumer`), which parses the JetStream reply subject
(`$JS.ACK.<stream>.<durable>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>`, or the
domain form with two more leading tokens) and decodes the payload with the stream's `Kind`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

import attrs

from tapio.alerts.v1 import alerts_pb2
from tapio.correlations.v1 import correlations_pb2
from tapio.events.v1 import events_pb2
from tapio_jetstream.decode import Headers, decode_alert, decode_correlation, decode_events
from tapio_publisher.codec import MSG_ID_HEADER

T = TypeVar("T")


@attrs.frozen
class Delivery(Generic[T]):
    """One message for a handler. `items` are what it carries after the dedup window took out
    what was already handled (events of a bare Event or an EventBatch; or one Correlation; or one
    Alert); `duplicates` counts what the window took out. `num_delivered` is 1 on the first delivery;
    the message goes to the dead-letter queue when a handler fails on delivery `max_deliver`."""

    items: Sequence[T]
    stream: str
    stream_seq: int
    subject: str
    headers: Mapping[str, str]
    num_delivered: int
    max_deliver: int
    data: bytes = b""
    duplicates: int = 0

    @property
    def last_delivery(self) -> bool:
        """True when a failure now sends the message to the dead-letter queue (no retry follows)."""
        return 0 < self.max_deliver <= self.num_delivered


@attrs.frozen
class Kind(Generic[T]):
    """How a stream's messages are decoded and what identifies each item for the dedup window."""

    name: str
    decode: Callable[[Headers, bytes], list[T]]
    keys: Callable[[Headers, Sequence[T]], list[str]]


def _event_keys(_headers: Headers, events: Sequence[events_pb2.Event]) -> list[str]:
    return [ev.id for ev in events]


def _correlation_keys(_headers: Headers, corrs: Sequence[correlations_pb2.Correlation]) -> list[str]:
    return [f"{c.id}:{c.revision}" for c in corrs]


def _alert_keys(headers: Headers, alerts: Sequence[alerts_pb2.Alert]) -> list[str]:
    msg_id = (headers or {}).get(MSG_ID_HEADER)  # id + revision + state (CONTRACT.md §5)
    return [msg_id or a.id for a in alerts]


EVENT_MESSAGES: Kind[events_pb2.Event] = Kind("events", decode_events, _event_keys)
"""TAPIO_EVENTS (and TAPIO_PROCESSED): a bare Event or an EventBatch, zstd/lz4; keyed by event id."""
CORRELATION_MESSAGES: Kind[correlations_pb2.Correlation] = Kind(
    "correlations", decode_correlation, _correlation_keys
)
"""TAPIO_CORRELATIONS: one Correlation a message; keyed by id and revision."""
ALERT_MESSAGES: Kind[alerts_pb2.Alert] = Kind("alerts", decode_alert, _alert_keys)
"""TAPIO_ALERTS: one Alert a message; keyed by its Nats-Msg-Id (id + revision + state)."""


@attrs.frozen
class AckMeta:
    """What the reply subject of a JetStream message says about it."""

    stream: str
    durable: str
    num_delivered: int
    stream_seq: int
    consumer_seq: int
    pending: int


def parse_reply(reply: str) -> AckMeta | None:
    """The metadata in a `$JS.ACK...` reply subject; None when it is not one (a status message)."""
    tokens = reply.split(".")
    n = len(tokens)
    if n < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        return None
    base = 2 if n == 9 else 4  # v1, or v2 with domain and account hash (and maybe a random token)
    try:
        return AckMeta(
            stream=tokens[base],
            durable=tokens[base + 1],
            num_delivered=int(tokens[base + 2]),
            stream_seq=int(tokens[base + 3]),
            consumer_seq=int(tokens[base + 4]),
            pending=int(tokens[base + 6]),
        )
    except (ValueError, IndexError):
        return None

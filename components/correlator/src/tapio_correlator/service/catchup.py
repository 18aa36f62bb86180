"""Restart catch-up without consumers: the events after the last snapshot, and the ids of the
correlation revisions already published, read back with direct gets (`tapio_jetstream.readback`).

No consumer is created, so the correlator's NATS user needs no consumer-create grant (with one it
could make a push consumer deliver into any subject, another stream's included).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from nats.aio.client import Client as NATS

from tapio_common.logging import get_logger
from tapio_common.subjects import Subjects
from tapio_correlator.engine.views import decode_views
from tapio_correlator.errors import CorrelatorError
from tapio_jetstream import DecodeError, Delivery
from tapio_jetstream.errors import JetStreamError
from tapio_jetstream.readback import last_seq, read_range
from tapio_publisher.codec import MSG_ID_HEADER

log = get_logger(__name__)


class CatchUpError(CorrelatorError):
    """A stream range could not be read back."""


async def replay_events(
    nc: NATS, first: int, last: int, subjects: Subjects, takes: Callable[[str], bool]
) -> AsyncIterator[Delivery[Any]]:
    """The events messages `first..last` of the events stream (TAPIO_EVENTS) that the durable
    consumer takes (`takes`: its filter subjects) as deliveries (undecodable ones were
    dead-lettered before the restart: skipped)."""
    stream = subjects.events_stream
    try:
        async for msg in read_range(nc, stream, first, last):
            if not takes(msg.subject):
                continue
            try:
                events = decode_views(msg.headers, msg.data)
            except DecodeError:
                continue
            yield Delivery(events, stream, msg.seq, msg.subject, msg.headers, 1, -1, msg.data)
    except JetStreamError as e:
        raise CatchUpError(f"cannot replay {stream} {first}..{last}: {e}") from e


async def stored_revisions(nc: NATS, after: int, subjects: Subjects) -> tuple[set[str], int]:
    """Message ids of the correlation revisions stored after sequence `after`, and the last sequence."""
    stream = subjects.correlations_stream
    ids: set[str] = set()
    try:
        last = await last_seq(nc, stream)
        async for msg in read_range(nc, stream, after + 1, last):
            msg_id = msg.headers.get(MSG_ID_HEADER)
            if msg_id:
                ids.add(msg_id)
    except JetStreamError as e:
        raise CatchUpError(f"cannot read back {stream} after {after}: {e}") from e
    return ids, max(after, last)

"""Reads a range of a stream through a short-lived ordered consumer (restart catch-up)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import api
from nats.js.client import JetStreamContext

from tapio_common.logging import get_logger
from tapio_correlator.errors import CorrelatorError

log = get_logger(__name__)


class CatchUpError(CorrelatorError):
    """A stream range could not be read back."""


async def last_seq(js: JetStreamContext, stream: str) -> int:
    """The stream's last sequence (0 when empty)."""
    try:
        info = await js.stream_info(stream)
    except NatsError as e:
        raise CatchUpError(f"cannot read stream {stream}: {e}") from e
    return int(info.state.last_seq)


async def read_range(
    js: JetStreamContext,
    stream: str,
    subject: str,
    first: int,
    last: int,
    *,
    headers_only: bool = False,
    batch: int = 256,
) -> AsyncIterator[Msg]:
    """Yields the stream's messages with `first <= seq <= last` (those still stored), in order."""
    if first > last:
        return
    config = api.ConsumerConfig(
        deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=first,
        ack_policy=api.AckPolicy.NONE,
        headers_only=headers_only,
        inactive_threshold=60.0,
        filter_subject=subject,
    )
    try:
        sub = await js.pull_subscribe(subject, stream=stream, config=config)
    except NatsError as e:
        raise CatchUpError(f"cannot read back {stream} from {first}: {e}") from e
    try:
        while True:
            try:
                msgs = await sub.fetch(batch, timeout=2.0)
            except TimeoutError:  # nats-py raises its own or asyncio's, both TimeoutError
                return  # nothing more stored in the range (e.g. aged out)
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq > last:
                    return
                yield msg
                if seq == last:
                    return
    finally:
        try:
            await sub.unsubscribe()
        except NatsError as e:  # the server drops the ephemeral consumer after inactive_threshold
            log.debug("catch-up consumer not removed", stream=stream, error=str(e))

"""Reading a range of a stream back without a consumer: batched direct gets (`$JS.API.DIRECT.GET`).

For restart catch-up (the correlator replays the events after its last snapshot and reads the
correlations it already published). A direct get creates nothing on the server, so the user needs
no consumer-create grant (with it, a user could make a push consumer deliver into any subject). The
stream must allow direct gets (`allow_direct`, set by the stream layout). A replica answering may
lag its leader by a few messages: a range that ends short of `last` is asked again, then reported.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping

import anyio
import attrs
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from tapio_common.logging import get_logger
from tapio_jetstream.errors import JetStreamError

log = get_logger(__name__)

STATUS = "Status"
META_HEADERS = frozenset(
    {
        "Nats-Stream",
        "Nats-Subject",
        "Nats-Sequence",
        "Nats-Time-Stamp",
        "Nats-Num-Pending",
        "Nats-Last-Sequence",
    }
)


class ReadBackError(JetStreamError):
    """A stream range could not be read back (no direct gets on the stream, not permitted, no reply)."""


@attrs.frozen
class StoredMessage:
    stream: str
    seq: int
    subject: str
    headers: Mapping[str, str]
    data: bytes


async def read_range(
    nc: NATS,
    stream: str,
    first: int,
    last: int,
    *,
    batch: int = 256,
    reply_wait: float = 5.0,
    retries: int = 3,
) -> AsyncIterator[StoredMessage]:
    """Yields the stored messages with `first <= seq <= last`, in order (gaps: deleted or aged out)."""
    seq = first
    short = 0
    while seq <= last:
        got = 0
        async for msg in _batch(nc, stream, seq, min(batch, last - seq + 1), reply_wait):
            if msg.seq > last:
                return
            got += 1
            seq = msg.seq + 1
            yield msg
        if got == 0:
            short += 1
            if short > retries:
                log.warning("stream range ends early (aged out?)", stream=stream, at=seq, last=last)
                return
            await anyio.sleep(0.1 * short)
        else:
            short = 0


async def _batch(
    nc: NATS, stream: str, seq: int, count: int, reply_wait: float
) -> AsyncIterator[StoredMessage]:
    send, receive = anyio.create_memory_object_stream[Msg](max_buffer_size=count + 1)

    async def on_msg(msg: Msg) -> None:
        await send.send(msg)

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=on_msg)
    try:
        body = json.dumps({"seq": seq, "batch": count}).encode()
        await nc.publish(f"$JS.API.DIRECT.GET.{stream}", body, reply=inbox)
        while True:
            try:
                with anyio.fail_after(reply_wait):
                    msg = await receive.receive()
            except TimeoutError as e:
                raise ReadBackError(
                    f"no reply to a direct get on {stream} from {seq} within {reply_wait:g} s "
                    "(allow_direct off, or not permitted: $JS.API.DIRECT.GET." + stream + ")"
                ) from e
            headers = msg.headers or {}
            status = headers.get(STATUS)
            if status is not None:
                if status in ("204", "404"):  # end of batch / nothing at or after seq
                    return
                raise ReadBackError(
                    f"direct get on {stream} from {seq} refused: {status} {headers.get('Description', '')}"
                )
            yield StoredMessage(
                stream=stream,
                seq=int(headers["Nats-Sequence"]),
                subject=headers.get("Nats-Subject", ""),
                headers={k: v for k, v in headers.items() if k not in META_HEADERS},
                data=msg.data,
            )
    finally:
        await sub.unsubscribe()
        send.close()
        receive.close()


async def last_seq(nc: NATS, stream: str) -> int:
    """The stream's last sequence (0 when empty), from stream info."""
    try:
        info = await nc.jetstream().stream_info(stream)
    except (NatsError, TimeoutError) as e:
        raise ReadBackError(f"cannot read stream {stream}: {e or type(e).__name__}") from e
    return int(info.state.last_seq)

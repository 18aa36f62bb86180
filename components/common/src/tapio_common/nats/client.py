"""The NATS client every Tapio connection uses (`tapio_common.nats.connect.connect` makes it).

nats-py's `Client` with two hot paths made cheaper. (1) The header block of an ordinary message. Every
JetStream delivery carries one (`Nats-Msg-Id`, `Tapio-Encoding`, `Tapio-Compression`, ...), and
nats-py 2.16 checks each header name character by character for whitespace in a generator
(`Client._parse_header_lines`): ~6 us a message, paid by the correlator, pipeline and exporter for
every message they consume. Here the names are looked up in a small table of names already seen
(a handful per installation), so only the values are decoded per message.

The result is exactly nats-py's (the same dict for every header block; status messages such as
`NATS/1.0 408 Request Timeout`, `404`, `409` and `100` idle heartbeats are still parsed by nats-py
itself): `components/common/tests/test_nats_client.py` pins that against the installed nats-py, so
an upgrade that changes its parsing fails there instead of changing what consumers see.

(2) `deliver_directly(sub, take)`: the messages of one subscription go to `take(msg)` where they are
parsed, instead of through the subscription's asyncio queue and its task into an async callback (a
queue put, a get, a task switch and a coroutine a message). `take` returns False to hand a message
to the subscription's own callback instead (e.g. its consumer is behind): from then on it must keep
returning False until that callback caught up, so order is kept. The consumer runtime's pull inbox
(`tapio_jetstream.pull`) uses it.

(3) `ack_many(msgs)`: the acks of many JetStream messages as ONE buffered command (the same
`PUB <reply> 0` lines nats-py's `Msg.ack` writes, joined), one append and one flusher wake-up,
instead of a `publish` a message (subject check, size checks, an f-string, a buffer append and a
flush check each: ~10% of the correlator's CPU a message under cProfile at 7-20 events a message).
While the connection is not plainly connected (reconnecting, draining, closed) or a message cannot
be acked that way it falls back to `Msg.ack`, so errors and buffering are nats-py's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

HEADER_LINE = b"NATS/1.0"  # what every header block starts with
_BODY = len(HEADER_LINE) + 2  # the first header line starts after "NATS/1.0\r\n"
_SPACE = 32  # "NATS/1.0 408 ...": an inline status (left to nats-py)
MAX_NAMES = 1024  # header names remembered (an installation uses a handful)

_UNSEEN = "\0unseen"  # a marker, compared by identity (a name decoding to it is only never cached)
_NAMES: dict[bytes, str | None] = {}  # raw name -> its key, None for a name nats-py skips


def header_key(name: bytes) -> str | None:
    """The dict key nats-py gives a raw header name (stripped ASCII), or None when it skips the
    line (a non-ASCII name, or whitespace inside it)."""
    try:
        key = name.strip().decode("ascii")
    except UnicodeDecodeError:
        return None
    if key and key.split() != [key]:
        return None  # whitespace inside the name (str.split splits where str.isspace holds)
    return key


def parse_header_lines(raw: bytes) -> dict[str, str]:
    """`Name: Value` lines separated by CRLF -> {name: value} (the last of a repeated name wins),
    the same as nats-py's `Client._parse_header_lines`."""
    out: dict[str, str] = {}
    names = _NAMES
    for line in raw.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if not sep:
            continue  # an empty line (the block's end) or no colon
        key = names.get(name, _UNSEEN)
        if key is _UNSEEN:
            key = header_key(name)
            if len(names) < MAX_NAMES:
                names[name] = key
        if key is not None:
            out[key] = value.strip().decode("utf-8", "replace")
    return out


_ACK_TAIL = b" 0\r\n\r\n"  # "PUB <reply> 0\r\n\r\n": an empty payload, as Msg.ack publishes
_UNSAFE = re.compile(
    r"[ \t\r\n]"
)  # what nats-py refuses in a subject it publishes to (CRLF injects commands)

Take = Callable[[Msg], bool]  # True: taken; False: give it to the subscription's own callback


class TapioClient(Client):
    """nats-py's Client with the cheaper header parse and direct delivery (see the module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self._direct: dict[int, Take] = {}

    def deliver_directly(self, sub: Subscription, take: Take) -> None:
        """`sub`'s messages go to `take` as they are read (see the module doc); until `undirect`."""
        self._direct[sub._id] = take

    def undirect(self, sub: Subscription) -> None:
        self._direct.pop(sub._id, None)

    async def ack_many(self, msgs: Sequence[Msg]) -> None:
        """Acks every message (in order) with one buffered command; see the module doc."""
        if not msgs:
            return
        if not self.is_connected or self.is_draining_pubs or self._flush_queue is None:
            for m in msgs:
                await m.ack()
            return
        batch: list[Msg] = []
        for m in msgs:
            reply = m.reply
            if not reply or m._ackd or m._client is not self or _UNSAFE.search(reply):
                await self._write_acks(batch)
                batch = []
                await m.ack()  # raises as nats-py does (not a JetStream message, acked already ...)
                continue
            batch.append(m)
        await self._write_acks(batch)

    async def _write_acks(self, msgs: list[Msg]) -> None:
        if not msgs:
            return
        tail = _ACK_TAIL
        await self._send_command(b"".join([b"PUB " + m.reply.encode() + tail for m in msgs]))
        self.stats["out_msgs"] += len(msgs)
        for m in msgs:
            m._ackd = True
        if self._flush_queue is not None and self._flush_queue.empty():
            await self._flush_pending()

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
    ) -> None:
        take = self._direct.get(sid)
        if take is not None:
            sub = self._subs.get(sid)
            if sub is not None and not sub._max_msgs:
                msg = self._build_message(sid, subject, reply, data, await self._process_headers(headers))
                if take(msg):
                    self.stats["in_msgs"] += 1
                    self.stats["in_bytes"] += len(data)
                    sub._received += 1
                    return
        await super()._process_msg(sid, subject, reply, data, headers)  # type: ignore[arg-type]

    async def _process_headers(self, headers: bytes | None) -> dict[str, str] | None:
        if not headers or len(headers) <= _BODY or headers[len(HEADER_LINE)] == _SPACE:
            result: dict[str, str] | None = await super()._process_headers(headers)
            return result  # empty, a bare "NATS/1.0\r\n", or a status message: nats-py's own parse
        return parse_header_lines(headers[_BODY:]) or None  # nats-py: no header is None, not {}

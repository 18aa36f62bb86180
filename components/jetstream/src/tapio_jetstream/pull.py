"""Direct pull requests (`$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>`) on one inbox subscription.

Faster than nats-py's `fetch` (no per-fetch subscription, future and metadata parsing): `ahead`
requests of `batch` messages stay open at once, each expiring after `expires` seconds on a quiet
stream. Messages go into a bounded memory stream read by the consumer runtime; when it is full the
subscription callback waits, so no further request is sent: at most `ahead * batch` messages are
held beyond that buffer. The server serves a consumer's waiting requests in order, so data
messages are counted against the oldest open request; a request ends when it is filled or its
status (408 expired, 409 ...) arrives on its own reply subject. A request lost on a reconnect is
forgotten after its expiry plus a grace period. On a `TapioClient` (every connection made by
`tapio_common.nats.connect`) messages reach the memory stream straight from the protocol parser
(`deliver_directly`), through the subscription's queue and callback only while the consumer is behind.
"""

from __future__ import annotations

import json
import time
from collections import deque

import anyio
import attrs
from anyio.streams.memory import MemoryObjectSendStream
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from tapio_common.logging import get_logger
from tapio_common.nats.client import TapioClient

log = get_logger(__name__)

STATUS_HEADER = "Status"
DESCRIPTION_HEADER = "Description"
GRACE = 2.0  # seconds after its expiry that an unanswered request is taken as lost
PAUSE_FIRST = 0.1  # seconds without requests after one ended in error (503, 409 ...), doubling to `expires`


@attrs.define
class _Request:
    token: str
    remaining: int
    deadline: float


class Puller:
    """Keeps pull requests open and feeds what they bring into `send` (until `stop()`)."""

    def __init__(
        self,
        nc: NATS,
        stream: str,
        durable: str,
        send: MemoryObjectSendStream[Msg],
        *,
        batch: int,
        ahead: int,
        expires: float,
    ) -> None:
        self.nc = nc
        self.subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.consumer = f"{stream}/{durable}"
        self.send = send
        self.batch = batch
        self.ahead = ahead
        self.expires = expires
        self.inbox = nc.new_inbox()
        self.open: deque[_Request] = deque()
        self.stopping = False
        self.requests = 0
        self.gone = ""  # set when the server says the consumer is deleted
        self._behind = 0  # messages declined by _take that the subscription's callback has yet to pass on
        self.declined = 0  # messages that went through the subscription's callback (consumer behind)
        self._wakeup = anyio.Event()
        self._pause = 0.0  # seconds requests wait after one ended in error (0: none did lately)
        self._resume_at = 0.0
        self.failed = 0  # requests ended in error (the consumer gone, no leader ...)
        self._sub: Subscription | None = None
        self._body = json.dumps({"batch": batch, "expires": int(expires * 1e9)}).encode()

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(f"{self.inbox}.*", cb=self._on_msg)
        if isinstance(self.nc, TapioClient):  # straight from the parser while the consumer keeps up
            self.nc.deliver_directly(self._sub, self._take)

    async def close(self) -> None:
        if self._sub is not None:
            if isinstance(self.nc, TapioClient):
                self.nc.undirect(self._sub)
            await self._sub.unsubscribe()
            self._sub = None

    def stop(self) -> None:
        """No further request; those open end by themselves within `expires` seconds."""
        self.stopping = True
        self._wakeup.set()

    @property
    def idle(self) -> bool:
        """No request open: nothing more will arrive."""
        self._forget_lost()
        return not self.open

    async def run(self) -> None:
        """Sends requests while fewer than `ahead` are open; returns after stop()."""
        while not self.stopping:
            self._forget_lost()
            pause = self._resume_at - time.monotonic()
            if pause <= 0:
                while len(self.open) < self.ahead and not self.stopping:
                    await self._request()
            with anyio.move_on_after(self.expires if pause <= 0 else pause):
                await self._wakeup.wait()
            self._wakeup = anyio.Event()

    async def _request(self) -> None:
        self.requests += 1
        token = str(self.requests)
        self.open.append(_Request(token, self.batch, time.monotonic() + self.expires + GRACE))
        await self.nc.publish(self.subject, self._body, reply=f"{self.inbox}.{token}")

    def _forget_lost(self) -> None:
        now = time.monotonic()
        while self.open and self.open[0].deadline < now:
            self.open.popleft()

    def _end(self, token: str) -> None:
        for req in self.open:
            if req.token == token:
                self.open.remove(req)
                break
        self._wakeup.set()

    def _take(self, msg: Msg) -> bool:
        """Direct delivery (`TapioClient.deliver_directly`): a message as it is read. False while the
        consumer is behind (its buffer full) or messages declined earlier still wait in `_on_msg`, so
        they keep their order; those go through the subscription's callback instead."""
        if self._behind:
            self._behind += 1
            self.declined += 1
            return False
        if msg.reply:
            try:
                self.send.send_nowait(msg)
            except anyio.WouldBlock:
                self._behind += 1
                self.declined += 1
                return False
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return True  # the consumer stopped: redelivered after ack_wait, as an unacked message
            self._count_data()
        else:
            self._on_status(msg)
        return True

    async def _on_msg(self, msg: Msg) -> None:
        """The subscription's callback: every message of a plain nats-py client, or those `_take` declined."""
        try:
            if msg.reply:  # a stored message ($JS.ACK... reply subject)
                self._count_data()
                try:  # no checkpoint per message: a burst read off the socket reaches the consumer at once
                    self.send.send_nowait(msg)
                except (
                    anyio.WouldBlock
                ):  # the consumer is behind: wait for room (no further request goes out)
                    await self.send.send(msg)
            else:
                self._on_status(msg)
        finally:
            if self._behind:
                self._behind -= 1

    def _count_data(self) -> None:
        """Data messages fill the oldest open request (the server serves them in order)."""
        self._pause = 0.0
        if self.open:
            head = self.open[0]
            head.remaining -= 1
            if head.remaining <= 0:
                self.open.popleft()
                self._wakeup.set()

    def _on_status(self, msg: Msg) -> None:
        headers = msg.headers or {}
        status = headers.get(STATUS_HEADER, "")
        if status == "100":  # idle heartbeat
            return
        self._end(msg.subject.rsplit(".", 1)[-1])
        if status in ("404", "408"):  # no messages / request expired: the normal end on a quiet stream
            return
        description = headers.get(DESCRIPTION_HEADER, "")
        if "deleted" in description.lower():
            self.gone = description
        # Answered at once while the consumer is gone or has no leader (503 no responders, 409):
        # asking again at once spun (thousands of requests and log lines a second). Pause, doubling.
        first = not self._pause
        self.failed += 1
        self._pause = min(self.expires, max(PAUSE_FIRST, 2 * self._pause))
        self._resume_at = time.monotonic() + self._pause
        (log.warning if first else log.debug)(
            "pull request ended" + ("" if first else " again"),
            consumer=self.consumer,
            status=status,
            description=description.strip(),
            failed=self.failed,
        )

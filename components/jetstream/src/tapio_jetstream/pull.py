"""Direct pull requests (`$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>`) on one inbox subscription.

Faster than nats-py's `fetch` (no per-fetch subscription, future and metadata parsing): `ahead`
requests of `batch` messages stay open at once, each expiring after `expires` seconds on a quiet
stream. Messages go into a bounded memory stream read by the consumer runtime; when it is full the
subscription callback waits, so no further request is sent: at most `ahead * batch` messages are
held beyond that buffer. The server serves a consumer's waiting requests in order, so data
messages are counted against the oldest open request; a request ends when it is filled or its
status (408 expired, 409 ...) arrives on its own reply subject. A request lost on a reconnect is
forgotten after its expiry plus a grace period.
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

log = get_logger(__name__)

STATUS_HEADER = "Status"
DESCRIPTION_HEADER = "Description"
GRACE = 2.0  # seconds after its expiry that an unanswered request is taken as lost


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
        self._wakeup = anyio.Event()
        self._sub: Subscription | None = None
        self._body = json.dumps({"batch": batch, "expires": int(expires * 1e9)}).encode()

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(f"{self.inbox}.*", cb=self._on_msg)

    async def close(self) -> None:
        if self._sub is not None:
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
            while len(self.open) < self.ahead and not self.stopping:
                await self._request()
            with anyio.move_on_after(self.expires):
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

    async def _on_msg(self, msg: Msg) -> None:
        if msg.reply:  # a stored message ($JS.ACK... reply subject)
            if self.open:
                head = self.open[0]
                head.remaining -= 1
                if head.remaining <= 0:
                    self.open.popleft()
                    self._wakeup.set()
            try:  # no checkpoint per message: a burst read off the socket reaches the consumer at once
                self.send.send_nowait(msg)
            except anyio.WouldBlock:  # the consumer is behind: wait for room (no further request goes out)
                await self.send.send(msg)
            return
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
        log.warning("pull request ended", consumer=self.consumer, status=status, description=description)

"""Pipelined JetStream publishing on the core client: one reply inbox, a bounded in-flight window, acks parsed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import anyio
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from tapio_common.nats.client import TapioClient
from tapio_publisher.errors import PublisherError
from tapio_publisher.message import Ack, AckCallback, FailCallback, Failure, Outgoing

# JetStream API error codes worth a retry (the server is recovering, a leader is being elected...).
RETRYABLE_CODES = frozenset({408, 503})
NO_RESPONDERS = "503"


class Window:
    """At most `capacity` messages published and not yet acknowledged. Publishing never awaits an
    ack; acks arrive on one wildcard inbox subscription and are matched by token (on a TapioClient
    settled as the client reads them, `deliver_directly`: no queue, task or coroutine an ack)."""

    def __init__(
        self,
        nc: Client,
        capacity: int,
        on_ack: AckCallback,
        on_fail: FailCallback,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nc = nc
        self.capacity = capacity
        self._on_ack = on_ack
        self._on_fail = on_fail
        self._clock = clock
        self.inflight: dict[str, Outgoing] = {}
        self._room: anyio.Event | None = None
        self._seq = 0
        self._prefix = ""
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._prefix = self.nc.new_inbox() + "."
        self._sub = await self.nc.subscribe(self._prefix + "*", cb=self._on_msg, pending_bytes_limit=-1)
        if isinstance(self.nc, TapioClient):  # acks settled as the client reads them (no queue, no task)
            self.nc.deliver_directly(self._sub, self._take)

    async def stop(self) -> None:
        if self._sub is not None and isinstance(self.nc, TapioClient):
            self.nc.undirect(self._sub)
        if self._sub is not None and not self.nc.is_closed:
            await self._sub.unsubscribe()
        self._sub = None

    def __len__(self) -> int:
        return len(self.inflight)

    @property
    def full(self) -> bool:
        return len(self.inflight) >= self.capacity

    async def wait_room(self) -> None:
        """Returns once fewer than `capacity` messages are in flight."""
        while len(self.inflight) >= self.capacity:
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()

    def _released(self) -> None:
        if self._room is not None:
            self._room.set()
            self._room = None

    async def send(self, out: Outgoing) -> None:
        """Publishes `out` with a fresh reply token (raises PublisherError if the client refuses)."""
        self._seq += 1
        token = out.token = str(self._seq)
        out.sent_at = self._clock()
        self.inflight[token] = out
        try:
            await self.nc.publish(out.subject, out.payload, reply=self._prefix + token, headers=out.headers)
        except (NatsError, OSError) as e:
            self.inflight.pop(token, None)
            self._released()
            raise PublisherError(f"publish to {out.subject} failed: {type(e).__name__}: {e}") from e

    def expired(self, now: float, timeout: float) -> list[Outgoing]:
        """Removes and returns the messages waiting longer than `timeout` for their ack."""
        old: list[Outgoing] = []
        for out in self.inflight.values():  # insertion order is send order
            if now - out.sent_at < timeout:
                break
            old.append(out)
        for out in old:
            del self.inflight[out.token]
        if old:
            self._released()
        return old

    def take_all(self) -> list[Outgoing]:
        """Removes and returns every message in flight, oldest first (their acks will be ignored)."""
        out = list(self.inflight.values())
        self.inflight.clear()
        self._released()
        return out

    async def _on_msg(self, msg: Msg) -> None:
        self._take(msg)

    def _take(self, msg: Msg) -> bool:
        """Settles the message `msg` acknowledges (always taken: True)."""
        out = self.inflight.pop(msg.subject[len(self._prefix) :], None)
        if out is None:
            return True  # a late ack of a message already timed out or moved to the spool
        self._released()
        data = msg.data
        hdrs = msg.headers
        if hdrs and hdrs.get("Status") == NO_RESPONDERS:
            self._on_fail(out, Failure("no_responders", f"no stream answers for {out.subject}", True))
        elif b'"error"' in data:
            self._on_fail(out, _api_failure(data))
        elif out.want_ack:
            doc = json.loads(data)
            self._on_ack(out, Ack(doc.get("stream", ""), int(doc.get("seq", 0)), bool(doc.get("duplicate"))))
        else:
            self._on_ack(out, Ack(duplicate=b'"duplicate"' in data))
        return True


def _api_failure(data: bytes) -> Failure:
    try:
        err = json.loads(data).get("error", {})
        code, err_code, desc = (
            int(err.get("code", 0)),
            int(err.get("err_code", 0)),
            str(err.get("description", "")),
        )
    except (ValueError, AttributeError):
        return Failure("api_invalid", data[:200].decode(errors="replace"), True)
    return Failure(f"api_{code}", f"{desc} (code {code}, err_code {err_code})", code in RETRYABLE_CODES)

"""Receipts: awaiting the JetStream confirmation of one specific message (e.g. before acking its input)."""

from __future__ import annotations

import anyio

from tapio_publisher.errors import PublisherError
from tapio_publisher.message import Ack


class Receipt:
    """The confirmation of one message published with `Publisher.publish_message`."""

    def __init__(self, msg_id: str) -> None:
        self.msg_id = msg_id
        self._event = anyio.Event()
        self._ack: Ack | None = None
        self._error: PublisherError | None = None

    @property
    def done(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> Ack:
        """The ack (stream, sequence, duplicate) once the message is stored; raises the publisher's
        error if it was dropped. Bound it with `anyio.fail_after` (the message stays queued or
        spooled: waiting again is fine)."""
        await self._event.wait()
        if self._error is not None:
            raise self._error
        assert self._ack is not None
        return self._ack

    def _resolve(self, ack: Ack | None, error: PublisherError | None) -> None:
        if not self._event.is_set():
            self._ack, self._error = ack, error
            self._event.set()


class Receipts:
    """Receipts waiting, by message id (a re-published id resolves every receipt of it)."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[Receipt]] = {}

    def add(self, msg_id: str) -> Receipt:
        receipt = Receipt(msg_id)
        self._waiting.setdefault(msg_id, []).append(receipt)
        return receipt

    def wanted(self, msg_id: str) -> bool:
        return msg_id in self._waiting

    def resolve(self, msg_id: str, ack: Ack) -> None:
        for receipt in self._waiting.pop(msg_id, ()):
            receipt._resolve(ack, None)

    def fail(self, msg_id: str, error: PublisherError) -> None:
        for receipt in self._waiting.pop(msg_id, ()):
            receipt._resolve(None, error)

    def fail_all(self, error: PublisherError) -> None:
        for msg_id in list(self._waiting):
            self.fail(msg_id, error)

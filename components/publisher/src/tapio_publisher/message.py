"""What a message on its way to JetStream is (Outgoing) and what became of it (Ack, Failure): plain
data shared by the encoder (which makes them, pure), the window (which sends them over NATS), the
spooler and the receipts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs


@attrs.define(eq=False, slots=True)
class Outgoing:
    """One message on its way: what goes on the wire, how many events it carries, who waits for it."""

    subject: str
    payload: bytes
    headers: dict[str, str]
    msg_id: str
    events: int
    want_ack: bool = False  # parse the ack fully (a Receipt waits for stream and sequence)
    replay: Any = None  # the replay round this message belongs to, when re-published from the spool
    atomic: bool = False  # the commit of an atomic batch: never spooled (its batch goes one by one instead)
    token: str = ""
    sent_at: float = 0.0


@attrs.frozen
class Ack:
    stream: str = ""
    seq: int = 0
    duplicate: bool = False


@attrs.frozen
class Failure:
    """Why JetStream did not take a message; `retryable` failures go to the spool."""

    reason: str  # metric label: no_responders, timeout, disconnected, api_<code>, publish_error
    detail: str
    retryable: bool


AckCallback = Callable[[Outgoing, Ack], None]
FailCallback = Callable[[Outgoing, Failure], None]

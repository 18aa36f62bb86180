"""What the consumer runtime does with a message (pure): ack, nak with a delay, or dead-letter.

Fed by the runtime with the outcome of decoding and of the handler, and the message's delivery
count; CONTRACT.md §3: undecodable input goes to `tapio.dlq.{component}` at once, a handler failure
is retried (nak with backoff) and on the last delivery dead-lettered, then terminated (AckTerm).
"""

from __future__ import annotations

import enum

import attrs

from tapio_common.errors import TapioError
from tapio_jetstream.errors import DecodeError

PROGRAMMING_ERRORS: tuple[type[BaseException], ...] = (
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    NameError,
    AssertionError,
    ZeroDivisionError,
    RecursionError,
    NotImplementedError,
    UnboundLocalError,
)
"""Exceptions that mean a bug in the handler, not bad input: logged with their traceback, counted
under the handler's stage, and retried like any failure (a fixed deployment then handles them)."""


class Action(enum.Enum):
    ACK = "ack"
    NAK = "nak"
    DEAD_LETTER = "dead_letter"  # publish to tapio.dlq.{component}, await it, then AckTerm


@attrs.frozen
class Decision:
    action: Action
    delay: float = 0.0  # seconds before the server redelivers (NAK)
    reason: str = ""  # the Tapio-Error header (DEAD_LETTER), or the log line's error (NAK)


@attrs.frozen
class Backoff:
    """Redelivery delays after a failed delivery: `first * factor**(n-1)`, at most `most` seconds."""

    first: float = 1.0
    factor: float = 2.0
    most: float = 60.0

    def delay(self, num_delivered: int) -> float:
        n = max(1, num_delivered)
        return float(min(self.most, self.first * self.factor ** (n - 1)))


ACK = Decision(Action.ACK)


def on_undecodable(error: str) -> Decision:
    """Undecodable input is not retried: no delivery will ever decode it."""
    return Decision(Action.DEAD_LETTER, reason=f"cannot decode: {error}")


def on_failure(num_delivered: int, max_deliver: int, error: str, backoff: Backoff) -> Decision:
    """A handler failed on delivery `num_delivered` (1 = first) of a consumer with `max_deliver`
    (<= 0: unlimited): retried after a backoff, dead-lettered on the last delivery."""
    if 0 < max_deliver <= num_delivered:
        return Decision(Action.DEAD_LETTER, reason=f"failed {num_delivered} deliveries, last: {error}")
    return Decision(Action.NAK, delay=backoff.delay(num_delivered), reason=error)


def on_handler_failure(
    exc: BaseException, num_delivered: int, max_deliver: int, backoff: Backoff
) -> Decision:
    """What follows a handler's failure: bad input the handler found itself (a DecodeError, e.g. a
    sub-message parsed lazily) goes to the dead-letter queue at once, like input the runtime could
    not decode; anything else is retried (`on_failure`)."""
    if isinstance(exc, DecodeError):
        return on_undecodable(describe(exc))
    return on_failure(num_delivered, max_deliver, describe(exc), backoff)


def is_programming_error(exc: BaseException) -> bool:
    """True for a bug (TypeError, KeyError ...); a TapioError is an expected failure (a sink down)."""
    return isinstance(exc, PROGRAMMING_ERRORS) and not isinstance(exc, TapioError)


def stage_of(exc: BaseException, default: str = "handle") -> str:
    """The stage label of a handler failure: the exception's `stage` attribute when it has one."""
    stage = getattr(exc, "stage", None)
    return stage if isinstance(stage, str) and stage else default


def describe(exc: BaseException) -> str:
    """One line for the Tapio-Error header and the log: type and message."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

"""Errors of the JetStream consuming side: one base class, subclasses where a caller acts differently."""

from __future__ import annotations

from tapio_common.errors import TapioError


class JetStreamError(TapioError):
    """Base of every error tapio_jetstream raises on purpose."""


class DecodeError(JetStreamError):
    """A message does not hold what its stream carries (Event/EventBatch, Correlation, Alert) in the
    announced encoding and compression: it goes to the dead-letter queue at once."""


class LayoutError(JetStreamError):
    """Streams or durable consumers cannot be created or updated as asked (e.g. an incompatible change)."""


class ConsumerError(JetStreamError):
    """A durable consumer cannot be bound (missing and not creatable here, permissions, no JetStream)."""


class ConsumerMissing(ConsumerError):
    """The durable consumer does not exist and this component may not create it: waited for (its
    operator may create it after the component starts)."""

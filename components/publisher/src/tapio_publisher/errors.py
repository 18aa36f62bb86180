"""Errors of the publisher library: one base class, subclasses where a caller acts differently."""

from __future__ import annotations

from tapio_common.errors import TapioError


class PublisherError(TapioError):
    """Base of every error tapio_publisher raises on purpose."""


class EncodeError(PublisherError):
    """An event could not be encoded or routed; `field` names the culprit."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"cannot encode event: field {field!r}: {detail}")
        self.field = field
        self.detail = detail


class TooLargeError(PublisherError):
    """An event or message is larger than the stream accepts (`size` > `limit` bytes)."""

    def __init__(self, size: int, limit: int, what: str = "event") -> None:
        super().__init__(f"{what} of {size} bytes is larger than the limit of {limit} bytes (max_msg_size)")
        self.size = size
        self.limit = limit


class PublishRejectedError(PublisherError):
    """JetStream refused a message for good (not retryable); the message was dropped and counted."""


class PublisherClosedError(PublisherError):
    """The publisher is closed (or not started with `async with`)."""


class SpoolError(PublisherError):
    """The on-disk spool cannot be opened, written or read (permissions, disk full, ...)."""

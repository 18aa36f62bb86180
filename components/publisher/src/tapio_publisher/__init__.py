"""Tapio's publisher library: subjects, wire encoding, batching, pipelined JetStream publishing, spool.

The consuming half (decoding, dead letters, the stream layout, the consumer runtime) is `tapio_jetstream`.
"""

from tapio_publisher.codec import Compression
from tapio_publisher.errors import (
    EncodeError,
    PublisherClosedError,
    PublisherError,
    PublishRejectedError,
    SpoolError,
    TooLargeError,
)
from tapio_publisher.message import Ack
from tapio_publisher.publisher import Publisher
from tapio_publisher.receipts import Receipt
from tapio_publisher.settings import PublisherSettings
from tapio_publisher.spool import FsyncPolicy

__all__ = [
    "Ack",
    "Compression",
    "EncodeError",
    "FsyncPolicy",
    "PublishRejectedError",
    "Publisher",
    "PublisherClosedError",
    "PublisherError",
    "PublisherSettings",
    "Receipt",
    "SpoolError",
    "TooLargeError",
]

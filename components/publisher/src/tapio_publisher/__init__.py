"""Tapio's publisher library: subjects, wire encoding, batching, pipelined JetStream publishing, spool, topology."""

from tapio_publisher.codec import Compression, decode_batch, decode_message
from tapio_publisher.errors import (
    DecodeError,
    EncodeError,
    PublisherClosedError,
    PublisherError,
    PublishRejectedError,
    SpoolError,
    TooLargeError,
    TopologyError,
)
from tapio_publisher.publisher import Publisher
from tapio_publisher.receipts import Receipt
from tapio_publisher.settings import PublisherSettings
from tapio_publisher.spool import FsyncPolicy
from tapio_publisher.window import Ack

__all__ = [
    "Ack",
    "Compression",
    "DecodeError",
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
    "TopologyError",
    "decode_batch",
    "decode_message",
]

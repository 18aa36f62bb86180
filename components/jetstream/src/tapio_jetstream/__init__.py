"""Tapio's JetStream consuming side: decoding every wire form, dead letters, the stream layout and its
provisioning, and the one consumer runtime every JetStream consumer runs on.

    from tapio_jetstream import EVENT_MESSAGES, Consumer, Delivery, production_layout
"""

from tapio_jetstream.consumer import Consumer, Handler
from tapio_jetstream.decode import decode_alert, decode_batch, decode_correlation, decode_events
from tapio_jetstream.delivery import ALERT_MESSAGES, CORRELATION_MESSAGES, EVENT_MESSAGES, Delivery, Kind
from tapio_jetstream.errors import ConsumerError, DecodeError, JetStreamError, LayoutError
from tapio_jetstream.layout import ConsumerSpec, Layout, StreamSpec, production_layout
from tapio_jetstream.settings import ConsumerSettings

__all__ = [
    "ALERT_MESSAGES",
    "CORRELATION_MESSAGES",
    "EVENT_MESSAGES",
    "Consumer",
    "ConsumerError",
    "ConsumerSettings",
    "ConsumerSpec",
    "DecodeError",
    "Delivery",
    "Handler",
    "JetStreamError",
    "Kind",
    "Layout",
    "LayoutError",
    "StreamSpec",
    "decode_alert",
    "decode_batch",
    "decode_correlation",
    "decode_events",
    "production_layout",
]

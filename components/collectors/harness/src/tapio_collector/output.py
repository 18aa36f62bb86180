"""What a Source emits into: the publisher (batching, dedup ids, spool, backpressure), the
component's metrics, readiness, node identity and the state directory."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tapio.events.v1 import events_pb2
from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics
from tapio_publisher import EncodeError, Publisher, TooLargeError

log = get_logger(__name__)


class Output:
    """Given to `Source.run`. `emit`/`emit_many` return once the publisher has taken the events
    (sent, or spooled when NATS is down): they wait when JetStream lags (backpressure). Events
    need their deterministic `id` set by the source; an event without one gets a random id.

    Metrics: `received` counts events emitted, `published` those JetStream confirmed; an event
    the publisher refuses (too large, no subject) is dropped and counted with its reason."""

    publisher: Publisher
    metrics_port: int = 0  # where /metrics, /healthz and /readyz listen (set once serving)

    def __init__(self, metrics: ComponentMetrics, node_name: str, data_dir: Path) -> None:
        self.metrics = metrics
        self.node_name = node_name
        self.data_dir = data_dir
        self.emitted = 0  # events handed to the publisher
        self.confirmed = 0  # events JetStream confirmed (spool replays included)
        self._ready = False
        self._ready_detail = "starting"
        self._ready_since = time.monotonic()

    async def emit(self, event: events_pb2.Event) -> None:
        await self.emit_many((event,))

    async def emit_many(self, events: Iterable[events_pb2.Event]) -> None:
        batch = events if isinstance(events, list | tuple) else list(events)
        if not batch:
            return
        self.emitted += len(batch)
        self.metrics.received.inc(len(batch))
        try:
            await self.publisher.publish_many(batch)
        except TooLargeError as e:  # the others of the call were taken
            self.metrics.drop("too_large")
            log.warning("event too large for a message, dropped", error=str(e))
        except EncodeError as e:
            self.metrics.drop("encode_error")
            log.warning("event without a subject, dropped", error=str(e))

    async def emit_encoded(self, groups: Mapping[str, Sequence[bytes]]) -> None:
        """Serialized Events by subject, each starting with its deterministic id (as
        SerializeToString writes it): the publisher batches them as they are
        (`Publisher.publish_encoded_many`), no message is built or serialized again. A too-large
        event is dropped and counted; the others, of every subject, are taken."""
        for subject, datas in groups.items():
            if not datas:
                continue
            self.emitted += len(datas)
            self.metrics.received.inc(len(datas))
            try:
                await self.publisher.publish_encoded_many(subject, datas)
            except TooLargeError as e:  # the others of the call were taken
                self.metrics.drop("too_large")
                log.warning("event too large for a message, dropped", error=str(e))

    def on_confirm(self, events: int, latency: float) -> None:
        """The publisher's confirmation hook: `events` stored by JetStream, `latency` s after sending."""
        self.confirmed += events
        self.metrics.published.inc(events)
        self.metrics.processing.observe(latency)

    def set_ready(self, ready: bool, detail: str = "") -> None:
        """What /readyz says about the source (e.g. False, "API server unreachable")."""
        if ready != self._ready:
            self._ready_since = time.monotonic()
        self._ready = ready
        self._ready_detail = detail or ("ready" if ready else "not ready")

    @property
    def ready(self) -> bool:
        return self._ready

    def readiness(self) -> tuple[bool, str]:
        return self._ready, self._ready_detail

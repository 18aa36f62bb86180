"""What the scenarios publish: the public cascade scenario (and time-shifted copies of it with
fresh ids, for a longer flow), published as a collector publishes (tapio_publisher), and the expected
results they are checked against."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg

from tapio.events.v1 import events_pb2
from tapio_common.config import NatsConfig
from tapio_common.model.convert import event_from_json, event_to_proto
from tapio_common.scenarios import load_scenarios
from tapio_jetstream import decode_events
from tapio_publisher import Publisher, PublisherSettings
from tapio_testing.receivers.hec import HecReceiver

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r'"time":"([^"]+)"')
COPY_SPACING = timedelta(hours=2)  # far beyond every correlation window: one incident per copy


def cascade_lines(copy: int = 0) -> list[str]:
    """cascade-00's events as JSON lines; copy k > 0 has fresh ids, uids and container ids and is
    shifted k * COPY_SPACING later, so it is the same incident happening again, later."""
    lines = list(load_scenarios(pattern="cascade-00")[0].lines)
    if copy == 0:
        return lines
    shift = COPY_SPACING * copy

    def new_uuid(m: re.Match[str]) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"e2e:{copy}:{m.group(0)}"))

    def new_hex(m: re.Match[str]) -> str:
        return hashlib.sha256(f"e2e:{copy}:{m.group(0)}".encode()).hexdigest()

    def new_time(m: re.Match[str]) -> str:
        t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) + shift
        return f'"time":"{t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}"'

    return [_TIME.sub(new_time, _HEX64.sub(new_hex, _UUID.sub(new_uuid, x))) for x in lines]


def to_events(lines: Iterable[str]) -> list[events_pb2.Event]:
    return [event_to_proto(event_from_json(x)) for x in lines]


def publisher(url: str, data: Path, name: str = "e2e-collector") -> Publisher:
    """A collector's publisher (batching, Nats-Msg-Id = event id, spool under `data`)."""
    settings = PublisherSettings.from_section({}, str(data / name), name=name)
    return Publisher(settings, nats=NatsConfig(urls=(url,)))


def alert_key(alert: dict[str, Any]) -> str:
    """The key an alert arrives under at a receiver: its Nats-Msg-Id in TAPIO_ALERTS (id:revision:state)."""
    return f"{alert['id']}:{alert['revision']}:{alert['state']}"


def hec_arrivals(hec: HecReceiver) -> Counter[str]:
    """How often each alert (id:revision:state) arrived at the HEC receiver."""
    return Counter(alert_key(a) for a in hec.alerts())


def msg_ids(msgs: Iterable[Msg]) -> Counter[str]:
    return Counter((m.headers or {}).get("Nats-Msg-Id", "") for m in msgs)


def processed_events(msgs: Iterable[Msg]) -> Counter[tuple[str, str]]:
    """How often each event was routed: (processed subject, event id) of TAPIO_PROCESSED's batches."""
    return Counter((m.subject, e.id) for m in msgs for e in decode_events(m.headers, m.data))


def routed(events: Iterable[events_pb2.Event]) -> set[str]:
    """Ids the up rules route somewhere (they drop debug events)."""
    return {e.id for e in events if e.severity != events_pb2.SEVERITY_DEBUG}

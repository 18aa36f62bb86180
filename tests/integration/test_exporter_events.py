"""The SIEM exporter's events input on a real JetStream: events the pipeline routed to its `siem`
destination (`tapio.processed.*.siem`) at or above `events_min_severity` become alerts that fire
once and resolve; lower ones and other destinations give nothing; a redelivered event fires nothing
twice; off by default (no consumer on TAPIO_PROCESSED at all)."""

from __future__ import annotations

import time
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from tapio.events.v1 import events_pb2
from tapio_exporters.domain.alerts import alert_id
from tapio_exporters.service.events import EVENTS_DURABLE
from tapio_jetstream.layout import PROCESSED
from tapio_publisher.codec import ENCODING_BATCH, ENCODING_HEADER
from tapio_testing.jetstream import JetStreamServer
from tapio_testing.receivers.hec import HecReceiver
from tapio_testing.wait import eventually
from tests.integration.exporter_helpers import NS, exporter_settings, pending, running_exporter

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def event(n: int, severity: int, t: int) -> events_pb2.Event:
    ev = events_pb2.Event(
        id=f"tex-ev-{n}",
        source=events_pb2.SOURCE_K8S,
        type="pod",
        action="oom_killed",
        severity=severity,  # type: ignore[arg-type]
        message=f"container db of pod db-{n} was OOM killed",
    )
    ev.time.FromNanoseconds(t)
    ev.context.namespace = "shop"
    ev.context.pod = f"db-{n}"
    ev.context.node = "node-1"
    return ev


async def publish(nc: Client, subject: str, events: list[events_pb2.Event], msg_id: str) -> None:
    batch = events_pb2.EventBatch(events=events, batch_id=msg_id)
    await nc.jetstream().publish(
        subject, batch.SerializeToString(), headers={ENCODING_HEADER: ENCODING_BATCH, "Nats-Msg-Id": msg_id}
    )


async def test_events_at_or_above_the_severity_fire_once_and_resolve(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    now = time.time_ns()
    with HecReceiver(token="t0k", ack=True) as hec:
        settings = exporter_settings(
            [{"type": "hec", "url": hec.url, "token": "t0k", "ack": True}],
            events_min_severity="warning",
            resolve_after_by_type={"event": 2},
            idle_advance=0.3,
            fetch_timeout=0.3,
        )
        async with running_exporter(jetstream.url, tmp_path, settings) as exporter:
            nc = await nats.connect(jetstream.url)
            await publish(nc, "tapio.processed.k8s.siem", [
                event(1, events_pb2.SEVERITY_INFO, now),
                event(2, events_pb2.SEVERITY_WARNING, now),
                event(3, events_pb2.SEVERITY_CRITICAL, now + NS),
                event(4, events_pb2.SEVERITY_DEBUG, now),
            ], "b1")  # fmt: skip
            # another destination of the pipeline: not the exporter's
            await publish(
                nc, "tapio.processed.k8s.archive", [event(5, events_pb2.SEVERITY_CRITICAL, now)], "b2"
            )
            # the same event again in another message (a pipeline redelivery): fires nothing twice
            await publish(nc, "tapio.processed.k8s.siem", [event(2, events_pb2.SEVERITY_WARNING, now)], "b3")
            await eventually(lambda: len(hec.alerts()) == 4, "2 events fired and resolved at HEC", within=30)
            await eventually(
                lambda: _drained(nc), "nothing pending on siem-exporter-events", within=10
            )  # fmt: skip
            assert exporter.events is not None
            assert exporter.events.below == 2  # info and debug: counted, acked
            await nc.close()
    got = sorted((a["id"], a["state"], a["severity"]) for a in hec.alerts())
    a2, a3 = alert_id("event:tex-ev-2"), alert_id("event:tex-ev-3")
    assert got == sorted([
        (a2, "firing", "warning"), (a2, "resolved", "warning"),
        (a3, "firing", "critical"), (a3, "resolved", "critical"),
    ])  # fmt: skip
    fired = next(a for a in hec.alerts() if a["id"] == a3 and a["state"] == "firing")
    assert fired["component"] == "db-3"
    assert fired["title"] == "Pod (oom_killed): db-3 (shop)"
    assert fired["event_ids"] == ["tex-ev-3"]
    assert fired["labels"]["type"] == "event"
    assert fired["labels"]["source"] == "k8s"
    assert fired["description"].startswith("container db of pod db-3 was OOM killed")


async def _drained(nc: Client) -> bool:
    return await pending(nc, PROCESSED, EVENTS_DURABLE) == (0, 0)


async def test_off_by_default(jetstream: JetStreamServer, tmp_path: Path) -> None:
    with HecReceiver(token="t0k") as hec:
        settings = exporter_settings([{"type": "hec", "url": hec.url, "token": "t0k"}])
        async with running_exporter(jetstream.url, tmp_path, settings) as exporter:
            assert exporter.events is None
            nc = await nats.connect(jetstream.url)
            with pytest.raises(NotFoundError):
                await nc.jetstream().consumer_info(PROCESSED, EVENTS_DURABLE)
            await nc.close()

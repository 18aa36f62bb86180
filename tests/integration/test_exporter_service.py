"""The SIEM exporter on a real JetStream with real receivers: the lifecycle reaches every sink
(fire, update, resolve), a restart publishes nothing twice, a stale revision is acked and counted,
a sink that is down holds its alerts without blocking the others, refused alerts land in the DLQ."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import nats
import pytest
from nats.aio.client import Client

from tapio_common.model import AlertState
from tapio_common.model.fast import alert_to_pb
from tapio_exporters.domain.alerts import alert_id, msg_id, subject
from tapio_jetstream.layout import ALERTS, CORRELATIONS, DLQ, SIEM_EXPORTER, production_layout
from tapio_jetstream.streams import stream_config
from tapio_testing.alerts import tricky
from tapio_testing.jetstream import JetStreamServer
from tapio_testing.receivers.bulk import BulkReceiver
from tapio_testing.receivers.hec import HecReceiver
from tapio_testing.wait import eventually
from tests.integration.exporter_helpers import (
    NS,
    correlation,
    exporter_settings,
    pending,
    publish_correlations,
    running_exporter,
)

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def sinks(hec: HecReceiver, es: BulkReceiver) -> list[dict[str, object]]:
    return [
        {"type": "hec", "url": hec.url, "token": "t0k", "ack": True},
        {"type": "elastic", "url": es.url, "index": "alerts"},
        {"type": "console"},
    ]


async def test_lifecycle_reaches_every_sink(jetstream: JetStreamServer, tmp_path: Path) -> None:
    now = time.time_ns()
    with HecReceiver(token="t0k", ack=True) as hec, BulkReceiver() as es:
        settings = exporter_settings(sinks(hec, es), resolve_after=2, idle_advance=0.3, fetch_timeout=0.3)
        async with running_exporter(jetstream.url, tmp_path, settings) as exporter:
            nc = await nats.connect(jetstream.url)
            await publish_correlations(nc, [correlation(1, 1, now), correlation(2, 1, now)])
            await publish_correlations(nc, [correlation(1, 2, now + NS)])
            await eventually(lambda: len(hec.alerts()) == 5, "fire, update and resolve at HEC", within=30)
            await eventually(lambda: len(es.docs) == 2 and all(d["tapio"]["alert"]["state"] == "resolved"
                             for _, d in es.docs.values()), "both resolved in Elasticsearch")  # fmt: skip
            assert await pending(nc, CORRELATIONS, SIEM_EXPORTER) == (0, 0)
            for sink in ("hec", "elastic", "console"):
                await eventually(_drained(nc, f"{SIEM_EXPORTER}-{sink}"), f"nothing pending for {sink}")
            await nc.close()
            assert exporter.alerter.published == 5
    states = sorted((a["correlation_id"], a["revision"], a["state"]) for a in hec.alerts())
    assert states == [
        ("corr-1", 1, "firing"), ("corr-1", 2, "resolved"), ("corr-1", 2, "updated"),
        ("corr-2", 1, "firing"), ("corr-2", 1, "resolved"),
    ]  # fmt: skip
    resolved = next(a for a in hec.alerts() if a["state"] == "resolved" and a["correlation_id"] == "corr-1")
    assert "ends_at" in resolved
    assert max(hec.arrivals().values()) == 1


async def test_restart_publishes_nothing_twice(jetstream: JetStreamServer, tmp_path: Path) -> None:
    now = time.time_ns()
    with HecReceiver(token="t0k", ack=True) as hec, BulkReceiver() as es:
        settings = exporter_settings(sinks(hec, es), idle_advance=60)
        nc = await nats.connect(jetstream.url)
        async with running_exporter(jetstream.url, tmp_path, settings):
            await publish_correlations(nc, [correlation(1, 1, now)])
            await eventually(lambda: len(hec.alerts()) == 1, "the first alert")
        # the same revision again (past JetStream's dedup window: another message id), and a new one
        await publish_correlations(nc, [correlation(1, 1, now)], msg_id_suffix=":again")
        await publish_correlations(nc, [correlation(1, 2, now + NS)])
        async with running_exporter(jetstream.url, tmp_path, settings) as exporter:
            await eventually(lambda: len(hec.alerts()) == 2, "the update")
            await eventually(_drained(nc, SIEM_EXPORTER, CORRELATIONS), "every correlation handled")
            await anyio.sleep(1.0)
            assert exporter.alerter.published == 1  # only the update: the redelivered revision is known
        await nc.close()
    aid = hec.alerts()[0]["id"]
    assert hec.arrivals() == {(aid, 1, "firing"): 1, (aid, 2, "updated"): 1}


async def test_a_stale_revision_is_acked_and_counted(jetstream: JetStreamServer, tmp_path: Path) -> None:
    # a sink receiving an older revision after a newer one (what a redelivery after a lost ack is)
    with BulkReceiver() as es:
        settings = exporter_settings([{"type": "elastic", "url": es.url, "index": "alerts"}], idle_advance=60)
        nc = await nats.connect(jetstream.url)
        async with running_exporter(jetstream.url, tmp_path, settings) as exporter:
            for a in (tricky(AlertState.UPDATED, revision=2), tricky(revision=1)):
                await nc.jetstream().publish(subject(a), alert_to_pb(a).SerializeToString(),
                                             headers={"Nats-Msg-Id": msg_id(a)})  # fmt: skip
            registry = exporter.sinks[0].metrics.registry
            await eventually(
                lambda: registry.get_sample_value(
                    "tapio_siem_exporter_events_dropped_total", {"reason": "stale_revision"}
                ) == 1, "the stale revision counted"
            )  # fmt: skip
            await eventually(_drained(nc, f"{SIEM_EXPORTER}-elastic"), "nothing pending for elastic")
        await nc.close()
    assert es.docs[("alerts", "a1b2c3")][1]["tapio"]["alert"]["revision"] == 2


async def test_a_dead_sink_holds_its_alerts_without_blocking_the_others(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    now = time.time_ns()
    hec = HecReceiver(token="t0k", ack=True)  # down at first
    with BulkReceiver() as es:
        settings = exporter_settings(sinks(hec, es), idle_advance=60, retry_max=0.5)
        nc = await nats.connect(jetstream.url)
        async with running_exporter(jetstream.url, tmp_path, settings):
            await publish_correlations(nc, [correlation(n, 1, now) for n in range(200)])
            await eventually(lambda: len(es.docs) == 200, "Elasticsearch has every alert while HEC is down")
            assert hec.count == 0
            with hec:
                await eventually(lambda: hec.count == 200, "HEC catches up once back")
                await eventually(_drained(nc, f"{SIEM_EXPORTER}-hec"), "nothing pending for HEC")
        await nc.close()
    assert max(hec.arrivals().values()) == 1


async def test_refused_alerts_go_to_the_dead_letter_queue(jetstream: JetStreamServer, tmp_path: Path) -> None:
    now = time.time_ns()
    with HecReceiver(token="t0k", ack=True) as hec, BulkReceiver() as es:
        settings = exporter_settings(sinks(hec, es), idle_advance=60)
        nc = await nats.connect(jetstream.url)
        async with running_exporter(jetstream.url, tmp_path, settings) as exporter:
            es.reject_ids = {alert_id("corr-3")}
            await publish_correlations(nc, [correlation(n, 1, now) for n in range(5)])
            await eventually(lambda: len(es.docs) == 4 and hec.count == 5, "the others delivered")
            await eventually(_drained(nc, f"{SIEM_EXPORTER}-elastic"), "the refused one settled")
            info = await nc.jetstream().stream_info(DLQ)
            msg = await nc.jetstream().get_msg(DLQ, info.state.last_seq)
            assert msg.headers is not None
            assert msg.headers["Tapio-Sink"] == "elastic"
            assert "failed to parse field" in msg.headers["Tapio-Error"]
            assert exporter.sinks[1].sink.name == "elastic"
        await nc.close()


async def test_a_refused_alert_the_dlq_cannot_take_holds_no_other_sink(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    # Elasticsearch refuses an alert while the DLQ stream cannot store anything (deleted here): only
    # its parking is retried (Elasticsearch behind meanwhile); HEC gets every later alert, and once
    # the DLQ is back the refused alert is parked and Elasticsearch catches up
    now = time.time_ns()
    with HecReceiver(token="t0k", ack=True) as hec, BulkReceiver() as es:
        settings = exporter_settings(sinks(hec, es)[:2], idle_advance=60, retry_max=0.5)
        nc = await nats.connect(jetstream.url)
        js = nc.jetstream()
        async with running_exporter(jetstream.url, tmp_path, settings):
            await js.delete_stream(DLQ)
            es.reject_ids = {alert_id("corr-3")}
            await publish_correlations(nc, [correlation(n, 1, now) for n in range(5)])
            await eventually(lambda: hec.count == 5 and len(es.docs) == 4, "the others delivered")
            await publish_correlations(nc, [correlation(n, 1, now) for n in range(5, 10)])
            await eventually(lambda: hec.count == 10, "HEC goes on", within=30)
            await js.add_stream(stream_config(next(s for s in production_layout().streams if s.name == DLQ)))
            await eventually(_drained(nc, f"{SIEM_EXPORTER}-elastic"), "the refused one parked", within=60)
            assert len(es.docs) == 9
            msg = await js.get_msg(DLQ, (await js.stream_info(DLQ)).state.last_seq)
            assert msg.headers is not None
            assert msg.headers["Tapio-Sink"] == "elastic"
        await nc.close()
    assert max(hec.arrivals().values()) == 1


def _drained(nc: Client, durable: str, stream: str = ALERTS) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await pending(nc, stream, durable) == (0, 0)

    return check

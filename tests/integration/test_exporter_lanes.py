"""The exporter's sink lanes on a real JetStream: live sinks get the alerts from memory (their durable
consumers on TAPIO_ALERTS deliver nothing: they only hold each sink's position), a restart sends
nothing again, a sink added later gets what the stream holds, and a sink that was down catches up
from its position while the other stays live."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import BinaryIO

import anyio
import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from tapio_common.model.fast import alert_to_pb
from tapio_common.subjects import Subjects
from tapio_exporters.domain.alerts import msg_id, subject
from tapio_exporters.service.delivery import SinkDelivery, sink_consumer
from tapio_exporters.service.lanes import Lane, Lanes
from tapio_exporters.service.metrics import ExporterMetrics
from tapio_exporters.sinks.console import ConsoleSink
from tapio_jetstream.layout import ALERTS, SIEM_EXPORTER, production_layout
from tapio_jetstream.streams import apply_layout, stream_config
from tapio_publisher import Publisher, PublisherSettings
from tapio_testing.alerts import tricky
from tapio_testing.jetstream import JetStreamServer
from tapio_testing.receivers.bulk import BulkReceiver
from tapio_testing.receivers.hec import HecReceiver
from tapio_testing.wait import eventually
from tests.integration.exporter_helpers import (
    correlation,
    exporter_settings,
    publish_correlations,
    running_exporter,
)

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


async def position(nc: Client, sink: str) -> tuple[int, int, int]:
    """(stream sequence of the sink's position, messages its durable consumer ever delivered, pending)."""
    info = await nc.jetstream().consumer_info(ALERTS, f"{SIEM_EXPORTER}-{sink}")
    assert info.ack_floor is not None
    assert info.delivered is not None
    return (
        int(info.ack_floor.stream_seq or 0),
        int(info.delivered.consumer_seq or 0),
        int(info.num_pending or 0),
    )


async def test_live_sinks_read_nothing_back_and_keep_their_position_over_a_restart(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    now = time.time_ns()
    with HecReceiver(token="t0k", ack=True) as hec, BulkReceiver() as es:
        hec_only: list[dict[str, object]] = [{"type": "hec", "url": hec.url, "token": "t0k", "ack": True}]
        nc = await nats.connect(jetstream.url)
        async with running_exporter(jetstream.url, tmp_path, exporter_settings(hec_only, idle_advance=60)):
            await publish_correlations(nc, [correlation(n, 1, now) for n in range(50)])
            await eventually(lambda: hec.count == 50, "every alert at HEC")
            await eventually(lambda: _at(nc, "hec", 50), "HEC's position at the last alert")
        assert await position(nc, "hec") == (50, 0, 0)  # nothing was ever pulled from it
        both: list[dict[str, object]] = [*hec_only, {"type": "elastic", "url": es.url, "index": "alerts"}]
        async with running_exporter(jetstream.url, tmp_path, exporter_settings(both, idle_advance=60)):
            await eventually(lambda: len(es.docs) == 50, "the new sink gets what the stream holds")
            await publish_correlations(nc, [correlation(n, 1, now) for n in range(50, 60)])
            await eventually(lambda: hec.count == 60 and len(es.docs) == 60, "the next ones at both")
            await eventually(lambda: _at(nc, "elastic", 60), "the new sink's position at the last alert")
        assert (await position(nc, "hec"))[1:] == (0, 0)
        await nc.close()
    assert hec.arrivals() == Counter({k: 1 for k in hec.arrivals()}), "nothing sent twice to HEC"
    assert len(hec.arrivals()) == 60


async def test_positions_are_stored_at_most_every_half_second_while_alerts_flow_and_at_stop(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    # a CONSUMER.RESET costs nats-server ~0.6 ms: one per sink per batch was most of its cost per
    # alert at small batches; the position of the last batch is stored at stop all the same
    now = time.time_ns()
    nc = await nats.connect(jetstream.url)
    resets: list[bytes] = []

    async def note(msg: Msg) -> None:
        resets.append(msg.data)

    watch = await nc.subscribe(f"$JS.API.CONSUMER.RESET.{ALERTS}.>", cb=note)
    with HecReceiver(token="t0k", ack=True) as hec:
        sinks: list[dict[str, object]] = [{"type": "hec", "url": hec.url, "token": "t0k", "ack": True}]
        async with running_exporter(jetstream.url, tmp_path, exporter_settings(sinks, idle_advance=60)):
            for i in range(0, 400, 10):  # ~4 s of flow in small batches (the linger is 0.05 s)
                await publish_correlations(nc, [correlation(n, 1, now + n) for n in range(i, i + 10)])
                await anyio.sleep(0.1)
            await eventually(lambda: hec.count == 400, "every alert at HEC")
            batches = hec.requests
        assert await position(nc, "hec") == (400, 0, 0), "the last position stored at stop"
    await watch.unsubscribe()
    await nc.close()
    assert batches >= 10, "the flow came in many batches"
    assert 1 <= len(resets) <= batches // 2, f"{len(resets)} position stores for {batches} batches in ~4 s"


async def test_a_sink_that_was_down_catches_up_from_its_position(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    now = time.time_ns()
    hec = HecReceiver(token="t0k", ack=True)
    with BulkReceiver() as es:
        sinks: list[dict[str, object]] = [{"type": "hec", "url": hec.url, "token": "t0k", "ack": True},
                 {"type": "elastic", "url": es.url, "index": "alerts"}]  # fmt: skip
        nc = await nats.connect(jetstream.url)
        async with running_exporter(
            jetstream.url, tmp_path, exporter_settings(sinks, idle_advance=60, retry_max=0.5)
        ):
            with hec:
                await publish_correlations(nc, [correlation(n, 1, now) for n in range(20)])
                await eventually(lambda: hec.count == 20, "HEC live")
            await publish_correlations(nc, [correlation(n, 1, now) for n in range(20, 320)])
            await eventually(lambda: len(es.docs) == 320, "Elasticsearch live while HEC is down")
            assert (await position(nc, "hec"))[0] == 20
            with hec:
                await eventually(lambda: hec.count == 320, "HEC caught up from its position")
                await publish_correlations(nc, [correlation(n, 1, now) for n in range(320, 330)])
                await eventually(lambda: hec.count == 330, "HEC live again")
                await eventually(lambda: _at(nc, "hec", 330), "HEC's position at the last alert")
        assert (await position(nc, "hec"))[1] == 0  # the catch-up used direct gets
        await nc.close()
    assert len(hec.arrivals()) == 330
    assert hec.arrivals() == Counter({k: 1 for k in hec.arrivals()}), "nothing sent twice to HEC"


async def _at(nc: Client, sink: str, seq: int) -> bool:
    return (await position(nc, sink))[0] == seq


async def test_sinks_read_their_alerts_back_when_asked(jetstream: JetStreamServer, tmp_path: Path) -> None:
    # the shape a nats-server older than 2.14 gets (no consumer reset): each sink's durable consumer
    # delivers every alert; a sink that is down still holds only its own
    now = time.time_ns()
    hec = HecReceiver(token="t0k", ack=True)
    with BulkReceiver() as es:
        sinks: list[dict[str, object]] = [{"type": "hec", "url": hec.url, "token": "t0k", "ack": True},
                 {"type": "elastic", "url": es.url, "index": "alerts"}]  # fmt: skip
        settings = exporter_settings(sinks, idle_advance=60, retry_max=0.5, sink_read_back=True)
        nc = await nats.connect(jetstream.url)
        async with running_exporter(jetstream.url, tmp_path, settings):
            await publish_correlations(nc, [correlation(n, 1, now) for n in range(100)])
            await eventually(lambda: len(es.docs) == 100, "Elasticsearch has every alert while HEC is down")
            with hec:
                await eventually(lambda: hec.count == 100, "HEC catches up once back")
                await eventually(lambda: _at(nc, "hec", 100), "every alert acked on HEC's consumer")
        assert (await position(nc, "elastic"))[1] == 100  # read back through its consumer
        await nc.close()
    assert hec.arrivals() == Counter({k: 1 for k in hec.arrivals()}), "nothing sent twice to HEC"


async def test_a_sink_hanging_while_it_catches_up_holds_only_itself(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    # HEC takes every request but its indexer acknowledges none (indexing off): each delivery to it
    # ends only at its ack_timeout. Once HEC is behind, its catch-up attempts must not hold the
    # publish lock (and so every other sink) through such a wait: Elasticsearch gets each new alert.
    now = time.time_ns()
    with HecReceiver(token="t0k", ack=True) as hec, BulkReceiver() as es:
        hec.indexing = False
        sinks: list[dict[str, object]] = [
            {"type": "hec", "url": hec.url, "token": "t0k", "ack": True, "ack_timeout": 20},
            {"type": "elastic", "url": es.url, "index": "alerts"},
        ]
        nc = await nats.connect(jetstream.url)
        settings = exporter_settings(sinks, idle_advance=60, retry_max=0.5)
        async with running_exporter(jetstream.url, tmp_path, settings) as exporter:
            lane = next(lane for lane in exporter.lanes.lanes if lane.name == "hec")
            await publish_correlations(nc, [correlation(n, 1, now) for n in range(10)])
            await eventually(lambda: len(es.docs) == 10, "the first alerts at Elasticsearch")
            await eventually(
                lambda: not lane.live and hec.count > 10, "HEC behind, its catch-up waiting", within=90
            )
            for n in range(10, 13):
                await publish_correlations(nc, [correlation(n, 1, now)])
                await eventually(lambda: len(es.docs) == n + 1, "Elasticsearch live meanwhile", within=8)  # noqa: B023
            hec.indexing = True
            await eventually(lambda: len(hec.arrivals()) == 13, "HEC caught up once it indexes", within=90)
            await eventually(lambda: _at(nc, "hec", 13), "HEC's position at the last alert", within=60)
        await nc.close()


async def test_an_alerts_stream_made_again_loses_nothing(jetstream: JetStreamServer, tmp_path: Path) -> None:
    # TAPIO_ALERTS deleted and provisioned anew while the exporter runs: its sequences start from 1
    # again, under every sink's position (and the sinks' durables went with it)
    now = time.time_ns()
    with HecReceiver(token="t0k", ack=True) as hec:
        sinks: list[dict[str, object]] = [{"type": "hec", "url": hec.url, "token": "t0k", "ack": True}]
        nc = await nats.connect(jetstream.url)
        js = nc.jetstream()
        async with running_exporter(jetstream.url, tmp_path, exporter_settings(sinks, idle_advance=60)):
            await publish_correlations(nc, [correlation(n, 1, now) for n in range(30)])
            await eventually(lambda: _at(nc, "hec", 30), "HEC's position at the last alert")
            await js.delete_stream(ALERTS)
            await js.add_stream(
                stream_config(next(s for s in production_layout().streams if s.name == ALERTS))
            )
            await publish_correlations(
                nc, [correlation(n, 1, now) for n in range(30, 70)]
            )  # past the old head
            await eventually(lambda: len(hec.arrivals()) == 70, "the alerts of the new stream at HEC")
            await eventually(lambda: _made_at(nc, "hec", 40), "HEC's position kept in the new stream")
        await nc.close()
    assert hec.arrivals() == Counter({k: 1 for k in hec.arrivals()}), "nothing sent twice to HEC"


async def _made_at(nc: Client, sink: str, seq: int) -> bool:
    try:
        return await _at(nc, sink, seq)
    except NotFoundError:  # its durable not made again yet
        return False


async def test_an_exporter_killed_mid_flow_loses_nothing_at_its_sinks(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    # kill -9 while alerts are between stored and confirmed by the sinks (or confirmed, their positions
    # not kept yet): the next process catches each sink up from its position. Every alert arrives;
    # again at most the one batch that was in hand (a single publish at a time).
    now = time.time_ns()
    total = 3_000
    with HecReceiver(token="t0k", ack=True) as hec, BulkReceiver() as es:
        argv = [sys.executable, "-m", "tapio_exporters", "--provision", "--nats-url", jetstream.url,
                "--metrics-port", "0", "--data-dir", str(tmp_path / "data"),
                "--sink", f"hec={hec.url}?token_env=TEXP_HEC_TOKEN&ack=true",
                "--sink", f"elastic={es.url}?index=alerts"]  # fmt: skip
        env = {**os.environ, "TEXP_HEC_TOKEN": "t0k"}
        log = (tmp_path / "exporter.log").open("ab")
        nc = await nats.connect(jetstream.url)
        proc = _exporter_process(argv, env, log)
        try:
            await eventually(
                lambda: _made_at(nc, "hec", 0), "the exporter up, its sinks' positions made", within=60
            )
            await publish_correlations(nc, [correlation(n, 1, now) for n in range(total)])
            await eventually(lambda: hec.count >= 300, "HEC receiving", within=120)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert len(hec.arrivals()) < total, "the kill fell inside the flow"
            proc = _exporter_process(argv, env, log)
            await eventually(
                lambda: len(hec.arrivals()) == total and len(es.docs) == total,
                "every alert at both",
                within=180,
            )
            await eventually(lambda: _at(nc, "hec", total), "HEC's position at the last alert")
            await eventually(lambda: _at(nc, "elastic", total), "Elasticsearch's position at the last alert")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            log.close()
            await nc.close()
    again = sum(hec.arrivals().values()) - total
    assert again <= 500, f"{again} alerts sent twice to HEC: more than the batch in hand"


def _exporter_process(argv: list[str], env: dict[str, str], log: BinaryIO) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=log, stderr=log, env=env, start_new_session=True)


async def test_a_catch_up_read_that_ends_short_moves_the_position_only_as_far_as_it_read(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    """What a replica answering direct gets before it caught up with the leader looks like to a
    sink catching up: the read ends before the range asked for. Only what was read and confirmed
    counts (the rest is read again); a range the stream no longer holds (aged out) is passed over."""
    nc = await nats.connect(jetstream.url)
    js = nc.jetstream()
    await apply_layout(js, 1)

    async def store(revisions: range) -> None:
        for r in revisions:
            a = tricky(revision=r)
            await js.publish(
                subject(a), alert_to_pb(a).SerializeToString(), headers={"Nats-Msg-Id": msg_id(a)}
            )

    await store(range(1, 11))  # stream sequences 1..10
    out = io.StringIO()
    metrics = ExporterMetrics()
    async with Publisher(PublisherSettings(spool_dir=str(tmp_path / "spool")), nc=nc) as publisher:
        delivery = SinkDelivery(publisher, ConsoleSink("console", as_json=True, out=out), metrics)
        lane = Lane(nc, delivery, sink_consumer("console", Subjects()), 100)
        lanes = Lanes(nc, [lane], ALERTS, metrics)
        await lanes.open(10)
        assert not lane.live
        assert lane.position == 0
        assert not await lanes._step(lane, 15, retry=False), "asked up to 15, the stream answered up to 10"
        assert lane.position == 10, "only what was read and confirmed"
        assert metrics.registry.get_sample_value(
            "tapio_siem_exporter_errors_total", {"kind": "catch_up_short"}
        ) == 1  # fmt: skip
        await store(range(11, 16))  # 11..15
        await js.purge_stream(ALERTS, seq=14)  # 11..13 aged out
        assert await lanes._step(lane, 12, retry=False), "a range the stream no longer holds is passed over"
        assert lane.position == 12
        assert await lanes._step(lane, 15, retry=False)
        assert lane.position == 15
    await nc.close()
    revisions = [json.loads(line)["revision"] for line in out.getvalue().splitlines()]
    assert revisions == [*range(1, 11), 14, 15]

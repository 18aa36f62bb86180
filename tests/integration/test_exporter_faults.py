"""Fault test of the SIEM exporter: 10,000 correlations flow while the HEC receiver is down for 10 s
and rsyslog is restarted; every alert arrives, each alert id + revision exactly once at every
receiver, and every consumer ends with nothing pending."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import nats
import pytest
from nats.aio.client import Client

from tapio_jetstream.layout import ALERTS, CORRELATIONS, SIEM_EXPORTER
from tapio_testing.jetstream import JetStreamServer
from tapio_testing.receivers.hec import HecReceiver
from tapio_testing.receivers.rsyslog import Rsyslog
from tapio_testing.wait import eventually
from tests.integration.exporter_helpers import (
    correlation,
    exporter_settings,
    pending,
    publish_correlations,
    running_exporter,
)

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

INCIDENTS = 8_000
UPDATES = 2_000  # second revisions of the first incidents: 10,000 correlations, 10,000 alerts
SD = re.compile(r'\bid="([0-9a-f]+)" state="(\w+)" revision="(\d+)"')


def syslog_keys(rs: Rsyslog) -> Counter[tuple[str, int, str]]:
    keys: Counter[tuple[str, int, str]] = Counter()
    for line in rs.lines():
        m = SD.search(line["raw"])
        assert m, line["raw"]
        keys[(m[1], int(m[3]), m[2])] += 1
    return keys


async def test_receivers_down_and_restarted_lose_and_duplicate_nothing(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    now = time.time_ns()
    corrs = [correlation(n, 1, now + n) for n in range(INCIDENTS)]
    corrs += [correlation(n, 2, now + INCIDENTS + n) for n in range(UPDATES)]
    with HecReceiver(token="t0k", ack=True) as hec, Rsyslog(tmp_path / "rs") as rs:
        sinks = [
            {"type": "hec", "url": hec.url, "token": "t0k", "ack": True, "batch": 500},
            {"type": "syslog", "name": "rsyslog", "url": f"tcp://127.0.0.1:{rs.tcp_port}", "batch": 200},
        ]
        settings = exporter_settings(sinks, idle_advance=3600, retry_max=1.0)
        nc = await nats.connect(jetstream.url)
        async with running_exporter(jetstream.url, tmp_path, settings) as exporter:
            async with anyio.create_task_group() as tg:

                async def feed() -> None:
                    for i in range(0, len(corrs), 500):
                        await publish_correlations(nc, corrs[i : i + 500])
                        await anyio.sleep(1.0)  # 10 s of flow: both faults fall inside it

                tg.start_soon(feed)
                await eventually(lambda: hec.count >= 1_000, "HEC receiving", within=120)
                await anyio.to_thread.run_sync(hec.stop)  # down for 10 s, while correlations keep coming
                at_stop = hec.count
                await anyio.sleep(10)
                held = hec.count
                assert held == at_stop, "nothing arrives while the receiver is down"
                assert held < len(corrs), "the outage fell inside the flow"
                hec.start()
                await eventually(lambda: hec.count > held, "HEC receiving again", within=60)
                await eventually(lambda: len(rs.lines()) >= 2_000, "rsyslog receiving", within=120)
                await anyio.to_thread.run_sync(rs.restart)  # SIGTERM, wait, start on the same port
                assert len(rs.lines()) < len(corrs), "the restart fell inside the flow"
            await eventually(lambda: hec.count >= len(corrs), "every alert at HEC", within=300)
            await eventually(
                lambda: sum(syslog_keys(rs).values()) >= len(corrs), "every alert at rsyslog", within=300
            )
            for durable, stream in ((SIEM_EXPORTER, CORRELATIONS), (f"{SIEM_EXPORTER}-hec", ALERTS),
                                    (f"{SIEM_EXPORTER}-rsyslog", ALERTS)):  # fmt: skip
                await eventually(_drained(nc, stream, durable), f"nothing pending on {durable}", within=60)
            assert exporter.sinks[0].sink.name == "hec"
        await nc.close()
    expected = {(a, r, s) for a, r, s in hec.arrivals()}
    assert len(expected) == len(corrs)
    assert hec.arrivals() == Counter({k: 1 for k in expected}), "each alert id + revision once at HEC"
    assert syslog_keys(rs) == Counter({k: 1 for k in expected}), "each alert id + revision once at rsyslog"


def _drained(nc: Client, stream: str, durable: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await pending(nc, stream, durable) == (0, 0)

    return check

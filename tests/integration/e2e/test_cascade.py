"""Scenario "cascade end to end": the product started by `tapio-admin up` (the README's launcher)
with the HEC test receiver as a further sink; the public cascade published as a collector would;
the cascading_failure alert arrives at HEC exactly once per id + revision + state, and on the
console; every durable consumer drains."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tapio_common.config import NatsConfig
from tapio_common.nats.connect import connect
from tapio_jetstream.layout import ALERTS, DLQ, PROCESSED
from tapio_testing.receivers.hec import HecReceiver
from tapio_testing.wait import eventually
from tests.integration.e2e.flows import (
    cascade_lines,
    hec_arrivals,
    msg_ids,
    processed_events,
    publisher,
    routed,
    to_events,
)
from tests.integration.e2e.product import HEC_TOKEN, drained, hec_sink, stream_messages, tapio_up
from tests.integration.e2e.report import Entry, Report

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_cascade_end_to_end(tmp_path: Path, e2e_report: Report) -> None:
    events = to_events(cascade_lines())
    with (
        HecReceiver(token=HEC_TOKEN, ack=True) as hec,
        tapio_up(tmp_path / "data", exporter_sinks=[hec_sink(hec.url)]) as up,
    ):
        async with publisher(up.url, tmp_path) as pub:
            await pub.publish_many(events)
            with anyio.fail_after(60):
                await pub.flush()

        def cascade_fired() -> bool:
            return any(a["state"] == "firing" and "ascading" in a["title"] for a in hec.alerts())

        await eventually(cascade_fired, "a cascading_failure alert FIRING at the HEC receiver", within=90)
        nc = await connect(NatsConfig(), "e2e", urls=(up.url,))
        try:
            backlog = await drained(nc)
            stored = msg_ids(await stream_messages(nc, ALERTS))
            processed = processed_events(await stream_messages(nc, PROCESSED))
            dlq = await stream_messages(nc, DLQ)
        finally:
            await nc.close()
        await eventually(lambda: set(hec_arrivals(hec)) >= set(stored), "every stored alert at HEC", 30)
        console = up.matching(r"(FIRING|UPDATED|RESOLVED) ")
    at_hec = hec_arrivals(hec)
    event_ids = routed(events)
    routed_ids = {i for _, i in processed}
    entry = e2e_report.add(
        Entry(
            scenario="cascade end to end",
            published=len(events),
            delivered=len(set(at_hec)),
            lost=len(set(stored) - set(at_hec)) + len(event_ids - routed_ids),
            duplicates=sum(n - 1 for n in at_hec.values())
            + sum(n - 1 for n in stored.values())
            + sum(n - 1 for n in processed.values()),
            dlq=len(dlq),
            detail={
                "alerts_stored": len(stored),
                "alerts_at_hec": sorted(at_hec),
                "events_routed": len(routed_ids & event_ids),
                "console_lines": console,
                "backlogs": {k: list(v) for k, v in backlog.items()},
            },
        )
    )
    assert not entry.problems(), entry
    assert all(v == (0, 0) for v in backlog.values()), backlog
    assert any("FIRING" in x and "ascading" in x for x in console), up.output()
    fired = [k for k in at_hec if k.endswith(":firing")]
    assert len(fired) == 1, at_hec  # one incident, one alert id, fired once

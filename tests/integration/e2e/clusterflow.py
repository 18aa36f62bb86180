"""The e2e flow on the production 3-node cluster: copies of the public cascade published by a
collector (as user tapio-collectors, its own certificate), the correlator, pipeline and SIEM exporter
as processes each connecting as its own user, delivering to the HEC receiver, rsyslog and
Alertmanager; a fault injected while the flow runs; then what came out, counted into a report Entry.

Fed by the fault scenarios (test_cluster_faults.py) with the cluster and a `Fault` (what to break
once the correlator consumes, and how to repair it)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
from nats.aio.client import Client
from nats.errors import Error as NatsError

from tapio.events.v1 import events_pb2
from tapio_common.nats.connect import connect
from tapio_jetstream.layout import ALERTS, CORRELATIONS, CORRELATOR, DLQ, EVENTS, PROCESSED
from tapio_publisher import Publisher, PublisherSettings
from tapio_testing.natscluster import NatsCluster
from tapio_testing.receivers.hec import HecReceiver
from tapio_testing.wait import eventually
from tests.integration.e2e.flows import cascade_lines, hec_arrivals, msg_ids, to_events
from tests.integration.e2e.product import (
    Component,
    backlogs,
    components,
    drained,
    stream_messages,
)
from tests.integration.e2e.real import alertmanager_view, ready, receivers
from tests.integration.e2e.report import Entry

COPIES = 6  # incidents in the flow
FAULT_AFTER = 2  # copies published before the fault
PACE = 1.0  # seconds between copies: the flow goes on through the fault
COLLECTOR = "tapio-ebpf-collector"  # the workload whose certificate the publishing collector uses
STREAMS = (EVENTS, CORRELATIONS, ALERTS, PROCESSED, DLQ)


@attrs.define
class Flow:
    """What a fault acts on while the flow runs."""

    cluster: NatsCluster
    admin: Client
    running: dict[str, Component]
    hec: HecReceiver
    data: Path


@attrs.frozen
class Fault:
    """`inject` breaks something and repairs it (returns once repaired: the recovery clock starts).
    With `before_start`, the fault hits the components' start instead: `before_start` breaks the
    cluster before they start, `inject` repairs it (once each waits) before any copy is published,
    and `recovery_seconds` runs from the repair until every component is ready."""

    scenario: str
    inject: Callable[[Flow], Awaitable[dict[str, Any]]]
    before_start: Callable[[NatsCluster, Client], Awaitable[dict[str, Any]]] | None = None


@asynccontextmanager
async def admin_client(cluster: NatsCluster) -> AsyncIterator[Client]:
    """The test's own reads and checks, as tapio-admin (the one user that may inspect everything)."""
    nc = await connect(cluster.identity("admin").nats_config(cluster.urls), "e2e-admin")
    try:
        yield nc
    finally:
        await nc.close()


def collector_publisher(cluster: NatsCluster, data: Path) -> Publisher:
    """A collector's publisher on the cluster: user tapio-collectors, batching, spool, Nats-Msg-Id."""
    settings = PublisherSettings.from_section({}, str(data / "collector"), name="e2e-collector")
    return Publisher(settings, nats=cluster.identity(COLLECTOR).nats_config(cluster.urls))


def incident_of(alert: dict[str, Any], copies: list[list[events_pb2.Event]]) -> int:
    ids = set(alert["event_ids"])
    found = [k for k, c in enumerate(copies) if ids & {e.id for e in c}]
    assert len(found) == 1, (alert, found)
    return found[0]


def describe(cluster: NatsCluster) -> str:
    """How the cluster ran, for a report entry."""
    how = "containers" if cluster.engine == "container" else "processes"
    where = ", each node in its own netns" if cluster.isolated else ""
    return f"3 nodes ({how}{where}), TLS + auth.conf users"


async def stream_last(nc: Client, stream: str) -> int:
    return int((await nc.jetstream().stream_info(stream)).state.last_seq)


async def settled(nc: Client) -> bool:
    """Every stream (buckets too) has a leader and all its replicas current: a node that came back
    from the previous scenario's fault has caught up."""
    try:
        infos = await nc.jetstream().streams_info()
    except (NatsError, TimeoutError):  # 503 while the meta leader is elected
        return False
    for info in infos:
        c = info.cluster
        if c is None or not c.leader or not all(r.current for r in c.replicas or []):
            return False
    return True


async def caught_up(nc: Client) -> bool:
    """Every durable consumer of every stream has delivered and acked everything."""
    try:
        b = await backlogs(nc)
    except (NatsError, TimeoutError):
        return False
    return bool(b) and all(v == (0, 0) for v in b.values())


async def run_flow(cluster: NatsCluster, data: Path, fault: Fault, first_copy: int) -> Entry:
    """Empties the streams, publishes COPIES incidents (cascade copies first_copy.., fresh ids: one
    scenario's never meet another's), injects `fault` after FAULT_AFTER of them, counts the outcome."""
    copies = [to_events(cascade_lines(first_copy + k)) for k in range(COPIES)]
    with ExitStack() as stack:
        rx = stack.enter_context(receivers(data))
        hec = rx.hec
        sinks = rx.sinks()
        for node in cluster.nodes:  # a node an earlier scenario left killed (it failed part way)
            if not node.alive():
                await anyio.to_thread.run_sync(cluster.restart, node.name)
        async with admin_client(cluster) as nc:
            await eventually(lambda: settled(nc), "every stream with its leader and current replicas", 60)
            for stream in STREAMS:
                await nc.jetstream().purge_stream(stream)
            await eventually(lambda: settled(nc), "every stream with its leader and current replicas", 60)
            start_seq = await stream_last(nc, EVENTS) + 1  # this scenario's first event
            detail: dict[str, Any] = {}
            at_start = fault.before_start is not None
            if fault.before_start is not None:
                detail.update(await fault.before_start(cluster, nc))
            running = stack.enter_context(
                components(",".join(cluster.urls), data, exporter_sinks=sinks, cluster=cluster)
            )
            flow = Flow(cluster, nc, running, hec, data)
            injected = anyio.Event()
            ready_after = 0.0
            if at_start:  # the components wait for the cluster; repaired before any copy
                detail.update(await fault.inject(flow))
                repaired = time.monotonic()
                await eventually(
                    lambda: all(ready(c) for c in running.values()), "every component ready", within=120
                )
                ready_after = time.monotonic() - repaired
                injected.set()
            async with collector_publisher(cluster, data) as pub, anyio.create_task_group() as tg:

                async def publish() -> None:
                    for k, events in enumerate(copies):
                        if k == FAULT_AFTER:
                            await injected.wait()
                        await pub.publish_many(events)
                        with anyio.fail_after(120):
                            await pub.flush()
                        await anyio.sleep(PACE)

                tg.start_soon(publish)

                async def correlating() -> bool:
                    try:
                        info = await nc.jetstream().consumer_info(EVENTS, CORRELATOR)
                    except (NatsError, TimeoutError):
                        return False
                    return int(info.ack_floor.stream_seq) >= start_seq

                await eventually(correlating, "the correlator consuming", within=90)
                if not at_start:  # the fault hits the flow: the first alert through to HEC first
                    await eventually(lambda: bool(hec.alerts()), "the first alert at HEC", within=90)
                    await eventually(
                        lambda: all(ready(c) for c in running.values()), "every component ready", within=60
                    )
                    injected.set()  # the flow goes on while the fault is on
                    detail.update(await fault.inject(flow))
                    repaired = time.monotonic()
            # every copy is published: recovery ends once every consumer has caught up
            left = await drained(nc, within=120)
            assert all(v == (0, 0) for v in left.values()), f"not drained after the repair: {left}"
            recovery = ready_after if at_start else time.monotonic() - repaired
            total = sum(len(c) for c in copies)

            def all_fired() -> bool:
                return len({a["id"] for a in hec.alerts() if a["state"] == "firing"}) >= COPIES

            await eventually(all_fired, f"{COPIES} incidents firing at HEC", within=120)
            await eventually(lambda: caught_up(nc), "drained after the last alerts", within=60)
            stored = msg_ids(await stream_messages(nc, ALERTS))
            corrs = msg_ids(await stream_messages(nc, CORRELATIONS))
            await eventually(lambda: set(hec_arrivals(hec)) >= set(stored), "every stored alert at HEC", 60)
            await eventually(lambda: set(rx.at_syslog()) >= set(stored), "every stored alert at rsyslog", 60)
            want_am = alertmanager_view(stored)
            for _ in range(300):  # 60 s
                if rx.active() == want_am:
                    break
                await anyio.sleep(0.2)
            assert rx.active() == want_am, f"Alertmanager: {rx.active()}, expected {want_am} from {stored}"
            dlq = (await nc.jetstream().stream_info(DLQ)).state.messages
            backlog = await backlogs(nc)
            dead = [n for n, c in running.items() if not c.alive()]
            assert not dead, {n: running[n].log_tail() for n in dead}
        at_hec, at_syslog = hec_arrivals(hec), rx.at_syslog()
        at_am = rx.active()
    firing = [a for a in hec.alerts() if a["state"] == "firing"]
    per_incident = [sum(1 for a in firing if incident_of(a, copies) == k) for k in range(COPIES)]
    lost = (
        len(set(stored) - set(at_hec))
        + len(set(stored) - set(at_syslog))
        + sum(1 for i, rev in want_am.items() if at_am.get(i) != rev)
        + sum(1 for n in per_incident if n == 0)
    )
    duplicates = (
        sum(n - 1 for n in at_hec.values())
        + sum(n - 1 for n in at_syslog.values())
        + sum(n - 1 for n in corrs.values())
        + sum(n - 1 for n in per_incident if n > 1)
    )
    return Entry(
        scenario=fault.scenario,
        published=total,
        delivered=len(set(at_hec)),
        lost=lost,
        duplicates=duplicates,
        dlq=dlq,
        recovery_seconds=round(recovery, 2),
        detail={
            **detail,
            "cluster": describe(cluster),
            "incidents": COPIES,
            "firing_per_incident": per_incident,
            "alerts_stored": len(stored),
            "at_hec": len(at_hec),
            "at_rsyslog": len(at_syslog),
            "at_alertmanager": len(
                at_am
            ),  # active alerts (one per incident by its labels; resolved drop out)
            "correlation_revisions": len(corrs),
            "backlogs": {k: list(v) for k, v in backlog.items()},
        },
    )

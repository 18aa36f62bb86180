"""Faults on the production 3-node cluster while incidents flow: kill -9 a NATS node and restart
it, partition a NATS node from the other two for 20 s (its link down), kill -9 the correlator and
restart it, the HEC receiver down for 10 s; two NATS nodes lost while the components start (each
waits, not ready, and is ready once the nodes are back). Each asserts that nothing is lost or duplicated at the
receivers (HEC, rsyslog, Alertmanager: every stored alert once per id + revision + state, each
incident firing once), that no correlation revision is stored twice, that every durable consumer
drains to zero pending and nothing went to the DLQ; each writes its entry to e2e-report.json."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import pytest
from nats.aio.client import Client

from tapio_jetstream.layout import EVENTS
from tapio_testing.natscluster import NatsCluster
from tapio_testing.wait import eventually
from tests.integration.e2e.clusterflow import Fault, Flow, run_flow
from tests.integration.e2e.product import Component
from tests.integration.e2e.real import ready
from tests.integration.e2e.report import Report

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NODE_DOWN = 5.0  # seconds a killed NATS node stays down
NODES_LOST = 5.0  # seconds the components keep waiting before the lost nodes come back
PARTITION = 20.0
CORRELATOR_DOWN = 2.0
HEC_DOWN = 10.0


async def events_leader(flow: Flow) -> str:
    """The node leading TAPIO_EVENTS: losing it is the worst case for the flow."""
    info = await flow.admin.jetstream().stream_info(EVENTS)
    assert info.cluster is not None
    assert info.cluster.leader
    return info.cluster.leader


async def kill_a_nats_node(flow: Flow) -> dict[str, Any]:
    name = await events_leader(flow)
    flow.cluster.kill(name)
    await anyio.sleep(NODE_DOWN)
    await anyio.to_thread.run_sync(flow.cluster.restart, name)
    return {"node": name, "down_seconds": NODE_DOWN}


async def partition_a_nats_node(flow: Flow) -> dict[str, Any]:
    name = await events_leader(flow)
    flow.cluster.partition(name)
    await anyio.sleep(PARTITION)
    flow.cluster.heal(name)
    await anyio.to_thread.run_sync(lambda: flow.cluster.wait_healthy(60, [flow.cluster.node(name)]))
    return {"node": name, "partition_seconds": PARTITION}


async def kill_the_correlator(flow: Flow) -> dict[str, Any]:
    correlator = flow.running["correlator"]
    correlator.kill9()
    await anyio.sleep(CORRELATOR_DOWN)
    assert not correlator.alive()
    correlator.start()
    return {"down_seconds": CORRELATOR_DOWN}


async def hec_receiver_down(flow: Flow) -> dict[str, Any]:
    flow.hec.stop()
    await anyio.sleep(HEC_DOWN)
    flow.hec.start()
    return {"down_seconds": HEC_DOWN}


WAITING = "the NATS cluster does not answer yet"  # tapio_jetstream.startup's WARNING line


def meta_leader(cluster: NatsCluster) -> str:
    """The node leading the JetStream meta group, from a live node's /jsz."""
    for node in cluster.nodes:
        if not node.alive():
            continue
        try:
            with urllib.request.urlopen(f"http://{node.host}:{node.http_port}/jsz", timeout=2) as r:
                leader = json.load(r).get("meta_cluster", {}).get("leader", "")
        except OSError:
            continue
        if leader:
            return str(leader)
    raise AssertionError("no node names a meta leader")


async def lose_two_nodes(cluster: NatsCluster, nc: Client) -> dict[str, Any]:
    """Before the components start: kill -9 the meta leader and the TAPIO_EVENTS leader (another
    node when they are one): no quorum, so no JetStream request is answered until one comes back."""
    leader = await anyio.to_thread.run_sync(meta_leader, cluster)
    info = await nc.jetstream().stream_info(EVENTS)
    events = info.cluster.leader if info.cluster is not None else ""
    others = [n.name for n in cluster.nodes if n.name != leader]
    lost = [leader, events if events and events != leader else others[0]]
    for name in lost:
        cluster.kill(name)
    return {"nodes_lost": lost, "meta_leader": leader, "events_leader": events}


async def restart_lost(flow: Flow) -> None:
    """Every node killed by the fault started again (also when the fault's checks failed, so the
    next scenario finds the whole cluster)."""
    for node in flow.cluster.nodes:
        if not node.alive():
            await anyio.to_thread.run_sync(flow.cluster.restart, node.name)


def waiting_lines(c: Component) -> int:
    return c.log_tail(5000).count(WAITING)


async def restart_once_they_wait(flow: Flow) -> dict[str, Any]:
    """Each component (started meanwhile) logs what it waits for and stays alive; after NODES_LOST
    more seconds the lost nodes come back. (A component may turn ready before that: a leader that
    lost its quorum still answers for a few seconds; "ready_before_repair" records it.)"""
    try:
        await eventually(
            lambda: all(waiting_lines(c) > 0 for c in flow.running.values()), "every component waiting", 90
        )
        await anyio.sleep(NODES_LOST)
        dead = [n for n, c in flow.running.items() if not c.alive()]
        assert not dead, {n: flow.running[n].log_tail() for n in dead}
        early = sorted(n for n, c in flow.running.items() if ready(c))
        waits = {n: waiting_lines(c) for n, c in flow.running.items()}
    finally:
        await restart_lost(flow)
    return {"waiting_lines": waits, "down_seconds_after_waiting": NODES_LOST, "ready_before_repair": early}


async def restart_the_correlator_while_two_nodes_are_lost(flow: Flow) -> dict[str, Any]:
    """kill -9 the correlator, then lose the meta leader and the TAPIO_EVENTS leader, start the
    correlator again (it waits to open its snapshot and replay), then bring the nodes back."""
    correlator = flow.running["correlator"]
    correlator.kill9()
    try:
        lost = await lose_two_nodes(flow.cluster, flow.admin)
        before = waiting_lines(correlator)
        correlator.start()
        await eventually(
            lambda: waiting_lines(correlator) > before, "the restarted correlator waiting for the cluster", 90
        )
        await anyio.sleep(NODES_LOST)
        assert correlator.alive(), correlator.log_tail()
        early = ready(correlator)
    finally:
        await restart_lost(flow)
    return {**lost, "waiting_lines": waiting_lines(correlator) - before, "ready_before_repair": early}


FAULTS = {
    "nats-node-kill": Fault(
        "kill -9 one NATS node (the TAPIO_EVENTS leader) and restart it", kill_a_nats_node
    ),
    "nats-partition": Fault(
        "partition one NATS node (the TAPIO_EVENTS leader) for 20 s", partition_a_nats_node
    ),
    "correlator-kill": Fault("kill -9 the correlator and restart it (3-node cluster)", kill_the_correlator),
    "hec-down": Fault("the HEC receiver down for 10 s", hec_receiver_down),
    "correlator-restart-nodes-lost": Fault(
        "kill -9 the correlator, two NATS nodes lost while it starts again, restarted once it waits",
        restart_the_correlator_while_two_nodes_are_lost,
    ),
    "nats-lost-at-start": Fault(
        "two NATS nodes (the meta leader, the TAPIO_EVENTS leader) killed -9 before the components "
        "start, restarted once each waits",
        restart_once_they_wait,
        before_start=lose_two_nodes,
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_fault_during_the_flow(
    fault: str, e2e_cluster: NatsCluster, tmp_path: Path, e2e_report: Report
) -> None:
    if fault == "nats-partition" and not e2e_cluster.isolated:
        pytest.fail("the partition needs the isolated cluster (network namespaces, root)")
    first = 10 + list(FAULTS).index(fault) * 10  # cascade copies of its own, all in the past
    entry = e2e_report.add(await run_flow(e2e_cluster, tmp_path, FAULTS[fault], first))
    assert not entry.problems(), entry
    assert entry.detail["firing_per_incident"] == [1] * entry.detail["incidents"], entry
    assert all(v == [0, 0] for v in entry.detail["backlogs"].values()), entry

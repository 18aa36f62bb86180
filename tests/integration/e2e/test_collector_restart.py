"""Scenario "a collector restarted" on the production cluster: the Kubernetes collector (its own
process, its own certificate, user tapio-collectors) watches the test API server; it is killed -9
while it publishes, the API server changes while it is down (the node goes NotReady), and it is
started again: it lists everything again, and what it re-emits is deduplicated (deterministic event
ids: JetStream's Nats-Msg-Id for a message holding the same events, the consumers' dedup window for
an event re-emitted in another batch), so every event is routed once (TAPIO_PROCESSED), the change
made while it was down arrives, and the consumers drain."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from tapio_jetstream.layout import EVENTS, PROCESSED
from tapio_testing.k8s_api import K8sApiServer
from tapio_testing.natscluster import NatsCluster
from tapio_testing.wait import eventually
from tests.integration.e2e import real
from tests.integration.e2e.cluster import App, node, node_not_ready
from tests.integration.e2e.clusterflow import STREAMS, admin_client, caught_up, settled
from tests.integration.e2e.flows import processed_events
from tests.integration.e2e.product import components, stream_messages
from tests.integration.e2e.report import Entry, Report

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NODE = "te2e-node-1"


async def test_a_collector_killed_and_restarted(
    e2e_cluster: NatsCluster, tmp_path: Path, e2e_report: Report
) -> None:
    async with admin_client(e2e_cluster) as nc:
        for stream in STREAMS:
            await nc.jetstream().purge_stream(stream)
        await eventually(lambda: settled(nc), "every stream settled", 60)
        with K8sApiServer(token="te2e-token") as api, real.receivers(tmp_path) as rx:
            n = node(api, NODE)
            App.create(api, "shop", namespace="te2e-shop", node=NODE)
            kubeconfig = api.kubeconfig(tmp_path / "kubeconfig.json")
            wanted = {"k8s-collector": ("--node-name", NODE, "--cluster", "te2e")}
            urls = ",".join(e2e_cluster.urls)
            with (
                components(urls, tmp_path, exporter_sinks=rx.sinks(), cluster=e2e_cluster),
                real.collectors(urls, tmp_path, wanted, kubeconfig=kubeconfig, cluster=e2e_cluster) as cols,
            ):
                k8s = cols["k8s-collector"]
                await eventually(lambda: real.ready(k8s), "the k8s collector ready", 120)
                await eventually(lambda: real.confirmed(k8s) > 0, "its first events confirmed", 60)
                first_run = real.confirmed(k8s)
                k8s.kill9()
                down_at = time.time()
                node_not_ready(api, n, down_at)  # happens while the collector is down
                await anyio.sleep(2)
                k8s.start()
                restarted = time.monotonic()
                await eventually(lambda: real.ready(k8s), "the restarted collector ready", 120)

                async def not_ready_stored() -> bool:
                    events = real.events_of(await stream_messages(nc, EVENTS))
                    return any(
                        e.WhichOneof("payload") == "k8s"
                        and e.k8s.kind == "Node"
                        and e.k8s.conditions.get("Ready") == "Unknown"
                        for e in events
                    )

                await eventually(not_ready_stored, "the NotReady made while it was down stored", 90)
                await eventually(lambda: caught_up(nc), "every durable consumer drained", 90)
                recovery = time.monotonic() - restarted
                second_run = real.confirmed(k8s)
                re_emitted = real.emitted(k8s)
            events = real.events_of(await stream_messages(nc, EVENTS))
            routed = processed_events(await stream_messages(nc, PROCESSED))
    stored_repeats = real.id_repeats(
        events
    )  # a re-emit in another batch is stored again: the consumers drop it
    routed_repeats = sum(n - 1 for n in routed.values())
    entry = e2e_report.add(
        Entry(
            scenario="a collector (k8s) killed -9 and restarted (3-node cluster)",
            published=first_run + second_run,
            delivered=len({e.id for e in events}),
            lost=0,
            duplicates=routed_repeats,
            dlq=int(await _dlq(e2e_cluster)),
            recovery_seconds=round(recovery, 2),
            detail={
                "confirmed_first_run": first_run,
                "confirmed_after_restart": second_run,
                "emitted_after_restart": re_emitted,
                "stored_events": len(events),
                "stored_repeats_dropped_by_the_consumers": stored_repeats,
                "routed": len(routed),
            },
        )
    )
    assert not entry.problems(), entry


async def _dlq(cluster: NatsCluster) -> int:
    async with admin_client(cluster) as nc:
        return int((await nc.jetstream().stream_info("TAPIO_DLQ")).state.messages)

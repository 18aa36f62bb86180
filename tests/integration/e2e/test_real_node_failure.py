"""Scenario "kubelet dies, the node goes NotReady": every event comes from a real collector observing
something real. A real systemd boots in its own namespaces (`te2r-*`, private /tmp) with a
`kubelet.service` that runs until the test tells it to crash; the systemd collector (its own
process, on that systemd's D-Bus) sees the unit fail. The test API server then gets what the node
lifecycle controller writes once the kubelet stopped posting status: the node Ready=Unknown and its
pods Ready=False; the Kubernetes collector (its own process) turns that into events. The
correlator, the pipeline and the SIEM exporter run as processes; the HEC receiver gets ONE
node_failure alert, high confidence with the pods lost, rooted at the unit failure."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tapio.events.v1 import events_pb2
from tapio_jetstream.layout import EVENTS
from tapio_testing.cgroups import tag
from tapio_testing.k8s_api import K8sApiServer
from tapio_testing.natscluster import NatsCluster
from tapio_testing.systemd_ns import NamespacedSystemd
from tapio_testing.wait import eventually
from tests.integration.e2e import real
from tests.integration.e2e.cluster import App, node, node_not_ready
from tests.integration.e2e.clusterflow import admin_client
from tests.integration.e2e.product import components, stream_messages
from tests.integration.e2e.real import has
from tests.integration.e2e.report import Report

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

CRASH = "run/te2r-kubelet-crash"  # inside the namespace: the kubelet exits once this exists
KUBELET = f"""[Unit]
Description=kubelet: The Kubernetes Node Agent
[Service]
ExecStart=/bin/sh -c 'echo "I1201 server.go:487] Kubelet version v1.31.2"; \\
  while [ ! -e /{CRASH} ]; do sleep 0.2; done; \\
  echo "E1201 run.go:72] command failed: failed to run Kubelet: validate service connection: \\
CRI v1 runtime API is not implemented for endpoint unix:///run/containerd/containerd.sock" >&2; exit 1'
Restart=no
"""


@pytest.fixture
def systemd() -> Iterator[NamespacedSystemd]:
    """A namespaced systemd running kubelet.service (start() raises, with the reason, when it cannot
    boot: a failure, not a skip, on our machines)."""
    sd = NamespacedSystemd({"kubelet.service": KUBELET}, name="te2r")
    sd.start()
    try:
        sd.systemctl("start", "kubelet.service")
        yield sd
    finally:
        sd.stop()


def unit_failed(events: list[events_pb2.Event]) -> list[events_pb2.Event]:
    return [
        e for e in events if e.type == "unit" and e.action == "failed" and e.systemd.unit == "kubelet.service"
    ]


async def test_kubelet_failure_then_node_not_ready(
    e2e_cluster: NatsCluster, systemd: NamespacedSystemd, tmp_path: Path, e2e_report: Report
) -> None:
    node_name = f"te2r-node-{tag()}"
    url = ",".join(e2e_cluster.urls)
    async with admin_client(e2e_cluster) as nc:
        await real.fresh(nc)
        with K8sApiServer(token="te2r-token") as api, real.receivers(tmp_path) as rx:
            n = node(api, node_name)
            # A worker Deployment without a Service: its pods are lost with the node, no Service
            # loses all its endpoints (that would make it a cascading_failure).
            app = App.create(api, "batch-worker", namespace="te2r-jobs", node=node_name, service=False)
            kubeconfig = api.kubeconfig(tmp_path / "kubeconfig.json")
            wanted = {
                "systemd-collector": ("--node-name", node_name, "--bus", systemd.bus_address,
                                      "--journal-root", systemd.journal_root),
                "k8s-collector": ("--node-name", node_name, "--cluster", "te2r"),
            }  # fmt: skip
            with (
                components(url, tmp_path, exporter_sinks=rx.sinks(), cluster=e2e_cluster) as consumers,
                real.collectors(url, tmp_path, wanted, kubeconfig=kubeconfig, cluster=e2e_cluster) as cols,
            ):
                await eventually(lambda: all(real.ready(c) for c in cols.values()), "collectors ready", 120)
                (systemd.root / CRASH).touch()

                async def failure() -> list[events_pb2.Event]:
                    return unit_failed(real.events_of(await stream_messages(nc, EVENTS)))

                await eventually(lambda: has(failure()), "kubelet.service failed, in TAPIO_EVENTS", within=60)
                (root,) = await failure()
                # The node controller's writes once the kubelet stopped posting status.
                await anyio.sleep(1.0)
                node_not_ready(api, n, time.time())
                await anyio.sleep(0.5)
                app.marked_not_ready(time.time())

                await real.wait_alert(nc, rx, "node_failure", confidence="high")
                out = await real.outcome(nc, rx, cols)
                assert all(c.alive() for c in consumers.values()), {
                    n: c.log_tail() for n, c in consumers.items()
                }
    last = real.one_incident(
        e2e_report, out, "kubelet failure, node NotReady (real collectors)", type_="node_failure", root=root
    )
    assert (root.source, root.context.node) == (events_pb2.SOURCE_SYSTEMD, node_name), root
    k8s = {e.id: (e.type, e.action) for e in out.events if e.source == events_pb2.SOURCE_K8S}
    lost = {i for i, ta in k8s.items() if ta in {("nodes", "not_ready"), ("pods", "not_ready")}}
    assert {ta for i, ta in k8s.items() if i in lost} == {("nodes", "not_ready"), ("pods", "not_ready")}, k8s
    assert set(last["event_ids"]) >= {root.id, *lost}, last

"""Scenario "packet loss on a pod's interface, the pod retransmits": every event comes from a real
collector observing something real. The test makes a node and a pod network namespace (`te2r-*`)
joined by a veth, as a CNI plugin does; a client process in the pod's namespace and in a cgroup laid
out like a containerd pod's opens TCP connections to a server on the node side and sends one segment
on each, which a tc BPF filter on the node's end of the veth drops every time (the original and each
retransmission). The CNI collector (its own process, sampling the node's namespace) reports the
interface's ingress packet_loss, mapped to the pod through the veth's peer; the eBPF collector (its
own process) reports the client's retransmits, attributed to its container. The correlator, the
pipeline and the SIEM exporter run as processes; the receivers get ONE network_degradation alert,
low at first (the CNI event alone) and high with the retransmits, rooted at the CNI event."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tapio.events.v1 import events_pb2
from tapio_jetstream.layout import EVENTS
from tapio_testing.cgroupfs import ContainerCgroup, pod_container_cgroup
from tapio_testing.cgroups import tag
from tapio_testing.natscluster import NatsCluster
from tapio_testing.netns import Netns, node_and_pod
from tapio_testing.tcdrop import drop_ingress
from tapio_testing.wait import eventually
from tests.integration.e2e import real
from tests.integration.e2e.clusterflow import admin_client
from tests.integration.e2e.product import components, stream_messages
from tests.integration.e2e.report import Report

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NODE_IP, POD_IP = "10.247.3.1", "10.247.3.2"
CONNECTIONS = 40
PAYLOAD = 333
FRAME = 14 + 20 + 32 + PAYLOAD  # Ethernet + IPv4 + TCP with timestamps + the segment
SAMPLE = 1.0  # the CNI collector's --interval
HOLD = 4.0  # retransmits at about 0.2, 0.6, 1.4 and 3 s: the client aborts between two of them
# In the pod: connects, sends one segment per connection, waits, prints the sockets' own count of
# retransmissions (tcp_info.tcpi_total_retrans), then aborts every connection (no more retransmits).
CLIENT = """
import socket, struct, sys, time
host, port, n, size, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
socks = [socket.create_connection((host, port), timeout=10) for _ in range(n)]
print("connected", flush=True)
sys.stdin.readline()
for s in socks:
    s.sendall(b"r" * size)
time.sleep(hold)
total = 0
for s in socks:
    total += struct.unpack_from("<I", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104), 100)[0]
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
print(total, flush=True)
"""


def lossy_connections(node: Netns, pod: Netns, host_if: str, cg: ContainerCgroup) -> int:
    """Runs the client in the pod (its namespace and cgroup) against a listener on the node, drops
    its segments where the node receives them; returns the retransmissions its sockets counted."""
    drop_ingress(node, host_if, FRAME)  # only the data segments: no handshake frame has that length
    time.sleep(2 * SAMPLE)  # the collector takes the new qdisc's counters as its baseline first
    srv = node.socket(socket.AF_INET, socket.SOCK_STREAM)
    with srv:
        srv.bind((NODE_IP, 0))
        srv.listen(CONNECTIONS)
        argv = ["ip", "netns", "exec", pod.name, sys.executable, "-c", CLIENT, NODE_IP,
                str(srv.getsockname()[1]), str(CONNECTIONS), str(PAYLOAD), str(HOLD)]  # fmt: skip
        client = subprocess.Popen(
            ["sh", "-c", f'echo $$ > "{cg.procs}" && exec "$@"', "sh", *argv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert client.stdout is not None
            assert client.stdin is not None
            assert client.stdout.readline().strip() == "connected", "the client did not connect"
            client.stdin.write("go\n")
            client.stdin.flush()
            out, _ = client.communicate(timeout=60)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
    assert client.returncode == 0, f"the client failed (exit {client.returncode})"
    return int(out.strip().splitlines()[-1])


@pytest.fixture
def net() -> Iterator[tuple[Netns, Netns, str]]:
    """The node and the pod namespace (te2r-*) and the node's end of the veth (made outside the
    event loop: pyroute2 runs one of its own)."""
    t = tag()
    host_if = f"te2r-{t}h"
    with node_and_pod(f"te2r-{t}", host_if, f"{NODE_IP}/24", f"{POD_IP}/24", sink_port=None) as (node, pod):
        yield node, pod, host_if


async def test_packet_loss_on_a_pod_interface_then_retransmits(
    e2e_cluster: NatsCluster, net: tuple[Netns, Netns, str], tmp_path: Path, e2e_report: Report
) -> None:
    node, pod, host_if = net
    node_name = f"te2r-node-{tag()}"
    url = ",".join(e2e_cluster.urls)
    cni_conf = tmp_path / "cni-net.d"
    cni_conf.mkdir()
    async with admin_client(e2e_cluster) as nc:
        await real.fresh(nc)
        with (
            pod_container_cgroup("te2r-") as cg,
            real.receivers(tmp_path) as rx,
        ):
            wanted = {
                # Every window with a drop is reported (--min-count 1), so the drops add up exactly.
                "cni-collector": ("--node-name", node_name, "--netns", node.name, "--interval", str(SAMPLE),
                                  "--min-count", "1", "--cni-conf-dir", str(cni_conf)),
                # tcp_connect records the sockets' owners (the pod's client) that retransmits run without.
                "ebpf-collector": ("--node-name", node_name, "--programs", "tcp_connect,tcp_retransmit"),
            }  # fmt: skip
            with (
                components(url, tmp_path, exporter_sinks=rx.sinks(), cluster=e2e_cluster) as consumers,
                real.collectors(url, tmp_path, wanted, cluster=e2e_cluster) as cols,
            ):
                await eventually(lambda: all(real.ready(c) for c in cols.values()), "collectors ready", 240)
                retransmitted = await anyio.to_thread.run_sync(lossy_connections, node, pod, host_if, cg)
                assert retransmitted >= 50, retransmitted  # the rule's retransmit_threshold

                async def seen() -> tuple[list[events_pb2.Event], list[events_pb2.Event]]:
                    evs = real.events_of(await stream_messages(nc, EVENTS))
                    loss = [e for e in evs if e.type == "interface" and e.network.interface == host_if]
                    retrans = [
                        e for e in evs if e.type == "tcp_retransmit" and e.context.pod_uid == cg.pod_uid
                    ]
                    return loss, retrans

                async def all_counted() -> bool:
                    loss, retrans = await seen()
                    drops = sum(e.network.drops for e in loss)
                    return (
                        drops == CONNECTIONS + retransmitted
                        and sum(e.kernel.count for e in retrans) == retransmitted
                    )

                try:
                    await eventually(
                        all_counted, "every drop (CNI) and retransmit (eBPF) in TAPIO_EVENTS", 60
                    )
                except AssertionError as e:
                    loss, retrans = await seen()
                    raise AssertionError(
                        f"{e}: drops {[e.network.drops for e in loss]} (want {CONNECTIONS + retransmitted}), "
                        f"retransmits {[e.kernel.count for e in retrans]} (want {retransmitted})"
                    ) from None
                loss, retrans = await seen()
                root = min(loss, key=lambda e: (e.time.ToNanoseconds(), e.id))
                await real.wait_alert(nc, rx, "network_degradation", confidence="high")
                # The eBPF collector sees the whole machine's kernel, whose other retransmits (other
                # suites') would join the incident for its 2 min window: it stops now (it drains and
                # flushes), so the incident and the streams settle.
                stopped = {"ebpf-collector": real.stop_counted(cols["ebpf-collector"])}
                out = await real.outcome(nc, rx, cols, stopped)
                assert all(c.alive() for c in consumers.values()), {
                    n: c.log_tail() for n, c in consumers.items()
                }
    last = real.one_incident(
        e2e_report, out, "packet loss on a pod's veth, retransmits (real collectors)",
        type_="network_degradation", root=root, retransmitted=retransmitted,
        drops=CONNECTIONS + retransmitted,
    )  # fmt: skip
    # The CNI finding: the node's end of the pod's veth, ingress, mapped to the pod's container.
    assert {(e.source, e.action, e.network.direction) for e in loss} == {
        (events_pb2.SOURCE_CNI, "packet_loss", "ingress")
    }, loss
    assert root.context.container_id == f"containerd://{cg.container_id}", root
    assert (root.context.pod_uid, root.network.peer_pod, root.context.node) == (
        cg.pod_uid,
        cg.pod_uid,
        node_name,
    )
    assert {e.context.container_id for e in retrans} == {f"containerd://{cg.container_id}"}, retrans
    assert {e.kernel.daddr for e in retrans} == {NODE_IP}, retrans
    # Its revisions: low on the CNI event alone, then high with the retransmits (>= the threshold).
    revisions = sorted(out.alerts_of_type("network_degradation"), key=lambda a: int(a["revision"]))
    assert revisions[0]["labels"]["confidence"] == "low", revisions[0]
    counted = re.search(r"retransmitted (\d+) TCP segments", last["description"])
    assert counted, last["description"]
    assert int(counted[1]) >= 50, last["description"]
    assert set(last["event_ids"]) >= {root.id}, last
    assert set(last["event_ids"]) & {e.id for e in retrans}, last

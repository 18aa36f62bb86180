"""The CNI collector's source on the real kernel (root): namespaces, veth pairs, real traffic, real
drops (tc cls_bpf on one direction, a peer that is down), real errors (VXLAN), an interface
deleted and re-created under its name, and a veth peer mapped to the process (and its container
cgroup) in the pod's namespace. The collector samples a "node" namespace the test made."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from tapio.events.v1 import events_pb2
from tapio_collector import Output
from tapio_collector_cni.adapters.netlink import RouteSocket
from tapio_collector_cni.settings import CniSettings
from tapio_collector_cni.source import CniSource
from tapio_common.metrics import ComponentMetrics
from tapio_common.model import Event, Severity
from tapio_publisher.subjects import event_subject
from tapio_testing.cgroupfs import ContainerCgroup, pod_container_cgroup
from tapio_testing.netfaults import (
    send_ce_marked_vxlan,
    send_udp,
    vxlan_listening,
    vxlan_with_unreachable_remote,
)
from tapio_testing.netns import NETNS_DIR, Netns, node_and_pod, pin_neighbours, require_netns, veth
from tapio_testing.tcdrop import drop_egress, drop_ingress, udp_frame_length

pytestmark = pytest.mark.root
PREFIX = "tcni-it-"
HOST_IF = "tcni-h0"
NODE_IP, POD_IP = "10.231.7.1", "10.231.7.2"


class Recorder(Output):
    """The harness's Output, recording what the source emits instead of publishing it (the
    end-to-end test through JetStream is test_cni_collector_e2e.py)."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(ComponentMetrics("cni_collector_test"), "tcni-node", data_dir)
        self.events: list[Any] = []

    async def emit_many(self, events: Iterable[events_pb2.Event]) -> None:
        self.events.extend(events)


def _model(pb: Any) -> Event:
    from tapio_common.model.fast import event_from_pb

    return event_from_pb(pb)


@pytest.fixture
def portal() -> Iterator[BlockingPortal]:
    """The source runs on an event loop in a thread of its own; the test drives the kernel
    (pyroute2's synchronous API, sockets) from the main thread, as traffic would arrive."""
    with start_blocking_portal() as p:
        yield p


@pytest.fixture
def net() -> Iterator[tuple[Netns, Netns]]:
    require_netns()
    with node_and_pod(PREFIX, HOST_IF, f"{NODE_IP}/24", f"{POD_IP}/24") as pair:
        yield pair


@pytest.fixture
def pod_process(net: tuple[Netns, Netns]) -> Iterator[tuple[subprocess.Popen[bytes], ContainerCgroup]]:
    _node, pod = net
    try:
        cm = pod_container_cgroup("tcni-cg-")
        cg = cm.__enter__()
    except OSError as e:
        pytest.skip(f"cannot make a cgroup v2 container cgroup: {e}")
    proc = pod.spawn(["sleep", "300"], cgroup_procs=cg.procs)
    try:
        deadline = time.monotonic() + 5
        while str(proc.pid) not in cg.procs.read_text().split():
            assert time.monotonic() < deadline, "process never joined its cgroup"
            time.sleep(0.01)
        yield proc, cg
    finally:
        proc.kill()
        proc.wait()
        cm.__exit__(None, None, None)


def _source(tmp_path: Path, **overrides: Any) -> tuple[CniSource, Recorder]:
    settings = CniSettings(netns=f"{PREFIX}node", cni_conf_dir=str(tmp_path / "net.d"), **overrides)
    return CniSource(settings), Recorder(tmp_path)


def _sampled(portal: BlockingPortal, tmp_path: Path, act: Callable[[], None]) -> Recorder:
    """A baseline sample, `act()` on the kernel, a second sample: what the source emitted."""
    source, out = _source(tmp_path)
    portal.call(source.open)
    try:
        assert portal.call(source.sample_once, out) == []  # the first sample is a baseline only
        act()
        portal.call(source.sample_once, out)
    finally:
        portal.call(source.close)
    return out


def _by(events: list[Any], action: str, direction: str) -> list[Event]:
    out = [_model(e) for e in events]
    return [
        e for e in out if e.action == action and e.network is not None and e.network.direction == direction
    ]


def test_drops_on_each_direction_with_the_peer_container(
    portal: BlockingPortal,
    net: tuple[Netns, Netns],
    pod_process: tuple[subprocess.Popen[bytes], ContainerCgroup],
    tmp_path: Path,
) -> None:
    node, pod = net
    proc, cg = pod_process
    drop_ingress(node, HOST_IF, udp_frame_length(100))  # from the pod: 1 in 4 dropped
    drop_egress(node, HOST_IF, udp_frame_length(200))  # to the pod: 1 in 2 dropped
    from_pod, from_node = pod.socket(), node.socket()

    def traffic() -> None:
        for n in range(800):
            from_pod.sendto(b"i" * (100 if n % 4 == 0 else 10), (NODE_IP, 9))
            from_node.sendto(b"e" * (200 if n % 2 == 0 else 10), (POD_IP, 9))
        time.sleep(0.1)

    out = _sampled(portal, tmp_path, traffic)
    ingress = _by(out.events, "packet_loss", "ingress")
    egress = _by(out.events, "packet_loss", "egress")
    assert len(ingress) == 1
    assert len(egress) == 1
    i, e = ingress[0], egress[0]
    assert i.network is not None
    assert e.network is not None
    assert i.network.interface == HOST_IF
    assert (i.network.drops, i.network.packets) == (200, 800)
    assert i.network.loss_ratio == pytest.approx(0.25)
    assert i.attributes["qdisc_drops"] == "200"
    assert (e.network.drops, e.network.packets) == (400, 800)
    assert e.network.loss_ratio == pytest.approx(0.5)
    assert e.severity is Severity.ERROR
    assert i.network.window_seconds > 0
    assert event_subject(i) == f"tapio.events.cni.{HOST_IF}.ingress"
    assert event_subject(e) == f"tapio.events.cni.{HOST_IF}.egress"
    for ev in (i, e):  # the veth's peer is the pod's eth0: mapped to the process and its container
        assert ev.context.pid == proc.pid
        assert ev.context.comm == "sleep"
        assert ev.context.container_id == f"containerd://{cg.container_id}"
        assert ev.context.pod_uid == cg.pod_uid
        assert ev.network is not None
        assert ev.network.peer_pod == cg.pod_uid
        assert ev.context.node == "tcni-node"
    assert _by(out.events, "errors", "ingress") == []
    assert out.readiness()[0]


def test_traffic_into_a_peer_that_is_down(
    portal: BlockingPortal, net: tuple[Netns, Netns], tmp_path: Path
) -> None:
    node, pod = net

    def peer_down() -> None:
        pod.down("eth0")
        send_udp(node, POD_IP, 300)

    out = _sampled(portal, tmp_path, peer_down)
    egress = _by(out.events, "packet_loss", "egress")
    assert len(egress) == 1
    n = egress[0].network
    assert n is not None
    assert (n.drops, n.packets, n.loss_ratio) == (300, 300, 1.0)
    assert egress[0].attributes["device_drops"] == "300"
    # no process in the pod namespace here: the peer namespace is known, no container
    assert egress[0].context.container_id == ""
    assert _by(out.events, "packet_loss", "ingress") == []


def test_interface_errors_each_direction(
    portal: BlockingPortal, net: tuple[Netns, Netns], tmp_path: Path
) -> None:
    node, _pod = net
    neighbour = vxlan_with_unreachable_remote(node, "tcni-vxo")
    vxlan_listening(node, "tcni-vxi")

    def errors() -> None:
        send_udp(node, neighbour, 150)
        send_ce_marked_vxlan(node, 120)
        time.sleep(0.05)

    out = _sampled(portal, tmp_path, errors)
    tx = [e for e in _by(out.events, "errors", "egress") if e.network and e.network.interface == "tcni-vxo"]
    rx = [e for e in _by(out.events, "errors", "ingress") if e.network and e.network.interface == "tcni-vxi"]
    assert len(tx) == 1
    assert len(rx) == 1
    assert tx[0].network is not None
    assert rx[0].network is not None
    assert (tx[0].network.errors, tx[0].network.loss_ratio) == (150, 1.0)
    assert (rx[0].network.errors, rx[0].network.loss_ratio) == (120, 1.0)
    assert tx[0].attributes["kind"] == "vxlan"
    assert event_subject(rx[0]) == "tapio.events.cni.tcni-vxi.ingress"


def test_quiet_traffic_emits_nothing(
    portal: BlockingPortal, net: tuple[Netns, Netns], tmp_path: Path
) -> None:
    node, pod = net

    def quiet() -> None:
        send_udp(node, POD_IP, 500)
        send_udp(pod, NODE_IP, 500)

    assert _sampled(portal, tmp_path, quiet).events == []


def test_below_the_thresholds_emits_nothing(
    portal: BlockingPortal, net: tuple[Netns, Netns], tmp_path: Path
) -> None:
    node, _pod = net
    drop_egress(node, HOST_IF, udp_frame_length(200))
    sock = node.socket()

    def few_drops() -> None:
        for i in range(2000):  # 5 drops of 2000: 0.25 %, under 1 % and under 100 drops
            sock.sendto(b"e" * (200 if i % 400 == 0 else 10), (POD_IP, 9))

    assert _sampled(portal, tmp_path, few_drops).events == []


def test_interface_recreated_under_its_name(
    portal: BlockingPortal, net: tuple[Netns, Netns], tmp_path: Path
) -> None:
    node, pod = net
    source, out = _source(tmp_path)
    portal.call(source.open)
    try:
        portal.call(source.sample_once, out)
        pod.down("eth0")
        send_udp(node, POD_IP, 400)  # 400 tx drops on the first generation
        old_index = node.index(HOST_IF)
        node.delete_link(HOST_IF)
        veth(node, HOST_IF, pod, "eth0", f"{NODE_IP}/24", f"{POD_IP}/24")
        new_index = node.index(HOST_IF)
        assert new_index != old_index
        portal.call(source.sample_once, out)
        assert out.events == []  # a new generation starts a baseline: its 0 counters are no reset
        pin_neighbours(node, HOST_IF, NODE_IP, pod, "eth0", POD_IP)  # the new pair has new addresses
        pod.down("eth0")
        send_udp(node, POD_IP, 150)
        portal.call(source.sample_once, out)
    finally:
        portal.call(source.close)
    egress = _by(out.events, "packet_loss", "egress")
    assert len(egress) == 1
    assert egress[0].network is not None
    assert egress[0].network.drops == 150
    assert egress[0].attributes["ifindex"] == str(new_index)


def test_mapping_a_peer_in_another_namespace_sends_the_collector_no_signal(
    net: tuple[Netns, Netns], pod_process: tuple[subprocess.Popen[bytes], ContainerCgroup]
) -> None:
    """Sampling a namespace given by --netns, the first veth peer mapped asks that namespace for
    the peer's namespace id. pyroute2's IPRoute(netns=...) did that through a forked helper it
    stops with SIGTERM, which under uvloop (the harness's loop) also reached the collector's own
    SIGTERM handler: the collector stopped, exit 0, at its first finding."""
    proc, _cg = pod_process
    received: list[int] = []

    async def main() -> int:
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:

            async def watch() -> None:
                async for signum in signals:
                    received.append(int(signum))

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                sock = await anyio.to_thread.run_sync(RouteSocket, str(NETNS_DIR / f"{PREFIX}node"))
                try:
                    nsid = await anyio.to_thread.run_sync(sock.nsid_of, f"/proc/{proc.pid}/ns/net")
                finally:
                    sock.close()
                await anyio.sleep(0.5)  # a signal, if any, is delivered by now
                tg.cancel_scope.cancel()
        return int(nsid)

    nsid = anyio.run(main, backend="asyncio", backend_options={"use_uvloop": True})
    assert nsid >= 0  # the pod's namespace has an id in the node's: the veth's link-netnsid
    assert received == []

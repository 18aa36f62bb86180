"""The shared netns/veth/tc-drop helpers do what they promise, on the real kernel (root)."""

from __future__ import annotations

import time

import pytest

from tapio_testing.netns import Netns, namespaces, netns_unavailable, remove_leftovers, veth
from tapio_testing.tcdrop import drop_egress, drop_ingress, udp_frame_length

pytestmark = pytest.mark.root
PREFIX = "tcni-sup-"


@pytest.fixture
def pair() -> object:
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    remove_leftovers(PREFIX)
    with namespaces(f"{PREFIX}node", f"{PREFIX}pod") as (node, pod):
        veth(node, f"{PREFIX}h0", pod, "eth0", "10.231.0.1/24", "10.231.0.2/24")
        yield node, pod


def _qdisc_drops(ns: Netns, ifname: str) -> dict[str, int]:
    out = {}
    for q in ns.ipr.get_qdiscs(ns.index(ifname)):
        stats = q.get_attr("TCA_STATS2")
        if stats is not None:
            out[q.get_attr("TCA_KIND")] = stats.get_attr("TCA_STATS_QUEUE")["drops"]
    return out


def test_exact_drops_on_each_direction(pair: tuple[Netns, Netns]) -> None:
    node, pod = pair
    host = f"{PREFIX}h0"
    drop_ingress(node, host, udp_frame_length(100))
    drop_egress(node, host, udp_frame_length(200))
    from_pod, from_node = pod.socket(), node.socket()
    for i in range(40):
        from_pod.sendto(b"i" * (100 if i % 4 == 0 else 10), ("10.231.0.1", 9))
        from_node.sendto(b"e" * (200 if i % 2 == 0 else 10), ("10.231.0.2", 9))
    time.sleep(0.1)
    assert _qdisc_drops(node, host) == {"ingress": 10, "htb": 20}


def test_namespaces_are_removed(pair: tuple[Netns, Netns]) -> None:
    node, _pod = pair
    assert node.path.exists()
    node.close()
    assert not node.path.exists()

"""The network of an isolated test NATS cluster: one network namespace per node, each joined by a
veth pair to a bridge in a hub namespace, and one more veth from the hub to this (the root)
namespace, so the test's own clients and component processes reach every node at its address.
Setting a node's port on the hub bridge down partitions that node from the other nodes and from
every client; setting it up heals the partition.

Names: `<prefix><tag>-h` (hub), `<prefix><tag>-<i>` (node i), `<prefix><tag>h` (the root side veth),
with a random tag per cluster so concurrent clusters never collide. Everything is removed by
close(), and `remove_leftovers(prefix)` clears what a killed run left. Needs root.
"""

from __future__ import annotations

import ipaddress
import secrets
import subprocess

from pyroute2 import IPRoute

from tapio_testing.netns import Netns, netns_unavailable

BRIDGE = "br0"
SUBNETS = ipaddress.IPv4Network("10.213.0.0/16")  # a /24 of it per cluster, one not in use here


def _used_networks() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks of every address of this (the root) namespace."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True)
    nets = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            nets.append(ipaddress.IPv4Interface(parts[parts.index("inet") + 1]).network)
    return nets


def _free_subnet() -> ipaddress.IPv4Network:
    used = _used_networks()
    for _ in range(100):
        net = list(SUBNETS.subnets(new_prefix=24))[secrets.randbelow(255) + 1]
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError(f"no free /24 in {SUBNETS} for a test cluster network")


class ClusterNet:
    """The hub, one namespace per node and the root-side link; `address(i)` of node i."""

    def __init__(self, prefix: str, size: int) -> None:
        reason = netns_unavailable()
        if reason:
            raise RuntimeError(f"an isolated cluster needs network namespaces: {reason}")
        self.tag = f"{prefix}{secrets.token_hex(2)}"
        self.subnet = _free_subnet()
        hosts = list(self.subnet.hosts())
        self.host_ip = str(hosts[0])
        self.node_ips = [str(hosts[10 + i]) for i in range(size)]
        self.hub = Netns(f"{self.tag}-h")
        self.nodes = [Netns(f"{self.tag}-{i}") for i in range(size)]
        self.root_link = f"{self.tag}h"
        self._made: list[Netns] = []

    def open(self) -> ClusterNet:
        try:
            self._made.append(self.hub.__enter__())
            hub = self.hub.ipr
            hub.link("add", ifname=BRIDGE, kind="bridge")
            hub.link("set", index=self.hub.index(BRIDGE), state="up")
            with IPRoute() as ipr:
                ipr.link("add", ifname=self.root_link, kind="veth",
                         peer={"ifname": "host", "net_ns_fd": str(self.hub.path)})  # fmt: skip
                idx = ipr.link_lookup(ifname=self.root_link)[0]
                ipr.addr("add", index=idx, address=self.host_ip, prefixlen=self.subnet.prefixlen)
                ipr.link("set", index=idx, state="up")
            self._attach("host")
            for i, ns in enumerate(self.nodes):
                self._made.append(ns.__enter__())
                port = self.port(i)
                hub.link("add", ifname=port, kind="veth", peer={"ifname": "eth0", "net_ns_fd": str(ns.path)})
                self._attach(port)
                ns.add_address("eth0", f"{self.node_ips[i]}/{self.subnet.prefixlen}")
                ns.up("eth0")
        except BaseException:
            self.close()
            raise
        return self

    def _attach(self, ifname: str) -> None:
        hub = self.hub.ipr
        hub.link("set", index=self.hub.index(ifname), master=self.hub.index(BRIDGE))
        hub.link("set", index=self.hub.index(ifname), state="up")

    @staticmethod
    def port(i: int) -> str:
        """Node i's port on the hub bridge (the hub end of its veth)."""
        return f"n{i}"

    def cut(self, i: int) -> None:
        """Partitions node i: its link to the bridge goes down (nothing reaches it, nothing leaves).
        Through `ip` (not netlink in-process), so it may be called from a running event loop."""
        self._link(self.port(i), "down")

    def join(self, i: int) -> None:
        """Heals the partition of node i."""
        self._link(self.port(i), "up")

    def _link(self, ifname: str, state: str) -> None:
        subprocess.run(
            ["ip", "-n", self.hub.name, "link", "set", ifname, state], check=True, capture_output=True
        )

    def exec_prefix(self, i: int) -> list[str]:
        """The command prefix that runs a program inside node i's namespace."""
        return ["ip", "netns", "exec", self.nodes[i].name]

    def close(self) -> None:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=self.root_link)
            if found:
                ipr.link("del", index=found[0])
        for ns in reversed(self._made):
            ns.close()
        self._made.clear()

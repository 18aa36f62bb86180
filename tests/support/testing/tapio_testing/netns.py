"""Real network namespaces, veth pairs and traffic for root tests and benchmarks (CNI, eBPF).

Every name a test makes carries its helper's prefix (`tcni-`, `tbpf-`, ...) so suites running at
the same time never collide, and everything is removed on exit (`Netns` is a context manager;
`remove_leftovers(prefix)` clears what a killed run left). Traffic stays inside namespaces the test
made. Needs root; `require_netns()` skips with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import IPRoute, NetNS, netns

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def netns_unavailable() -> str:
    """Why network namespaces cannot be made here ("" when they can)."""
    if os.geteuid() != 0:
        return "network namespaces and veth need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    if not Path("/proc/self/ns/net").exists():
        return "this kernel has no network namespaces"
    return ""


def require_netns() -> None:
    """Skips the calling test with the reason when namespaces cannot be made."""
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def in_thread_netns(name: str, fn: Any, *args: Any) -> Any:
    """Runs `fn(*args)` on a fresh thread that lives in netns `name`; returns its result. Sockets
    made there stay in that namespace after the thread ends."""
    result: list[Any] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            _setns(str(NETNS_DIR / name))
            result.append(fn(*args))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(e)

    t = threading.Thread(target=target, name=f"netns-{name}")
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]


def socket_in(name: str, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM) -> socket.socket:
    """A socket of netns `name` (usable from any thread)."""
    return in_thread_netns(name, socket.socket, family, kind)  # type: ignore[no-any-return]


class Netns:
    """A named network namespace (`/run/netns/<name>`), with `lo` up; removed on exit."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = NETNS_DIR / name
        self._ipr: NetNS | None = None

    def __enter__(self) -> Netns:
        if self.path.exists():
            netns.remove(self.name)
        netns.create(self.name)
        self.ipr.link("set", index=self.index("lo"), state="up")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ipr(self) -> NetNS:
        """A pyroute2 netlink handle inside this namespace."""
        if self._ipr is None:
            self._ipr = NetNS(self.name)
        return self._ipr

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None
        if self.path.exists():
            netns.remove(self.name)

    def index(self, ifname: str) -> int:
        found = self.ipr.link_lookup(ifname=ifname)
        if not found:
            raise LookupError(f"no interface {ifname} in netns {self.name}")
        return int(found[0])

    def exec(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Runs a command inside the namespace and waits (check=True)."""
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], check=True, text=True, **kwargs)

    def spawn(self, argv: Sequence[str], cgroup_procs: Path | None = None) -> subprocess.Popen[bytes]:
        """Starts a long-lived process inside the namespace; with `cgroup_procs` (a cgroup's
        `cgroup.procs` file) it is moved into that cgroup before it execs."""
        cmd = ["ip", "netns", "exec", self.name, *argv]
        if cgroup_procs is not None:
            cmd = ["sh", "-c", f'echo $$ > "{cgroup_procs}" && exec "$@"', "sh", *cmd]
        return subprocess.Popen(cmd)

    def socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM) -> socket.socket:
        return socket_in(self.name, family, kind)

    def disable_ipv6(self) -> None:
        """No IPv6 in this namespace: no router solicitations or MLD reports in the counters."""
        for key in ("all", "default"):
            self.exec(["sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1"])

    def add_address(self, ifname: str, cidr: str) -> None:
        addr, prefix = cidr.split("/")
        self.ipr.addr("add", index=self.index(ifname), address=addr, prefixlen=int(prefix))

    def up(self, ifname: str) -> None:
        self.ipr.link("set", index=self.index(ifname), state="up")

    def down(self, ifname: str) -> None:
        self.ipr.link("set", index=self.index(ifname), state="down")

    def delete_link(self, ifname: str) -> None:
        self.ipr.link("del", index=self.index(ifname))


def veth(
    host: Netns,
    host_name: str,
    peer: Netns,
    peer_name: str,
    host_cidr: str | None = None,
    peer_cidr: str | None = None,
) -> tuple[int, int]:
    """A veth pair `host_name` (in `host`) <-> `peer_name` (in `peer`), both up, with addresses
    when given; returns (host ifindex, peer ifindex)."""
    host.ipr.link(
        "add", ifname=host_name, kind="veth", peer={"ifname": peer_name, "net_ns_fd": str(peer.path)}
    )
    if host_cidr:
        host.add_address(host_name, host_cidr)
    if peer_cidr:
        peer.add_address(peer_name, peer_cidr)
    host.up(host_name)
    peer.up(peer_name)
    return host.index(host_name), peer.index(peer_name)


def mac_of(ns: Netns, ifname: str) -> str:
    return str(ns.ipr.get_links(ns.index(ifname))[0].get_attr("IFLA_ADDRESS"))


def pin_neighbours(a: Netns, a_if: str, a_ip: str, b: Netns, b_if: str, b_ip: str) -> None:
    """Permanent neighbour entries both ways, so traffic needs no ARP: every packet sent reaches
    the device (none waits for, or is lost in, address resolution), even once the peer is down."""
    nud_permanent = 0x80
    a.ipr.neigh("replace", dst=b_ip, lladdr=mac_of(b, b_if), ifindex=a.index(a_if), state=nud_permanent)
    b.ipr.neigh("replace", dst=a_ip, lladdr=mac_of(a, a_if), ifindex=b.index(b_if), state=nud_permanent)


def remove_leftovers(prefix: str) -> None:
    """Deletes namespaces and root-namespace links named `prefix*` (left by a killed run)."""
    for path in NETNS_DIR.glob(f"{prefix}*") if NETNS_DIR.exists() else ():
        with contextlib.suppress(OSError):
            netns.remove(path.name)
    with IPRoute() as ipr:
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME") or ""
            if name.startswith(prefix):
                with contextlib.suppress(Exception):
                    ipr.link("del", index=link["index"])


@contextlib.contextmanager
def namespaces(*names: str) -> Iterator[list[Netns]]:
    """Several namespaces at once, all removed on exit (even when one fails to come up)."""
    made: list[Netns] = []
    try:
        for name in names:
            made.append(Netns(name).__enter__())
        yield made
    finally:
        for ns in reversed(made):
            ns.close()


@contextlib.contextmanager
def node_and_pod(
    prefix: str, host_if: str, node_cidr: str, pod_cidr: str, sink_port: int | None = 9
) -> Iterator[tuple[Netns, Netns]]:
    """A "node" and a "pod" namespace joined by a veth (`host_if` in the node, `eth0` in the pod),
    IPv6 off, neighbours pinned, and (with `sink_port`) a UDP receiver on that port at both ends
    so traffic sent there draws no ICMP port-unreachable replies: the counters hold only the
    packets a test sends. Everything is removed on exit."""
    remove_leftovers(prefix)
    with namespaces(f"{prefix}node", f"{prefix}pod") as (node, pod):
        node.disable_ipv6()
        pod.disable_ipv6()
        veth(node, host_if, pod, "eth0", node_cidr, pod_cidr)
        node_ip, pod_ip = node_cidr.split("/")[0], pod_cidr.split("/")[0]
        pin_neighbours(node, host_if, node_ip, pod, "eth0", pod_ip)
        sinks: list[socket.socket] = []
        try:
            if sink_port is not None:
                for ns, ip in ((node, node_ip), (pod, pod_ip)):
                    sink = ns.socket()
                    sinks.append(sink)
                    sink.bind((ip, sink_port))
            yield node, pod
        finally:
            for sink in sinks:
                sink.close()

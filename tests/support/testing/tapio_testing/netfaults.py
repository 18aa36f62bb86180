"""Real interface errors, counted by the kernel, on a VXLAN device inside a test namespace.

- `vxlan_with_unreachable_remote(ns, name)` + `send_udp(...)`: every packet sent into the device
  fails to find a route to the remote: `tx_errors` (and `tx_carrier_errors`) go up by one each.
- `vxlan_listening(ns, name)` + `send_ce_marked_vxlan(ns, count)`: VXLAN datagrams whose outer IP
  header is ECN Congestion-Experienced around an inner packet that is not ECN-capable: the
  device refuses each one as a frame error (`rx_errors`, `rx_frame_errors`).
The exact number of errors is the number of packets sent (plus none: no ARP, a static neighbour).
"""

from __future__ import annotations

import socket
import struct

from tapio_testing.netns import Netns

VNI = 42
VXLAN_PORT = 4789
LISTEN_VNI = 43  # the receiving device has its own VNI and port: both can live in one namespace
LISTEN_PORT = 4790
IP_TOS_CE = 0x3


def vxlan_with_unreachable_remote(ns: Netns, name: str, cidr: str = "10.232.0.1/24") -> str:
    """A VXLAN device whose remote (192.0.2.1, TEST-NET-1) has no route in `ns`; returns the
    address of a static neighbour to send to."""
    ns.ipr.link(
        "add", ifname=name, kind="vxlan", vxlan_id=VNI, vxlan_group="192.0.2.1", vxlan_port=VXLAN_PORT
    )
    ns.add_address(name, cidr)
    ns.up(name)
    base = cidr.split("/")[0].rsplit(".", 1)[0]
    neighbour = f"{base}.2"
    ns.ipr.neigh("add", dst=neighbour, lladdr="02:00:00:00:00:02", ifindex=ns.index(name), state=0x80)
    return neighbour


def send_udp(ns: Netns, address: str, count: int, payload: int = 10) -> None:
    sock = ns.socket()
    try:
        for _ in range(count):
            sock.sendto(b"u" * payload, (address, 9))
    finally:
        sock.close()


def vxlan_listening(ns: Netns, name: str) -> None:
    """A VXLAN device receiving on 127.0.0.1:4790 of `ns`."""
    ns.ipr.link(
        "add", ifname=name, kind="vxlan", vxlan_id=LISTEN_VNI, vxlan_local="127.0.0.1", vxlan_port=LISTEN_PORT
    )
    ns.up(name)


def _ip_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ce_marked_vxlan_datagram() -> bytes:
    """VXLAN header + Ethernet + IPv4 (TOS 0: not ECN-capable) + UDP carrying b"tapio"."""
    vxlan = struct.pack("!II", 0x08000000, LISTEN_VNI << 8)
    eth = bytes.fromhex("020000000001") + bytes.fromhex("020000000002") + b"\x08\x00"
    body = b"tapio"
    udp = struct.pack("!HHHH", 1000, 9, 8 + len(body), 0) + body
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, b"\n\0\0\1", b"\n\0\0\2")
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    return vxlan + eth + ip + udp


def send_ce_marked_vxlan(ns: Netns, count: int) -> None:
    """`count` datagrams the VXLAN device of `vxlan_listening` counts as receive errors."""
    sock = ns.socket()
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, IP_TOS_CE)
        datagram = ce_marked_vxlan_datagram()
        for _ in range(count):
            sock.sendto(datagram, ("127.0.0.1", LISTEN_PORT))
    finally:
        sock.close()

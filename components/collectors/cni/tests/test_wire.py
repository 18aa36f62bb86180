"""rtnetlink encoding and decoding on messages built byte by byte as the kernel lays them out."""

from __future__ import annotations

import struct

import pytest

from tapio_collector_cni.domain import wire
from tapio_collector_cni.domain.wire import LinkInfo, QdiscDrops


def _attr(atype: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), atype) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _msg(msg_type: int, seq: int, body: bytes, flags: int = wire.NLM_F_MULTI) -> bytes:
    raw = struct.pack("=IHHII", 16 + len(body), msg_type, flags, seq, 0) + body
    return raw + b"\0" * (-len(raw) % 4)


def _done(seq: int) -> bytes:
    return _msg(wire.NLMSG_DONE, seq, struct.pack("=i", 0))


def stats_msg(seq: int, index: int, counters: list[int]) -> bytes:
    body = struct.pack("=BBHII", 0, 0, 0, index, 1) + _attr(
        wire.IFLA_STATS_LINK_64, struct.pack("=25Q", *counters)
    )
    return _msg(wire.RTM_NEWSTATS, seq, body)


def link_msg(
    seq: int, index: int, name: str, kind: str = "", peer: int = 0, netnsid: int | None = None
) -> bytes:
    body = struct.pack("=BBHiII", 0, 0, 1, index, 0, 0)
    body += _attr(wire.IFLA_IFNAME, name.encode() + b"\0")
    body += _attr(wire.IFLA_OPERSTATE, b"\x06")
    if kind:
        body += _attr(wire.IFLA_LINKINFO, _attr(wire.IFLA_INFO_KIND, kind.encode() + b"\0"))
    if peer:
        body += _attr(wire.IFLA_LINK, struct.pack("=I", peer))
    if netnsid is not None:
        body += _attr(wire.IFLA_LINK_NETNSID, struct.pack("=i", netnsid))
    return _msg(wire.RTM_NEWLINK, seq, body)


def qdisc_msg(seq: int, index: int, kind: str, handle: int, parent: int, drops: int) -> bytes:
    body = struct.pack("=BBHiIII", 0, 0, 0, index, handle, parent, 0)
    body += _attr(wire.TCA_KIND, kind.encode() + b"\0")
    queue = struct.pack("=IIIII", 0, 0, drops, 0, 0)
    body += _attr(wire.TCA_STATS2 | 0x8000, _attr(wire.TCA_STATS_QUEUE, queue))
    return _msg(wire.RTM_NEWQDISC, seq, body)


def decode_all(data: bytes, seq: int, decode: object, into: dict[int, object]) -> bool:
    for msg_type, _flags, payload in wire.messages(data, seq):
        if msg_type == wire.NLMSG_DONE:
            return True
        decode(payload, into)  # type: ignore[operator]
    return False


def test_requests_are_dumps_of_the_right_type() -> None:
    for build, msg_type in (
        (wire.stats_request, wire.RTM_GETSTATS),
        (wire.links_request, wire.RTM_GETLINK),
        (wire.qdiscs_request, wire.RTM_GETQDISC),
    ):
        raw = build(7)
        length, t, flags, seq, _pid = struct.unpack_from("=IHHII", raw)
        assert (length, t, seq) == (len(raw), msg_type, 7)
        assert flags & wire.NLM_F_DUMP == wire.NLM_F_DUMP


def test_stats_fold_missed_into_rx_drops() -> None:
    counters = list(range(1, 26))  # rx_packets=1, tx_packets=2, ... rx_dropped=7, tx_dropped=8, rx_missed=16
    data = stats_msg(3, 12, counters) + _done(3)
    into: dict[int, wire.Stats] = {}
    assert decode_all(data, 3, wire.decode_stats, into)  # type: ignore[arg-type]
    assert into == {12: (1, 2, 3, 4, 5, 6, 7 + 16, 8)}


def test_messages_of_another_request_are_ignored() -> None:
    data = stats_msg(2, 1, [9] * 25) + stats_msg(3, 2, [1] * 25) + _done(3)
    into: dict[int, wire.Stats] = {}
    decode_all(data, 3, wire.decode_stats, into)  # type: ignore[arg-type]
    assert list(into) == [2]


def test_links_with_kind_and_veth_peer() -> None:
    data = link_msg(1, 1, "lo") + link_msg(1, 5, "veth12ab", "veth", peer=2, netnsid=3) + _done(1)
    into: dict[int, LinkInfo] = {}
    decode_all(data, 1, wire.decode_link, into)  # type: ignore[arg-type]
    assert into[1] == LinkInfo(1, "lo", operstate="up")
    assert into[5] == LinkInfo(5, "veth12ab", "veth", 2, 3, 0, "up")


def test_qdisc_directions() -> None:
    data = (
        qdisc_msg(4, 2, "htb", 0x10000, wire.TC_H_ROOT, 17)
        + qdisc_msg(4, 2, "pfifo", 0x20000, 0x10001, 99)  # a child: already in the root's count
        + qdisc_msg(4, 2, "ingress", 0xFFFF0000, wire.TC_H_INGRESS, 5)
        + qdisc_msg(4, 3, "noqueue", 0, wire.TC_H_ROOT, 0)
        + _done(4)
    )
    into: dict[int, QdiscDrops] = {}
    decode_all(data, 4, wire.decode_qdisc, into)  # type: ignore[arg-type]
    assert into == {2: QdiscDrops(egress=17, egress_id="htb:10000", ingress=5, ingress_id="ingress:ffff0000")}


def test_kernel_error_is_raised_with_errno() -> None:
    err = _msg(wire.NLMSG_ERROR, 9, struct.pack("=i", -95) + b"\0" * 16)
    with pytest.raises(wire.WireError) as info:
        list(wire.messages(err, 9))
    assert info.value.errno == 95


def test_interrupted_dump_is_read_to_its_end_with_the_flag() -> None:
    data = stats_msg(5, 1, [0] * 25)
    flagged = data[:6] + struct.pack("=H", wire.NLM_F_MULTI | wire.NLM_F_DUMP_INTR) + data[8:]
    got = [
        (t, f & wire.NLM_F_DUMP_INTR)
        for t, f, _p in wire.messages(flagged + stats_msg(5, 2, [0] * 25) + _done(5), 5)
    ]
    assert got == [(wire.RTM_NEWSTATS, wire.NLM_F_DUMP_INTR), (wire.RTM_NEWSTATS, 0), (wire.NLMSG_DONE, 0)]


def test_truncated_message() -> None:
    data = stats_msg(5, 1, [0] * 25)
    with pytest.raises(wire.WireError, match="malformed"):
        list(wire.messages(data[:-8], 5))

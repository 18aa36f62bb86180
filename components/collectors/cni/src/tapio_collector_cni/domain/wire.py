"""rtnetlink wire format of the three dumps the sampler asks for, encoded and decoded with struct:
RTM_GETSTATS (64-bit link counters), RTM_GETLINK (names, kinds, veth peers) and RTM_GETQDISC
(qdisc drop counters). Pure: bytes in, tuples out; the socket lives in `adapters.netlink`.

Why not pyroute2's message classes on this path: they parse every attribute of every message
into dicts; a 1,000-link RTM_GETLINK dump costs ~470 ms of CPU that way (`bench/cni_collector.py`
prints it), against a few milliseconds for these decoders, which read only the fields used.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import attrs

from tapio_collector_cni.errors import CniError

# netlink
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_DUMP = 0x300
NLM_F_DUMP_INTR = 0x10
# rtnetlink message types
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_NEWQDISC = 36
RTM_GETQDISC = 38
RTM_NEWSTATS = 92
RTM_GETSTATS = 94
# attributes
IFLA_IFNAME = 3
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
IFLA_EXT_MASK = 29
IFLA_LINK_NETNSID = 37
RTEXT_FILTER_SKIP_STATS = 1 << 3
IFLA_STATS_LINK_64 = 1
TCA_KIND = 1
TCA_STATS2 = 7
TCA_STATS_QUEUE = 3
NLA_TYPE_MASK = 0x3FFF
TC_H_ROOT = 0xFFFFFFFF
TC_H_INGRESS = 0xFFFFFFF1  # parent of the ingress and clsact qdiscs

_NLMSGHDR = struct.Struct("=IHHII")
_RTATTR = struct.Struct("=HH")
_IFSTATS = struct.Struct("=BBHII")  # family, pad1, pad2, ifindex, filter_mask
_IFINFO = struct.Struct("=BBHiII")  # family, pad, type, index, flags, change
_TCMSG = struct.Struct("=BBHiIII")  # family, pad1, pad2, ifindex, handle, parent, info
# rtnl_link_stats64: the first 16 u64 (rx/tx packets, bytes, errors, dropped, multicast,
# collisions, 6 rx error kinds ending with rx_missed_errors at index 15).
_STATS64 = struct.Struct("=16Q")
_GNET_QUEUE = struct.Struct("=IIIII")  # qlen, backlog, drops, requeues, overlimits
_U32 = struct.Struct("=I")
_S32 = struct.Struct("=i")
_HDR = _NLMSGHDR.size

OPERSTATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")

Stats = tuple[int, int, int, int, int, int, int, int]
"""Counters of one link: rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors,
rx_drops (rx_dropped + rx_missed_errors, as /proc/net/dev folds them), tx_dropped."""


class WireError(CniError):
    """The kernel answered with an error (`errno`), or the dump was malformed."""

    def __init__(self, errno: int, what: str) -> None:
        super().__init__(what)
        self.errno = errno


@attrs.frozen(slots=True)
class LinkInfo:
    """What the collector needs of a link besides its counters."""

    index: int
    name: str
    kind: str = ""
    peer_index: int = 0  # IFLA_LINK: for a veth, the peer's ifindex (in the peer's namespace)
    peer_netnsid: int = -1  # IFLA_LINK_NETNSID: the peer's namespace, -1 = same namespace/none
    master: int = 0
    operstate: str = "unknown"


@attrs.frozen(slots=True)
class QdiscDrops:
    """Drop counters of the qdiscs of one link that say a direction: the root (egress) qdisc, the
    ingress/clsact qdisc. `*_id` (handle and kind) tells a re-created qdisc from a wrapped counter."""

    egress: int = 0
    egress_id: str = ""
    ingress: int = 0
    ingress_id: str = ""


def _request(msg_type: int, seq: int, body: bytes) -> bytes:
    return _NLMSGHDR.pack(_HDR + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def stats_request(seq: int) -> bytes:
    """RTM_GETSTATS dump asking only for IFLA_STATS_LINK_64."""
    return _request(RTM_GETSTATS, seq, _IFSTATS.pack(0, 0, 0, 0, 1 << (IFLA_STATS_LINK_64 - 1)))


def links_request(seq: int) -> bytes:
    """RTM_GETLINK dump without the statistics attributes."""
    attr = _RTATTR.pack(8, IFLA_EXT_MASK) + _U32.pack(RTEXT_FILTER_SKIP_STATS)
    return _request(RTM_GETLINK, seq, _IFINFO.pack(0, 0, 0, 0, 0, 0) + attr)


def qdiscs_request(seq: int) -> bytes:
    return _request(RTM_GETQDISC, seq, _TCMSG.pack(0, 0, 0, 0, 0, 0, 0))


def messages(buf: bytes | memoryview, seq: int) -> Iterator[tuple[int, int, memoryview]]:
    """(type, flags, payload) of each message of `seq` in one received datagram, up to and
    including NLMSG_DONE (empty payload). Raises WireError for NLMSG_ERROR or a malformed message.
    A message flagged NLM_F_DUMP_INTR means the dump is inconsistent: the caller reads on to DONE
    and asks again."""
    view = memoryview(buf)
    off, end = 0, len(view)
    while off + _HDR <= end:
        length, msg_type, flags, msg_seq, _pid = _NLMSGHDR.unpack_from(view, off)
        if length < _HDR or off + length > end:
            raise WireError(0, f"malformed netlink message (length {length} at offset {off})")
        if msg_seq == seq:
            if msg_type == NLMSG_ERROR:
                (errno,) = _S32.unpack_from(view, off + _HDR)
                if errno:
                    raise WireError(-errno, f"netlink error {-errno}")
            elif msg_type == NLMSG_DONE:
                yield NLMSG_DONE, flags, view[0:0]
                return
            else:
                yield msg_type, flags, view[off + _HDR : off + length]
        off += (length + 3) & ~3


def _attrs(payload: memoryview, start: int) -> Iterator[tuple[int, memoryview]]:
    off, end = start, len(payload)
    while off + 4 <= end:
        alen, atype = _RTATTR.unpack_from(payload, off)
        if alen < 4 or off + alen > end:
            return
        yield atype & NLA_TYPE_MASK, payload[off + 4 : off + alen]
        off += (alen + 3) & ~3


def _cstr(value: memoryview) -> str:
    raw = bytes(value)
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def decode_stats(payload: memoryview, into: dict[int, Stats]) -> None:
    """One RTM_NEWSTATS message into `into[ifindex]`."""
    _f, _p1, _p2, index, _mask = _IFSTATS.unpack_from(payload, 0)
    off = _IFSTATS.size
    # Fast path: the only attribute asked for comes first.
    if len(payload) >= off + 4 + _STATS64.size:
        alen, atype = _RTATTR.unpack_from(payload, off)
        if atype & NLA_TYPE_MASK == IFLA_STATS_LINK_64 and alen >= 4 + _STATS64.size:
            s = _STATS64.unpack_from(payload, off + 4)
            into[index] = (s[0], s[1], s[2], s[3], s[4], s[5], s[6] + s[15], s[7])
            return
    for atype, value in _attrs(payload, off):
        if atype == IFLA_STATS_LINK_64 and len(value) >= _STATS64.size:
            s = _STATS64.unpack_from(value, 0)
            into[index] = (s[0], s[1], s[2], s[3], s[4], s[5], s[6] + s[15], s[7])


def decode_link(payload: memoryview, into: dict[int, LinkInfo]) -> None:
    """One RTM_NEWLINK message into `into[ifindex]`."""
    _f, _pad, _type, index, _flags, _change = _IFINFO.unpack_from(payload, 0)
    name = kind = ""
    peer = master = 0
    netnsid = -1
    oper = 0
    for atype, value in _attrs(payload, _IFINFO.size):
        if atype == IFLA_IFNAME:
            name = _cstr(value)
        elif atype == IFLA_LINK and len(value) >= 4:
            (peer,) = _U32.unpack_from(value, 0)
        elif atype == IFLA_LINK_NETNSID and len(value) >= 4:
            (netnsid,) = _S32.unpack_from(value, 0)
        elif atype == IFLA_MASTER and len(value) >= 4:
            (master,) = _U32.unpack_from(value, 0)
        elif atype == IFLA_OPERSTATE and len(value) >= 1:
            oper = value[0]
        elif atype == IFLA_LINKINFO:
            for sub, sval in _attrs(value, 0):
                if sub == IFLA_INFO_KIND:
                    kind = _cstr(sval)
    state = OPERSTATES[oper] if oper < len(OPERSTATES) else "unknown"
    into[index] = LinkInfo(index, name, kind, peer, netnsid, master, state)


def decode_qdisc(payload: memoryview, into: dict[int, QdiscDrops]) -> None:
    """One RTM_NEWQDISC message: the root qdisc's drops count as egress, those of the ingress or
    clsact qdisc as ingress (clsact keeps one counter for both of its hooks). Child qdiscs are
    skipped: a root qdisc's counter already includes its children's drops."""
    _f, _p1, _p2, index, handle, parent, _info = _TCMSG.unpack_from(payload, 0)
    if parent not in (TC_H_ROOT, TC_H_INGRESS):
        return
    kind = ""
    drops = -1
    for atype, value in _attrs(payload, _TCMSG.size):
        if atype == TCA_KIND:
            kind = _cstr(value)
        elif atype == TCA_STATS2:
            for sub, sval in _attrs(value, 0):
                if sub == TCA_STATS_QUEUE and len(sval) >= _GNET_QUEUE.size:
                    drops = _GNET_QUEUE.unpack_from(sval, 0)[2]
    if drops < 0 or kind == "noqueue":
        return
    ident = f"{kind}:{handle:x}"
    old = into.get(index, QdiscDrops())
    if parent == TC_H_ROOT:
        into[index] = attrs.evolve(old, egress=drops, egress_id=ident)
    else:
        into[index] = attrs.evolve(old, ingress=drops, ingress_id=ident)

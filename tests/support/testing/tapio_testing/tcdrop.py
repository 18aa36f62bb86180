"""Real, exact packet drops on one direction of an interface, without netem (this kernel has none):
a 6-instruction cls_bpf program (direct action) that drops every packet of one length.

`drop_ingress(ns, ifname, length)` adds an `ingress` qdisc with the filter: packets received by
the interface whose `skb->len` equals `length` are dropped (counted in that qdisc's drops).
`drop_egress(ns, ifname, length)` adds a root `htb` qdisc with the filter: packets sent by the
interface are dropped (counted in the root qdisc's drops). The test picks packet sizes, so the
number of drops is known exactly. The program is loaded through bpf(2); no compiler is needed.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

from tapio_testing.netns import Netns

_SYS_BPF = {"x86_64": 321, "aarch64": 280}
_BPF_PROG_LOAD = 5
_BPF_PROG_TYPE_SCHED_CLS = 3
TC_ACT_OK = 0
TC_ACT_SHOT = 2
TC_H_INGRESS_PARENT = 0xFFFF0000
HTB_ROOT = 0x10000
_libc = ctypes.CDLL(None, use_errno=True)


def _insn(code: int, dst: int, src: int, off: int, imm: int) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def drop_length_program(length: int) -> bytes:
    """BPF bytecode: `return skb->len == length ? TC_ACT_SHOT : TC_ACT_OK`."""
    return b"".join(
        (
            _insn(0x61, 0, 1, 0, 0),  # r0 = *(u32 *)(r1 + 0): __sk_buff.len
            _insn(0x55, 0, 0, 2, length),  # if r0 != length: skip 2
            _insn(0xB7, 0, 0, 0, TC_ACT_SHOT),
            _insn(0x95, 0, 0, 0, 0),  # exit
            _insn(0xB7, 0, 0, 0, TC_ACT_OK),
            _insn(0x95, 0, 0, 0, 0),
        )
    )


def load_program(code: bytes) -> int:
    """Loads SCHED_CLS bytecode; returns the program fd (the filter keeps it alive once attached)."""
    nr = _SYS_BPF.get(platform.machine())
    if nr is None:
        raise OSError(f"bpf(2) syscall number unknown on {platform.machine()}")
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(16384)
    attr = struct.pack(
        "<IIQQIIQ",
        _BPF_PROG_TYPE_SCHED_CLS,
        len(code) // 8,
        ctypes.addressof(insns),
        ctypes.addressof(license_),
        1,  # log level
        len(log),
        ctypes.addressof(log),
    ).ljust(128, b"\0")
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = int(_libc.syscall(nr, _BPF_PROG_LOAD, buf, len(attr)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"BPF_PROG_LOAD: {os.strerror(err)}: {log.value.decode(errors='replace')}")
    return fd


def _attach(ns: Netns, ifname: str, length: int, parent: int) -> None:
    fd = load_program(drop_length_program(length))
    try:
        ns.ipr.tc(
            "add-filter",
            "bpf",
            ns.index(ifname),
            ":1",
            fd=fd,
            name="tcdrop",
            parent=parent,
            direct_action=True,
        )
    finally:
        os.close(fd)


def drop_ingress(ns: Netns, ifname: str, length: int) -> None:
    """Drops packets of `skb->len == length` received by `ifname` (ingress qdisc + cls_bpf). The
    program sees the frame with its Ethernet header: `udp_frame_length(P)` for P payload bytes."""
    ns.ipr.tc("add", "ingress", ns.index(ifname), "ffff:")
    _attach(ns, ifname, length, TC_H_INGRESS_PARENT)


def drop_egress(ns: Netns, ifname: str, length: int) -> None:
    """Drops packets of `skb->len == length` sent by `ifname` (root htb + cls_bpf), a frame of
    `udp_frame_length(P)` bytes for P payload bytes."""
    ns.ipr.tc("add", "htb", ns.index(ifname), HTB_ROOT, default=0)
    _attach(ns, ifname, length, HTB_ROOT)


def udp_frame_length(payload: int) -> int:
    """Frame length of an IPv4 UDP datagram of `payload` bytes (Ethernet 14 + IP 20 + UDP 8)."""
    return 42 + payload

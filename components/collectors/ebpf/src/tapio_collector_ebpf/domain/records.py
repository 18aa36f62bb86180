"""Decoders of what the BPF programs write (the structs of `bpf/*.c`) into frozen records.

Pure: bytes in, records out. Ring-buffer samples start with a u32 kind; aggregation maps hold
(key, value) pairs. Keep the layouts here in step with the C structs.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Final

import attrs

KIND_EXEC: Final = 1
KIND_EXIT: Final = 2
KIND_OOM: Final = 3
KIND_RETRANSMIT: Final = 4
KIND_RESET_SENT: Final = 5
KIND_RESET_RECEIVED: Final = 6
KIND_CONNECT: Final = 7
KIND_CONNECT_FAILED: Final = 8
KIND_CONNECT_LATENCY: Final = 9

MAP_LOST_REASONS: Final = ("ringbuf_full", "proc_map_full", "flow_map_full", "owner_map_full")
"""Indexes of the programs' `lost` array (bpf/common.c)."""
LOST_REASON_NAMES: Final = (*MAP_LOST_REASONS, "recursion_miss")
"""...and the kernel's own count of program runs it skipped (a tracepoint that fired while a
program ran on the same CPU: bpf_prog_info.recursion_misses)."""

AF_INET: Final = 2
AF_INET6: Final = 10

_PROC_KEY = struct.Struct("<Ii Q 16s")
_PROC_VAL = struct.Struct("<QQQII")  # then filename[FILENAME_LEN]
_FLOW_KEY = struct.Struct("<IHHHHI Q 16s16s")
_FLOW_VAL = struct.Struct("<QQQQQII16s")
_OOM = struct.Struct("<IIQQII QQQQQ iI 16s16s")
_LATENCY = struct.Struct("<IIQQQ HHHH II 16s16s16s")
_KIND = struct.Struct("<I")


class DecodeError(ValueError):
    """Bytes that are not a record of the expected layout."""


@attrs.frozen
class ProcAggregate:
    """Execs or exits of one (cgroup, comm, status) within a window."""

    kind: int
    status: int
    """exit: the raw wait status (code << 8 | signal, 0x80 = core dumped); -1 when unknown."""
    cgroup_id: int
    comm: str
    count: int
    first_ns: int
    last_ns: int
    pid: int
    """The last process seen in the window."""
    filename: str
    ppid: int = 0
    """The parent of `pid` (0 when unknown)."""

    @property
    def exit_code(self) -> int:
        return -1 if self.status < 0 else (self.status >> 8) & 0xFF

    @property
    def signal(self) -> int:
        return 0 if self.status < 0 else self.status & 0x7F

    @property
    def core_dumped(self) -> bool:
        return self.status >= 0 and bool(self.status & 0x80)


@attrs.frozen
class FlowAggregate:
    """TCP events of one kind for one (cgroup, flow) within a window. The ephemeral side's port
    is 0: lport on a client, rport on a server."""

    kind: int
    family: int
    laddr: str
    raddr: str
    lport: int
    rport: int
    cgroup_id: int
    count: int
    first_ns: int
    last_ns: int
    latency_sum_ns: int
    latency_max_ns: int
    pid: int
    comm: str


@attrs.frozen
class OomSample:
    pid: int
    ts_ns: int
    cgroup_id: int
    trigger_pid: int
    uid: int
    total_vm: int
    anon_rss: int
    file_rss: int
    shmem_rss: int
    pgtables: int
    oom_score_adj: int
    comm: str
    trigger_comm: str

    @property
    def rss_pages(self) -> int:
        return self.anon_rss + self.file_rss + self.shmem_rss


@attrs.frozen
class LatencySample:
    pid: int
    ts_ns: int
    cgroup_id: int
    latency_ns: int
    family: int
    laddr: str
    raddr: str
    lport: int
    rport: int
    comm: str


Sample = OomSample | LatencySample


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _addr(family: int, raw: bytes) -> str:
    """Text form; an IPv4-mapped IPv6 address (a v4 peer of a dual-stack socket) as plain IPv4,
    so it matches pod and Service IPs."""
    if family == AF_INET6:
        v6 = ipaddress.IPv6Address(raw[:16])
        return str(v6.ipv4_mapped or v6)
    if family == AF_INET:
        return str(ipaddress.IPv4Address(raw[:4]))
    return ""


def _chunks(value: bytes, size: int, what: str) -> list[bytes]:
    """The per-CPU values of a per-CPU map entry (each `size` bytes, one per possible CPU)."""
    if not value or len(value) % size:
        raise DecodeError(f"{what} value of {len(value)} bytes, not a multiple of {size}")
    return [value[i : i + size] for i in range(0, len(value), size)]


def decode_proc(key: bytes, value: bytes, value_size: int | None = None) -> ProcAggregate:
    """One process entry; `value` holds one value per CPU (`value_size` bytes each; default:
    all of it is one value), merged: counts summed, the earliest first, the latest last/pid."""
    if len(key) != _PROC_KEY.size:
        raise DecodeError(f"process key of {len(key)} bytes, expected {_PROC_KEY.size}")
    kind, status, cgroup_id, comm = _PROC_KEY.unpack(key)
    if kind not in (KIND_EXEC, KIND_EXIT):
        raise DecodeError(f"process entry of unknown kind {kind}")
    size = value_size or len(value)
    if size < _PROC_VAL.size:
        raise DecodeError(f"process value of {size} bytes, expected at least {_PROC_VAL.size}")
    count, first, last, pid, ppid, filename = 0, 0, 0, 0, 0, ""
    for chunk in _chunks(value, size, "process"):
        c, f, la, p, pp = _PROC_VAL.unpack_from(chunk)
        if not c:
            continue
        count += c
        first = f if not first or f < first else first
        if la >= last:
            last, pid, ppid = la, p, pp
        filename = filename or _cstr(chunk[_PROC_VAL.size :])
    return ProcAggregate(kind, status, cgroup_id, _cstr(comm), count, first, last, pid, filename, ppid)


_FLOW_KINDS = frozenset(
    {KIND_RETRANSMIT, KIND_RESET_SENT, KIND_RESET_RECEIVED, KIND_CONNECT, KIND_CONNECT_FAILED}
)


def decode_flow(key: bytes, value: bytes) -> FlowAggregate:
    """One flow entry; `value` holds one value per CPU, merged as in decode_proc (latency sums
    added, the largest maximum kept)."""
    if len(key) != _FLOW_KEY.size:
        raise DecodeError(f"flow key of {len(key)} bytes, expected {_FLOW_KEY.size}")
    kind, family, lport, rport, _p1, _p2, cgroup_id, laddr, raddr = _FLOW_KEY.unpack(key)
    if kind not in _FLOW_KINDS:
        raise DecodeError(f"flow entry of unknown kind {kind}")
    count = first = last = lat_sum = lat_max = pid = 0
    comm = b""
    for chunk in _chunks(value, _FLOW_VAL.size, "flow"):
        c, f, la, ls, lm, p, _pad, cm = _FLOW_VAL.unpack(chunk)
        if not c:
            continue
        count += c
        lat_sum += ls
        lat_max = max(lat_max, lm)
        first = f if not first or f < first else first
        if la >= last:
            last, pid, comm = la, p, cm
    return FlowAggregate(
        kind, family, _addr(family, laddr), _addr(family, raddr), lport, rport, cgroup_id,
        count, first, last, lat_sum, lat_max, pid, _cstr(comm),
    )  # fmt: skip


def decode_sample(data: bytes) -> Sample:
    """A ring-buffer sample, by its leading kind."""
    if len(data) < _KIND.size:
        raise DecodeError(f"ring-buffer sample of {len(data)} bytes")
    (kind,) = _KIND.unpack_from(data)
    if kind == KIND_OOM:
        if len(data) < _OOM.size:
            raise DecodeError(f"OOM sample of {len(data)} bytes, expected {_OOM.size}")
        (_, pid, ts, cg, tpid, uid, vm, anon, file, shmem, pgt, adj, _pad, comm, tcomm) = _OOM.unpack_from(
            data
        )
        return OomSample(pid, ts, cg, tpid, uid, vm, anon, file, shmem, pgt, adj, _cstr(comm), _cstr(tcomm))
    if kind == KIND_CONNECT_LATENCY:
        if len(data) < _LATENCY.size:
            raise DecodeError(f"latency sample of {len(data)} bytes, expected {_LATENCY.size}")
        (_, pid, ts, cg, lat, fam, lport, rport, _p, _p2, _p3, la, ra, comm) = _LATENCY.unpack_from(data)
        return LatencySample(pid, ts, cg, lat, fam, _addr(fam, la), _addr(fam, ra), lport, rport, _cstr(comm))
    raise DecodeError(f"ring-buffer sample of unknown kind {kind}")

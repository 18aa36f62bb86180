"""Decoders of the BPF structs: layouts as the C writes them (little-endian, no holes)."""

from __future__ import annotations

import struct

import pytest

from tapio_collector_ebpf.domain import records as r


def _proc(
    kind: int, status: int, comm: bytes = b"nginx", filename: bytes = b"/usr/sbin/nginx"
) -> tuple[bytes, bytes]:
    key = struct.pack("<IiQ16s", kind, status, 4242, comm)
    value = struct.pack("<QQQII", 3, 100, 900, 77, 1) + filename.ljust(64, b"\0")
    return key, value


def test_exit_aggregate_splits_the_wait_status() -> None:
    a = r.decode_proc(*_proc(r.KIND_EXIT, (3 << 8) | 0x80 | 6))
    assert (a.exit_code, a.signal, a.core_dumped) == (3, 6, True)
    assert (a.count, a.first_ns, a.last_ns, a.pid, a.cgroup_id, a.comm) == (3, 100, 900, 77, 4242, "nginx")


def test_exec_aggregate_keeps_the_filename_and_unknown_status_is_minus_one() -> None:
    a = r.decode_proc(*_proc(r.KIND_EXEC, 0))
    assert a.filename == "/usr/sbin/nginx"
    assert a.kind == r.KIND_EXEC
    u = r.decode_proc(*_proc(r.KIND_EXIT, -1))
    assert (u.exit_code, u.signal) == (-1, 0)


def test_flow_aggregate_decodes_v4_and_v6_addresses() -> None:
    v4 = struct.pack(
        "<IHHHHIQ16s16s",
        r.KIND_RETRANSMIT,
        r.AF_INET,
        0,
        443,
        0,
        0,
        9,
        bytes([10, 0, 0, 1]),
        bytes([10, 0, 0, 2]),
    )
    val = struct.pack("<QQQQQII16s", 5, 1, 2, 0, 0, 1234, 0, b"curl")
    a = r.decode_flow(v4, val)
    assert (a.laddr, a.raddr, a.lport, a.rport, a.count, a.pid, a.comm) == (
        "10.0.0.1",
        "10.0.0.2",
        0,
        443,
        5,
        1234,
        "curl",
    )
    six = bytes(15) + b"\x01"
    v6 = struct.pack("<IHHHHIQ16s16s", r.KIND_RESET_SENT, r.AF_INET6, 80, 0, 0, 0, 9, six, six)
    assert r.decode_flow(v6, val).raddr == "::1"


def test_samples_decode_by_kind() -> None:
    oom = struct.pack(
        "<IIQQIIQQQQQiI16s16s", r.KIND_OOM, 99, 5, 6, 98, 0, 1000, 10, 20, 30, 4096, -500, 0, b"java", b"java"
    )
    s = r.decode_sample(oom)
    assert isinstance(s, r.OomSample)
    assert (s.pid, s.rss_pages, s.oom_score_adj, s.comm) == (
        99,
        60,
        -500,
        "java",
    )
    lat = struct.pack(
        "<IIQQQHHHHII16s16s16s", r.KIND_CONNECT_LATENCY, 7, 5, 6, 12345, r.AF_INET, 40000, 5432, 0, 0, 0,
        bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]), b"psql",
    )  # fmt: skip
    ls = r.decode_sample(lat)
    assert isinstance(ls, r.LatencySample)
    assert (ls.latency_ns, ls.rport, ls.comm) == (12345, 5432, "psql")


@pytest.mark.parametrize(
    "data",
    [b"", struct.pack("<I", 77) + bytes(100), struct.pack("<I", r.KIND_OOM) + bytes(10)],
)
def test_bad_samples_are_decode_errors(data: bytes) -> None:
    with pytest.raises(r.DecodeError):
        r.decode_sample(data)


def test_bad_map_entries_are_decode_errors() -> None:
    key, value = _proc(r.KIND_EXEC, 0)
    with pytest.raises(r.DecodeError):
        r.decode_proc(key[:-1], value)
    with pytest.raises(r.DecodeError):
        r.decode_proc(struct.pack("<IiQ16s", r.KIND_RETRANSMIT, 0, 0, b""), value)
    with pytest.raises(r.DecodeError):
        r.decode_flow(key, value)


def test_per_cpu_values_are_merged() -> None:
    key = struct.pack("<IiQ16s", r.KIND_EXEC, 0, 1, b"sh")
    cpu0 = struct.pack("<QQQII", 2, 50, 60, 10, 1) + b"/bin/sh".ljust(64, b"\0")
    cpu1 = struct.pack("<QQQII", 0, 0, 0, 0, 0) + bytes(64)  # nothing on this CPU
    cpu2 = struct.pack("<QQQII", 3, 40, 90, 11, 2) + bytes(64)
    a = r.decode_proc(key, cpu0 + cpu1 + cpu2, len(cpu0))
    assert (a.count, a.first_ns, a.last_ns, a.pid, a.ppid, a.filename) == (5, 40, 90, 11, 2, "/bin/sh")


def test_ipv4_mapped_addresses_read_as_ipv4() -> None:
    mapped = bytes(10) + b"\xff\xff" + bytes([10, 1, 2, 3])
    key = struct.pack("<IHHHHIQ16s16s", r.KIND_CONNECT, r.AF_INET6, 0, 80, 0, 0, 9, mapped, mapped)
    val = struct.pack("<QQQQQII16s", 1, 1, 1, 5, 5, 1, 0, b"x")
    assert r.decode_flow(key, val).raddr == "10.1.2.3"

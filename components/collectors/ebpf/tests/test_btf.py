"""The BTF reader: a member offset from a synthetic BTF blob, and from this kernel's when it has one."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tapio_collector_ebpf.domain.btf import BtfFormatError, member_offset


def _blob(kind_flag: int = 0, exit_code_bits: int = 64 * 8) -> bytes:
    strings = b"\0int\0task_struct\0pid\0exit_code\0"
    off = {name: strings.index(name.encode() + b"\0") for name in ("int", "task_struct", "pid", "exit_code")}
    types = struct.pack("<III", off["int"], 1 << 24, 4) + struct.pack("<I", 32)  # INT, 32 bits
    types += struct.pack("<III", 0, 8 << 24, 1)  # an anonymous TYPEDEF, to be skipped
    info = (kind_flag << 31) | (4 << 24) | 2  # STRUCT with 2 members
    types += struct.pack("<III", off["task_struct"], info, 128)
    types += struct.pack("<III", off["pid"], 1, 32 * 8) + struct.pack(
        "<III", off["exit_code"], 1, exit_code_bits
    )
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings


def test_member_offset_in_bytes() -> None:
    assert member_offset(_blob(), "task_struct", "exit_code") == 64
    assert member_offset(_blob(), "task_struct", "pid") == 32
    assert member_offset(_blob(), "task_struct", "nope") is None
    assert member_offset(_blob(), "mm_struct", "pid") is None


def test_bitfields_are_not_offsets() -> None:
    assert (
        member_offset(_blob(kind_flag=1, exit_code_bits=(3 << 24) | 513), "task_struct", "exit_code") is None
    )


def test_not_btf() -> None:
    with pytest.raises(BtfFormatError):
        member_offset(b"\x7fELF" + bytes(40), "task_struct", "pid")
    with pytest.raises(BtfFormatError):
        member_offset(_blob()[:40], "task_struct", "pid")


def test_this_kernels_task_struct_has_exit_code() -> None:
    vmlinux = Path("/sys/kernel/btf/vmlinux")
    if not vmlinux.exists():
        pytest.skip("this kernel exposes no BTF (/sys/kernel/btf/vmlinux)")
    off = member_offset(vmlinux.read_bytes(), "task_struct", "exit_code")
    assert off is not None
    assert 0 < off < 16384

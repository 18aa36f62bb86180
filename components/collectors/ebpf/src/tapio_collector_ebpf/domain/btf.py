"""A minimal reader of the kernel's BTF (`/sys/kernel/btf/vmlinux`): the byte offset of a struct
member, so the BPF programs can read `task_struct.exit_code` on any kernel without its headers.

Pure: takes the BTF bytes, returns an offset. Format: Documentation/bpf/btf.rst.
"""

from __future__ import annotations

import struct

_MAGIC = 0xEB9F
_HEADER = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")
_KIND_STRUCT = 4
_KIND_UNION = 5
# Bytes of kind-specific data after the 12-byte btf_type: (fixed, per vlen item).
_EXTRA: dict[int, tuple[int, int]] = {
    1: (4, 0),  # INT
    2: (0, 0),  # PTR
    3: (12, 0),  # ARRAY
    4: (0, 12),  # STRUCT
    5: (0, 12),  # UNION
    6: (0, 8),  # ENUM
    7: (0, 0),  # FWD
    8: (0, 0),  # TYPEDEF
    9: (0, 0),  # VOLATILE
    10: (0, 0),  # CONST
    11: (0, 0),  # RESTRICT
    12: (0, 0),  # FUNC
    13: (0, 8),  # FUNC_PROTO
    14: (4, 0),  # VAR
    15: (0, 12),  # DATASEC
    16: (0, 0),  # FLOAT
    17: (4, 0),  # DECL_TAG
    18: (0, 0),  # TYPE_TAG
    19: (0, 12),  # ENUM64
}


class BtfFormatError(ValueError):
    """The bytes are not BTF this reader understands."""


def member_offset(btf: bytes, struct_name: str, member: str) -> int | None:
    """Byte offset of `member` in the first struct called `struct_name`, or None if the struct or
    the member is absent (or the member is a bitfield). Raises BtfFormatError for bad input."""
    if len(btf) < _HEADER.size:
        raise BtfFormatError("shorter than a BTF header")
    magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = _HEADER.unpack_from(btf)
    if magic != _MAGIC:
        raise BtfFormatError(f"bad BTF magic {magic:#x}")
    types = hdr_len + type_off
    strings = hdr_len + str_off
    if types + type_len > len(btf) or strings + str_len > len(btf):
        raise BtfFormatError("BTF sections run past the end of the data")
    want = struct_name.encode()
    want_member = member.encode()
    pos, end = types, types + type_len
    while pos < end:
        name_off, info, _size = _TYPE.unpack_from(btf, pos)
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        extra = _EXTRA.get(kind)
        if extra is None:
            raise BtfFormatError(f"unknown BTF kind {kind} at offset {pos}")
        pos += _TYPE.size
        if kind == _KIND_STRUCT and _name(btf, strings, name_off) == want:
            kind_flag = info >> 31
            for i in range(vlen):
                m_name, _m_type, m_off = _TYPE.unpack_from(btf, pos + 12 * i)
                if _name(btf, strings, m_name) == want_member:
                    bit_size = m_off >> 24 if kind_flag else 0
                    bits = m_off & 0xFFFFFF if kind_flag else m_off
                    if bit_size or bits % 8:
                        return None
                    return int(bits) // 8
            return None
        pos += extra[0] + extra[1] * vlen
    return None


def _name(btf: bytes, strings: int, off: int) -> bytes:
    start = strings + off
    stop = btf.index(b"\0", start)
    return btf[start:stop]

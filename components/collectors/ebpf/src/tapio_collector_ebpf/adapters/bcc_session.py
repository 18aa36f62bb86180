"""The loaded BPF programs through bcc: compile and attach, poll the ring buffer, swap and drain
the double-buffered aggregation maps, read the lost-sample counters.

Every call blocks (bcc is synchronous): the source runs them in a worker thread. What comes out
is raw bytes; `domain.records` decodes them.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
import platform
import struct
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from tapio_collector_ebpf.adapters import kernel
from tapio_collector_ebpf.domain.records import MAP_LOST_REASONS
from tapio_collector_ebpf.errors import EbpfError
from tapio_collector_ebpf.programs import (
    COMMON_FILE,
    FILE_ORDER,
    Assembly,
    KernelLimits,
    Program,
    assemble,
    parse_format_fields,
)

_LIBC = ctypes.CDLL(None, use_errno=True)
_SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine(), 321)
_BPF_OBJ_GET_INFO_BY_FD = 15

# Aggregation maps as (outer map-in-map array, inner half A, inner half B).
_AGG_MAPS = {"process.c": ("proc_active", "proc_a", "proc_b"), "tcp.c": ("flow_active", "flow_a", "flow_b")}


@attrs.frozen
class Drained:
    """One drain: the entries of each aggregation map (raw key, raw value) since the last drain."""

    proc: list[tuple[bytes, bytes]]
    flow: list[tuple[bytes, bytes]]
    """Per-CPU maps: each value is the values of every possible CPU, one after the other."""
    proc_value_size: int
    start_ns: int
    end_ns: int
    """The window, in CLOCK_MONOTONIC nanoseconds (the clock of bpf_ktime_get_ns)."""


DEBIAN_BCC = Path("/usr/lib/python3/dist-packages/bcc")


def load_bcc() -> ModuleType:
    """bcc's Python module: importable as is (make setup links it into the venv), else Debian's
    python3-bpfcc loaded from its directory (under Bazel, whose interpreter does not see it)."""
    try:
        return importlib.import_module("bcc")
    except ImportError:
        pass
    init = DEBIAN_BCC / "__init__.py"
    spec = importlib.util.spec_from_file_location("bcc", init, submodule_search_locations=[str(DEBIAN_BCC)])
    if spec is None or spec.loader is None or not init.exists():
        raise EbpfError(
            "cannot import bcc: install Debian's python3-bpfcc (make setup links it into the venv; "
            "PyPI's 'bcc' is an unrelated package)"
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules["bcc"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # a broken install: libbcc missing, wrong Python
        del sys.modules["bcc"]
        raise EbpfError(f"cannot load bcc from {DEBIAN_BCC}: {e}") from e
    return module


def assembly_value_size(table: Any) -> int:
    """Bytes of one CPU's value of a per-CPU bcc table."""
    return int(ctypes.sizeof(table.sLeaf)) if hasattr(table, "sLeaf") else int(ctypes.sizeof(table.Leaf))


def read_sources() -> dict[str, str]:
    """The `.c` files shipped next to this package (Bazel data / package files)."""
    base = resources.files("tapio_collector_ebpf") / "bpf"
    return {name: (base / name).read_text() for name in (COMMON_FILE, *FILE_ORDER)}


def build_text(programs: Sequence[Program], limits: KernelLimits) -> Assembly:
    """Reads tracepoint formats and BTF of this kernel and assembles the program text."""
    tps = [tp for p in programs for tp in p.tracepoints]
    formats = {
        tp: (parse_format_fields(t) if t is not None else None)
        for tp, t in kernel.tracepoint_formats(tps).items()
    }
    defines = limits.defines()
    for member, name in (
        ("exit_code", "TASK_EXIT_CODE_OFFSET"),
        ("real_parent", "TASK_REAL_PARENT_OFFSET"),
        ("tgid", "TASK_TGID_OFFSET"),
    ):
        offset = kernel.btf_member_offset("task_struct", member)
        if offset is not None:
            defines[name] = offset
    return assemble(programs, read_sources(), formats, defines)


class BccSession:
    """The programs of one Assembly, loaded and attached (tracepoints attach on load)."""

    def __init__(self, assembly: Assembly) -> None:
        kernel.check_privileges()
        bcc = load_bcc()
        self.assembly = assembly
        try:
            self._bpf: Any = bcc.BPF(
                text=assembly.text.encode(), cflags=["-Wno-macro-redefined", "-Wno-unused-function"]
            )
        except Exception as e:  # bcc raises bare Exception for compile/load failures
            raise EbpfError(
                f"cannot load the BPF programs: {e} (see the compiler output above; --dump-bpf prints the text)"
            ) from e
        self._records: list[bytes] = []
        self._pairs: list[tuple[Any, Any, Any, int]] = []  # (outer, inner A, inner B, active index)
        files = {p.file for p in assembly.loaded}
        for file, (outer, a, b) in _AGG_MAPS.items():
            if file in files:
                pair = (self._bpf[outer.encode()], self._bpf[a.encode()], self._bpf[b.encode()], 0)
                pair[0][ctypes.c_int(0)] = ctypes.c_int(pair[1].get_fd())
                self._pairs.append(pair)
        self._names = [f for f in _AGG_MAPS if f in files]
        self._proc_value_size = assembly_value_size(self._pairs[0][1]) if "process.c" in files else 0
        self._lost = self._bpf[b"lost"]
        self._bpf[b"samples"].open_ring_buffer(self._on_sample)
        self._window_start = time.monotonic_ns()
        # bpf_prog_info.recursion_misses (5.12+), its offset from this kernel's BTF.
        self._misses_offset = kernel.btf_member_offset("bpf_prog_info", "recursion_misses")
        self._time_offset = kernel.btf_member_offset("bpf_prog_info", "run_time_ns")
        self._cnt_offset = kernel.btf_member_offset("bpf_prog_info", "run_cnt")

    def _on_sample(self, _ctx: Any, data: Any, size: int) -> int:
        self._records.append(ctypes.string_at(data, size))
        return 0

    def poll(self, timeout_ms: int) -> list[bytes]:
        """Ring-buffer samples that arrived, waiting at most `timeout_ms` for the first one."""
        self._bpf.ring_buffer_poll(timeout_ms)
        out, self._records = self._records, []
        return out

    def drain(self) -> Drained:
        """Swaps every aggregation map to its other half and returns what the old half holds.

        The map-in-map update returns only after running programs finished (the kernel waits
        for an RCU grace period), so nothing is added to the old half while it is read.
        """
        result: dict[str, list[tuple[bytes, bytes]]] = {"process.c": [], "tcp.c": []}
        end = time.monotonic_ns()
        for i, (outer, a, b, active) in enumerate(self._pairs):
            old, new = (a, b) if active == 0 else (b, a)
            outer[ctypes.c_int(0)] = ctypes.c_int(new.get_fd())
            self._pairs[i] = (outer, a, b, 1 - active)
            result[self._names[i]] = [(bytes(k), bytes(v)) for k, v in old.items_lookup_and_delete_batch()]
        start, self._window_start = self._window_start, end
        return Drained(result["process.c"], result["tcp.c"], self._proc_value_size, start, end)

    def lost(self) -> tuple[int, ...]:
        """Samples lost in the kernel since load, per reason of records.LOST_REASON_NAMES: the
        programs' own counters (summed over CPUs), then the runs the kernel skipped."""
        out = []
        for reason in range(len(MAP_LOST_REASONS)):
            values = self._lost[ctypes.c_int(reason)]
            out.append(sum(int(v) for v in values))
        out.append(sum(self._recursion_misses(f.fd) for f in self._bpf.funcs.values()))
        return tuple(out)

    def _recursion_misses(self, prog_fd: int) -> int:
        if self._misses_offset is None:
            return 0
        return self._prog_info_u64(prog_fd, self._misses_offset)

    def run_stats(self) -> tuple[int, int]:
        """(run_time_ns, run_cnt) of all programs since load; counted only while the sysctl
        kernel.bpf_stats_enabled is 1 (the benchmark turns it on); (0, 0) where BTF lacks them."""
        if self._time_offset is None or self._cnt_offset is None:
            return 0, 0
        fds = [f.fd for f in self._bpf.funcs.values()]
        return (
            sum(self._prog_info_u64(fd, self._time_offset) for fd in fds),
            sum(self._prog_info_u64(fd, self._cnt_offset) for fd in fds),
        )

    def _prog_info_u64(self, prog_fd: int, offset: int) -> int:
        """One u64 of the program's struct bpf_prog_info (BPF_OBJ_GET_INFO_BY_FD)."""
        size = offset + 8
        info = ctypes.create_string_buffer(size)
        attr = struct.pack("<IIQ", prog_fd, size, ctypes.addressof(info)).ljust(128, b"\0")
        buf = ctypes.create_string_buffer(attr, len(attr))
        if _LIBC.syscall(_SYS_BPF, _BPF_OBJ_GET_INFO_BY_FD, buf, len(attr)) != 0:
            err = ctypes.get_errno()
            raise EbpfError(f"cannot read the BPF program info: {os.strerror(err)}")
        return int(struct.unpack_from("<Q", info.raw, offset)[0])

    def close(self) -> None:
        self._bpf.cleanup()
